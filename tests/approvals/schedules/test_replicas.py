"""Several replicas on one database run an occurrence once; downtime collapses missed occurrences into one run."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from approvals.commands.cadence import parse_cadence
from approvals.db import utcnow
from approvals.schedules.scheduled import Scheduler
from tests.support.databases import database
from tests.support.schedules import bulk_calls, create_active, dc_ids, make_due, reload, runs, tagged
from tests.support.stack import Stack


async def test_two_replicas_run_a_due_occurrence_once(db_kind: str, tmp_path: Path) -> None:
    async with (
        database(db_kind, tmp_path) as db,
        Stack.start(db=db, devices=50, start_engine=False, owner="replica-a") as a,
        Stack.start(db=db, devices=50, start_engine=False, owner="replica-b") as b,
    ):
        schedule = await create_active(a)
        await make_due(a, schedule.id, minutes=1)
        schedulers = [a.engine.scheduler, b.engine.scheduler]
        schedulers += [Scheduler(stack.chatops.schedules, owner=f"extra-{i}") for i, stack in enumerate((a, b, a, b))]

        executed = await asyncio.gather(*(s.tick() for s in schedulers if s is not None))

        assert sum(executed) == 1
        (run,) = await runs(a, schedule.id)
        assert run.kind == "scheduled" and run.state == "succeeded" and run.added == 3
        assert len(bulk_calls(a.sim)) + len(bulk_calls(b.sim)) == 1
        after = await reload(a, schedule.id)
        assert after.next_run_at is not None and after.next_run_at > utcnow()
        assert sum(await asyncio.gather(*(s.tick() for s in schedulers if s is not None))) == 0


async def test_after_downtime_a_missed_occurrence_runs_once_at_start(db_kind: str, tmp_path: Path) -> None:
    async with database(db_kind, tmp_path) as db:
        async with Stack.start(db=db, devices=50, start_engine=False) as before:
            schedule = await create_active(before)
        # the bot is down while three Fridays pass
        async with Stack.start(db=db, devices=50, start_engine=False) as stack:
            await make_due(stack, schedule.id, weeks=3)
            assert await stack.engine.scheduler.tick() == 1  # type: ignore[union-attr]
            assert await stack.engine.scheduler.tick() == 0  # type: ignore[union-attr]

            assert len(await runs(stack, schedule.id)) == 1
            assert tagged(stack.sim, "Kerberos") == dc_ids(stack.sim)
            after = await reload(stack, schedule.id)
            expected = parse_cadence(["fri", "06:00"]).next_after(utcnow())
            assert after.next_run_at is not None and abs((after.next_run_at - expected).total_seconds()) < 60
            assert after.last_result is not None and after.last_result["added"] == 3


async def test_a_run_whose_scheduler_died_is_taken_over_once_stale() -> None:
    async with Stack.start(devices=50, start_engine=False) as stack:
        schedule = await create_active(stack)
        await make_due(stack, schedule.id, minutes=1)
        flows = stack.chatops.schedules
        (orphan,) = await flows.runs.claim("crashed-replica", stale=timedelta(minutes=15))  # claimed, never executed
        survivor = Scheduler(flows, owner="survivor")
        survivor.config.stale_s = 3600
        assert await survivor.tick() == 0, "a fresh claim is not taken over"
        survivor.config.stale_s = 0
        assert await survivor.tick() == 1

        (run,) = await runs(stack, schedule.id)
        assert run.id == orphan.id and run.claimed_by == "survivor" and run.state == "succeeded"
        calls = len(stack.sim.request_log)
        await flows.runs.execute(orphan, "crashed-replica")  # the old claimer wakes up late: it lost the claim
        assert len(stack.sim.request_log) == calls, "a lost claim calls nothing in MDE"
        assert (await runs(stack, schedule.id))[0].claimed_by == "survivor"
        assert len(bulk_calls(stack.sim)) == 1
