"""Jobs are created after the approval click is answered (issue 18): exactly once, across crashes, replicas and
a cancel that comes first. The click's transaction records the decision and the state only."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from approvals.db import Database, utcnow
from approvals.execution import service as jobs
from approvals.execution.actions import marker
from approvals.execution.cancels import BEFORE_SUBMISSION
from approvals.execution.models import Job, JobState
from approvals.execution.preparing import prepare_one
from approvals.requests.models import RequestDevice
from approvals.requests.states import RequestState, transition
from tests.support.actors import ALICE, BOB, HERE
from tests.support.stack import Stack

FINANCE = 'tag:"Finance Laptops"'


class _Crash(Exception):
    """The process dies inside the creating transaction."""


async def _approved(stack: Stack, verb: str = "scan") -> tuple[int, int]:
    """A request approved with no worker running: (request id, devices)."""
    command, _, options = verb.partition(" ")
    reply = await stack.chatops.handle(ALICE, HERE, f"{command} {FINANCE} {options} --reason r")
    assert reply.request is not None, reply.text
    decision = await stack.chatops.decide(BOB, reply.request.id, approve=True)
    assert not decision.error, decision.text
    return reply.request.id, reply.request.device_count


async def _jobs(db: Database, request_id: int) -> list[Job]:
    async with db.sessions() as session:
        return list(await session.scalars(select(Job).where(Job.request_id == request_id)))


async def test_the_click_creates_no_job_and_the_card_says_the_jobs_are_being_prepared(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, start_engine=False) as stack:
        request_id, devices = await _approved(stack)
        assert await _jobs(stack.db, request_id) == []
        view = await stack.chatops.view(request_id)
        assert view.state == "approved" and view.progress is not None
        assert view.progress.preparing == devices
        assert view.progress.sentence() == f"preparing the jobs of {devices} device(s), 0 of {devices} submitted"
        assert await stack.engine.worker.prepare_once() == [request_id]
        assert len(await _jobs(stack.db, request_id)) == devices
        view = await stack.chatops.view(request_id)
        assert view.progress is not None and view.progress.preparing == 0
        assert view.progress.sentence().startswith(f"0 of {devices} submitted")


async def test_an_approval_recorded_before_a_crash_gets_its_jobs_exactly_once_after_the_restart(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, start_engine=False) as stack:
        request_id, devices = await _approved(stack, "isolate --active-only")
        with pytest.raises(_Crash):  # the creating transaction dies after writing every job: nothing commits
            async with stack.db.transaction() as session:
                record = await jobs.lock_creation(session, request_id=request_id)
                assert record is not None
                runs, done = await jobs.create_piece(
                    session, record=record, include_protected=False, now=utcnow(), size=None
                )
                assert runs > 0 and done
                raise _Crash
        assert await _jobs(stack.db, request_id) == []
        await stack.engine.start()  # the restarted process
        assert await stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
        assert len(await _jobs(stack.db, request_id)) == devices
        mine = [a for a in stack.sim.tenant.actions.values() if marker(request_id) in a.comment]
        assert len(mine) == len({a.machine_id for a in mine}) == devices
        assert await stack.engine.worker.prepare_once() == []


async def test_two_workers_racing_to_create_one_requests_jobs_create_them_once(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, start_engine=False) as stack:
        request_id, devices = await _approved(stack)
        other = Database(stack.db.url)  # another replica: its own connections
        try:
            won = await asyncio.gather(
                prepare_one(stack.db, utcnow, request_id), prepare_one(other, utcnow, request_id)
            )
        finally:
            await other.dispose()
        assert sorted(won) == [False, True]
        machine_ids = [m for job in await _jobs(stack.db, request_id) for m in job.machine_ids]
        assert len(machine_ids) == len(set(machine_ids)) == devices


async def test_a_request_cancelled_before_its_jobs_exist_gets_none(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, start_engine=False) as stack:
        request_id, devices = await _approved(stack, "isolate --active-only")
        cancelled = await stack.chatops.cancel(ALICE, request_id, "wrong tag")
        assert not cancelled.error and f"{devices} device(s) not yet submitted were stopped" in cancelled.text
        assert await stack.engine.worker.prepare_once() == []
        await stack.engine.start()
        assert await stack.wait_for_state(request_id, {"cancelled"}) == "cancelled"
        assert await _jobs(stack.db, request_id) == []
        async with stack.db.sessions() as session:
            rows = (
                await session.execute(
                    select(RequestDevice.state, RequestDevice.error).where(RequestDevice.request_id == request_id)
                )
            ).all()
        assert {(state, error) for state, error in rows} == {("Cancelled", BEFORE_SUBMISSION)}
        assert not [a for a in stack.sim.tenant.actions.values() if marker(request_id) in a.comment]


async def test_a_cancel_racing_job_creation_leaves_nothing_to_submit(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, start_engine=False) as stack:
        request_id, devices = await _approved(stack, "isolate --active-only")
        cancelled, _won = await asyncio.gather(
            stack.chatops.cancel(ALICE, request_id, "wrong tag"), prepare_one(stack.db, utcnow, request_id)
        )
        assert not cancelled.error, cancelled.text
        assert {job.state for job in await _jobs(stack.db, request_id)} <= {JobState.CANCELLED.value}
        async with stack.db.sessions() as session:
            states = set(
                await session.scalars(select(RequestDevice.state).where(RequestDevice.request_id == request_id))
            )
        assert states == {"Cancelled"}, (states, devices)


async def _device_states(db: Database, request_id: int) -> list[str | None]:
    async with db.sessions() as session:
        return list(await session.scalars(select(RequestDevice.state).where(RequestDevice.request_id == request_id)))


async def test_a_crash_between_pieces_keeps_the_first_and_writes_the_rest_once_after_the_restart(
    db_kind: str,
) -> None:
    async with Stack.start(db_kind=db_kind, start_engine=False) as stack:
        request_id, devices = await _approved(stack, "isolate --active-only")
        assert devices > 2
        written = 0

        def crash_after_first_piece() -> None:
            nonlocal written
            written += 1
            raise _Crash

        with pytest.raises(_Crash):  # the first piece committed; the process dies before the second begins
            await prepare_one(stack.db, utcnow, request_id, on_piece=crash_after_first_piece, first_piece=1, piece=1)
        assert written == 1 and len(await _jobs(stack.db, request_id)) == 1
        assert (await _device_states(stack.db, request_id)).count(None) == devices - 1
        with pytest.raises(_Crash):  # the second piece dies inside its transaction: nothing of it commits
            async with stack.db.transaction() as session:
                record = await jobs.lock_creation(session, request_id=request_id)
                assert record is not None and record.jobs_created_at is None
                assert await jobs.create_piece(session, record=record, include_protected=False, now=utcnow(), size=1)
                raise _Crash
        assert len(await _jobs(stack.db, request_id)) == 1
        await stack.engine.start()  # the restarted process
        assert await stack.wait_for_state(request_id, {"succeeded"}) == "succeeded"
        machine_ids = [m for job in await _jobs(stack.db, request_id) for m in job.machine_ids]
        assert len(machine_ids) == len(set(machine_ids)) == devices
        mine = [a for a in stack.sim.tenant.actions.values() if marker(request_id) in a.comment]
        assert len(mine) == len({a.machine_id for a in mine}) == devices


async def test_pieces_write_every_job_once_riskiest_first(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, start_engine=False) as stack:
        request_id, devices = await _approved(stack)
        pieces = 0

        def count() -> None:
            nonlocal pieces
            pieces += 1

        assert await prepare_one(stack.db, utcnow, request_id, on_piece=count, first_piece=1, piece=2)
        assert pieces == 1 + (devices - 1) // 2 + 1  # the last piece finds none left and marks them created
        async with stack.db.sessions() as session:
            order = list(
                await session.scalars(
                    select(RequestDevice.machine_id)
                    .where(RequestDevice.request_id == request_id, RequestDevice.state.is_not(None))
                    .order_by(RequestDevice.priority, RequestDevice.name, RequestDevice.id)
                )
            )
        jobs_in_order = sorted(await _jobs(stack.db, request_id), key=lambda job: job.id)
        assert [m for job in jobs_in_order for m in job.machine_ids] == order and len(order) == devices
        assert not await prepare_one(stack.db, utcnow, request_id)


async def test_a_cancel_between_pieces_stops_the_rest(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, start_engine=False) as stack:
        request_id, devices = await _approved(stack, "isolate --active-only")

        def stop() -> None:
            raise _Crash

        with pytest.raises(_Crash):
            await prepare_one(stack.db, utcnow, request_id, on_piece=stop, first_piece=1, piece=1)
        cancelled = await stack.chatops.cancel(ALICE, request_id, "wrong tag")
        assert not cancelled.error and f"{devices} device(s) not yet submitted were stopped" in cancelled.text
        assert not await prepare_one(stack.db, utcnow, request_id)
        assert len(await _jobs(stack.db, request_id)) == 1
        assert set(await _device_states(stack.db, request_id)) == {"Cancelled"}


async def test_a_request_already_executing_its_first_piece_still_says_the_rest_is_being_prepared(db_kind: str) -> None:
    async with Stack.start(db_kind=db_kind, start_engine=False) as stack:
        request_id, devices = await _approved(stack, "isolate --active-only")

        def stop() -> None:
            raise _Crash

        with pytest.raises(_Crash):  # the first piece is written; a worker claims it before the rest is
            await prepare_one(stack.db, utcnow, request_id, on_piece=stop, first_piece=1, piece=1)
        async with stack.db.transaction() as session:
            assert await transition(session, request_id, RequestState.EXECUTING, now=utcnow())
        view = await stack.chatops.view(request_id)
        assert view.state == "executing" and view.progress is not None
        assert view.progress.preparing == devices - 1
        assert view.progress.sentence().startswith(f"preparing the jobs of {devices - 1} device(s)")
