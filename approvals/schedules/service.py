"""Schedule storage: insert, list, claim occurrences and queued runs, store results. No chat, no HTTP.

Claiming an occurrence is one conditional UPDATE (``next_run_at`` moves only if it still holds the value
this replica read) plus an INSERT of ``(schedule_id, due_at)`` under a unique constraint, in one
transaction: of several replicas exactly one gets a row back. ``next_run_at`` moves to the first
occurrence after *now*, so occurrences missed while every replica was down collapse into one run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.commands.cadence import Cadence, parse_cadence
from approvals.commands.models import ParseError
from approvals.requests.models import RequestRecord
from approvals.schedules.models import RunState, Schedule, ScheduleRun


def cadence_of(schedule: Schedule) -> Cadence:
    words = schedule.cadence.split()
    if not words or words[0].lower() != "every":
        raise ParseError(f"stored cadence {schedule.cadence!r} does not start with every")
    return parse_cadence(words[1:])


async def get_schedule(session: AsyncSession, schedule_id: int, *, for_update: bool = False) -> Schedule | None:
    query = select(Schedule).where(Schedule.id == schedule_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def schedule_of_request(session: AsyncSession, request_id: int) -> Schedule | None:
    return await session.scalar(select(Schedule).where(Schedule.request_id == request_id))


async def listed(session: AsyncSession) -> list[tuple[Schedule, str]]:
    """Active schedules and those still waiting for approval, with their request's state."""
    rows = await session.execute(
        select(Schedule, RequestRecord.state)
        .join(RequestRecord, RequestRecord.id == Schedule.request_id)
        .where(or_(Schedule.active.is_(True), (RequestRecord.state == "pending") & Schedule.removed_at.is_(None)))
        .order_by(Schedule.id)
    )
    return [(schedule, str(state)) for schedule, state in rows.all()]


async def open_run(session: AsyncSession, schedule_id: int) -> ScheduleRun | None:
    return await session.scalar(
        select(ScheduleRun).where(
            ScheduleRun.schedule_id == schedule_id,
            ScheduleRun.state.in_([RunState.QUEUED.value, RunState.RUNNING.value]),
        )
    )


async def claim_due(
    session: AsyncSession, owner: str, *, now: datetime, is_postgres: bool, limit: int = 20
) -> list[ScheduleRun]:
    """Claim the due occurrence of every active schedule whose ``next_run_at`` has passed."""
    query = (
        select(Schedule)
        .where(Schedule.active.is_(True), Schedule.next_run_at <= now)
        .order_by(Schedule.next_run_at)
        .limit(limit)
    )
    if is_postgres:
        query = query.with_for_update(skip_locked=True)
    claimed: list[ScheduleRun] = []
    for schedule in list(await session.scalars(query)):
        due = schedule.next_run_at
        assert due is not None
        moved = await session.execute(
            update(Schedule)
            .where(Schedule.id == schedule.id, Schedule.active.is_(True), Schedule.next_run_at == due)
            .values(next_run_at=cadence_of(schedule).next_after(now))
            .execution_options(synchronize_session=False)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            continue
        run = ScheduleRun(
            schedule_id=schedule.id,
            due_at=due,
            kind="scheduled",
            state=RunState.RUNNING.value,
            claimed_by=owner,
            claimed_at=now,
            attempts=1,
            errors=[],
        )
        try:
            async with session.begin_nested():
                session.add(run)
        except IntegrityError:
            continue  # another replica already holds this occurrence
        claimed.append(run)
    return claimed


async def claim_queued(
    session: AsyncSession, owner: str, *, now: datetime, stale: timedelta, is_postgres: bool, limit: int = 20
) -> list[ScheduleRun]:
    """Claim ``schedule run N`` requests, and runs whose claimer stopped before finishing (crash)."""
    due = or_(
        ScheduleRun.state == RunState.QUEUED.value,
        (ScheduleRun.state == RunState.RUNNING.value) & (ScheduleRun.claimed_at < now - stale),
    )
    query = select(ScheduleRun.id).where(due).order_by(ScheduleRun.id).limit(limit)
    if is_postgres:
        query = query.with_for_update(skip_locked=True)
    ids = list(await session.scalars(query))
    if not ids:
        return []
    mine = list(
        await session.scalars(
            update(ScheduleRun)
            .where(ScheduleRun.id.in_(ids), due)
            .values(state=RunState.RUNNING.value, claimed_by=owner, claimed_at=now, attempts=ScheduleRun.attempts + 1)
            .returning(ScheduleRun.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not mine:
        return []
    rows = await session.scalars(
        select(ScheduleRun).where(ScheduleRun.id.in_(mine)).execution_options(populate_existing=True)
    )
    return list(rows)


async def holds(session: AsyncSession, run_id: int, owner: str) -> bool:
    """Whether ``owner`` still holds the claim (a claimer that stalled past the stale limit lost it)."""
    found = await session.scalar(
        select(ScheduleRun.id).where(
            ScheduleRun.id == run_id, ScheduleRun.claimed_by == owner, ScheduleRun.state == RunState.RUNNING.value
        )
    )
    return found is not None


async def finish_run(session: AsyncSession, run: ScheduleRun, owner: str, *, now: datetime, **values: Any) -> bool:
    """Store a run's outcome if this scheduler still holds it; False if another one took it over."""
    result = await session.execute(
        update(ScheduleRun)
        .where(
            ScheduleRun.id == run.id,
            ScheduleRun.claimed_by == owner,
            ScheduleRun.state == RunState.RUNNING.value,
        )
        .values(finished_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
