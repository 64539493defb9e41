"""A schedule request's life cycle, as ``approvals.verbs.EFFECTS`` states it: pending → approved → active.

Approval activates the schedule in one transaction; the job engine never takes the request (no job, no
progress, no summary), whatever state it finds it in.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sqlalchemy import func, select

from approvals.execution.models import Job
from approvals.outbox.models import Event
from approvals.policy import Policy
from approvals.requests.approval import ApprovalFlows
from approvals.service import ChatOps
from approvals.verbs import Effect, Verb
from tests.support.actors import ALICE, BOB, HERE
from tests.support.schedules import (
    DC_QUERY,
    create,
    create_active,
    dc_ids,
    reload,
    runs,
    schedule_of,
    tagged,
)
from tests.support.stack import FAST_WORKER, Stack

CREATE = f'schedule tag "Kerberos" query:"{DC_QUERY}" every fri 06:00 --reason "DCs"'


async def _kinds(stack: Stack, request_id: int) -> list[str]:
    async with stack.db.sessions() as session:
        rows = await session.scalars(select(Event.kind).where(Event.request_id == request_id).order_by(Event.id))
        return list(rows)


async def _jobs(stack: Stack, request_id: int) -> int:
    async with stack.db.sessions() as session:
        return int(await session.scalar(select(func.count()).where(Job.request_id == request_id)) or 0)


def test_the_verb_table_says_a_schedule_activates_and_actions_run_jobs() -> None:
    assert Verb.SCHEDULE.effect is Effect.ACTIVATES_SCHEDULE and not Verb.SCHEDULE.runs_jobs
    assert Verb.ISOLATE.effect is Effect.ACTS_NOW and Verb.ISOLATE.runs_jobs
    assert Verb.STATUS.effect is None and not Verb.STATUS.runs_jobs, "a verb that makes no request"


async def test_approval_makes_the_schedule_active_without_a_job_or_a_summary(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, devices=50, start_engine=False) as stack:
        request_id = await create(stack, CREATE)
        assert (await stack.record(request_id)).summarized_at is None, "nothing to trick the job engine with"

        reply = await stack.chatops.decide(BOB, request_id, approve=True)

        assert not reply.error and reply.request is not None and reply.request.state == "succeeded"
        assert reply.request.progress is None and reply.request.devices_label == "per run"
        assert (await schedule_of(stack, request_id)).active
        assert await _jobs(stack, request_id) == 0
        await stack.engine.worker.settle()
        record = await stack.record(request_id)
        assert record.state == "succeeded" and record.summarized_at is None
        kinds = await _kinds(stack, request_id)
        assert kinds == ["created", "state", "state", "note"], kinds  # approved, succeeded, "is active"


async def test_the_job_engine_leaves_an_approved_schedule_request_to_its_activation(db_kind: str) -> None:
    """Approved but not activated yet (another replica's click, or a crash in between): the job engine's
    housekeeping must not report progress on it nor close it; the scheduler's tick activates it."""
    async with Stack.start(db_kind=db_kind, devices=50, start_engine=False) as stack:
        request_id = await create(stack, CREATE)
        approvals = ApprovalFlows(stack.db, stack.chatops.policy)  # no on_approved: nothing activates it here
        verdict = await approvals.decide(BOB, request_id, approve=True, reason=None, break_glass=False)
        assert verdict.allowed and (await stack.record(request_id)).state == "approved"

        await stack.engine.worker.settle()

        assert (await stack.record(request_id)).state == "approved"
        assert "progress" not in await _kinds(stack, request_id) and "finished" not in await _kinds(stack, request_id)
        assert await stack.engine.scheduler.tick() == 0  # type: ignore[union-attr]
        assert (await stack.record(request_id)).state == "succeeded"
        assert (await schedule_of(stack, request_id)).active


async def test_a_cancelled_schedule_request_gets_no_summary_from_the_job_engine() -> None:
    async with Stack.start(devices=50, start_engine=False) as stack:
        request_id = await create(stack, CREATE)
        cancelled = await stack.chatops.cancel(ALICE, request_id, "wrong query")
        assert not cancelled.error, cancelled.text

        await stack.engine.worker.settle()

        record = await stack.record(request_id)
        assert record.state == "cancelled" and record.summarized_at is None
        assert "finished" not in await _kinds(stack, request_id)
        assert not (await schedule_of(stack, request_id)).active


async def test_schedule_run_rings_the_hook_chatops_was_built_with() -> None:
    async with Stack.start(devices=50, start_engine=False) as stack:
        schedule = await create_active(stack)
        rung: list[str] = []
        other = ChatOps(stack.db, stack.client, Policy.demo(), on_schedule_queued=lambda: rung.append("queued"))

        reply = await other.handle(ALICE, HERE, f"schedule run {schedule.id}")

        assert not reply.error, reply.text
        assert rung == ["queued"]


async def test_schedule_run_wakes_the_engines_scheduler_long_before_its_next_tick() -> None:
    slow = replace(FAST_WORKER, housekeeping_s=120.0)  # the scheduler ticks every 10 minutes
    async with Stack.start(devices=50, worker_config=slow) as stack:
        schedule = await create_active(stack)
        await stack.chatops.handle(ALICE, HERE, f"schedule run {schedule.id}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not [r for r in await runs(stack, schedule.id) if r.finished_at is not None]:
            assert loop.time() < deadline, "the queued run waited for the scheduler's next tick"
            await asyncio.sleep(0.05)
        assert tagged(stack.sim, "Kerberos") == dc_ids(stack.sim)
        assert (await reload(stack, schedule.id)).active
