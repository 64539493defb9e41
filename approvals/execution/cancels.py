"""Cancel storage: stop what a cancelled request has not submitted, hand its submitted actions to the
cancellers, claim them, and record how each cancel ended. Keyword-only queries; the MDE calls and the
thread lines are in ``execution.cancelling``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.execution.devices import DEVICE_UPDATE, device_rows, update_devices
from approvals.execution.heartbeats import alive_owners
from approvals.execution.models import Job, JobState
from approvals.requests.models import DeviceState, RequestDevice, RequestRecord

#: the error of a device whose request was cancelled before it was submitted
BEFORE_SUBMISSION = "cancelled before submission"


async def cancel_unsubmitted(session: AsyncSession, *, request_id: int, now: datetime) -> tuple[int, int]:
    """Stop what has not been submitted and hand every submitted action to the cancellers.

    Returns (jobs or devices stopped before submission, MDE actions to cancel). Nothing calls MDE here: the
    chat command answers at once and the workers cancel, newest first. A request approved but whose jobs
    were not created yet gets none (the creator only creates for approved requests): its devices are
    marked cancelled here, so the card and summary say the same as for queued ones.
    """
    stopped = await session.execute(
        update(Job)
        .where(Job.request_id == request_id, Job.state.in_([JobState.HELD.value, JobState.QUEUED.value]))
        .values(state=JobState.CANCELLED.value, outcome=DeviceState.CANCELLED.value, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    count = int(stopped.rowcount or 0)  # type: ignore[attr-defined]
    await session.execute(
        update(RequestDevice)
        .where(RequestDevice.request_id == request_id, RequestDevice.state.in_([DeviceState.HELD, DeviceState.QUEUED]))
        .values(state=DeviceState.CANCELLED, error=BEFORE_SUBMISSION, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    count += await _cancel_uncreated(session, request_id=request_id, now=now)
    ids = list(
        await session.scalars(
            select(Job.id).where(
                Job.request_id == request_id, Job.state == JobState.SUBMITTED.value, Job.action_id.is_not(None)
            )
        )
    )
    await mark_cancelling(session, job_ids=ids, now=now)
    return count, len(ids)


async def _cancel_uncreated(session: AsyncSession, *, request_id: int, now: datetime) -> int:
    """Devices of an approved request whose jobs were never created; protected ones only with break glass."""
    row = (
        await session.execute(
            select(RequestRecord.approved_at, RequestRecord.jobs_created_at, RequestRecord.break_glass_by).where(
                RequestRecord.id == request_id
            )
        )
    ).first()
    if row is None or row.approved_at is None or row.jobs_created_at is not None:
        return 0
    runs = RequestDevice.request_id == request_id
    if row.break_glass_by is None:
        runs = runs & (RequestDevice.protection != "protected")
    cancelled = await session.execute(
        update(RequestDevice)
        .where(runs, RequestDevice.state.is_(None))
        .values(state=DeviceState.CANCELLED, error=BEFORE_SUBMISSION, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(cancelled.rowcount or 0)  # type: ignore[attr-defined]


async def mark_cancelling(session: AsyncSession, *, job_ids: Sequence[int], now: datetime) -> None:
    """Submitted jobs of a cancelled request: their actions are to be cancelled in MDE."""
    if not job_ids:
        return
    await session.execute(
        update(Job)
        .where(Job.id.in_(job_ids))
        .values(state=JobState.CANCELLING.value, owner=None, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    ids = list(job_ids)
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        machines = select(Job.request_id, Job.machine_ids).where(Job.id.in_(chunk))
        rows = [(r, m) for r, ms in (await session.execute(machines)).all() for m in ms]
        if rows:
            await session.execute(
                DEVICE_UPDATE,
                [
                    {"b_request": r, "b_machine": m, "b_state": DeviceState.CANCELLING, "b_action": None}
                    | {"b_error": None, "b_at": now}
                    for r, m in rows
                ],
            )


async def claim_cancels(
    session: AsyncSession, *, owner: str, now: datetime, stale: timedelta, limit: int, is_postgres: bool
) -> list[Job]:
    """Cancelling jobs, newest submission first (the likeliest still pending), this worker's or orphaned."""
    due = (
        (Job.state == JobState.CANCELLING.value)
        & (Job.next_attempt_at <= now)
        & or_(Job.owner.is_(None), Job.owner == owner, Job.owner.not_in(alive_owners(now, stale)))
    )
    query = select(Job.id).where(due).order_by(Job.submitted_at.desc(), Job.id.desc()).limit(limit)
    if is_postgres:
        query = query.with_for_update(skip_locked=True)
    ids = list(await session.scalars(query))
    if not ids:
        return []
    claimed = list(
        await session.scalars(
            update(Job)
            .where(Job.id.in_(ids), due)
            .values(owner=owner)
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
    )
    rows = await session.scalars(select(Job).where(Job.id.in_(claimed)).execution_options(populate_existing=True))
    return sorted(rows, key=lambda j: (j.submitted_at or now, j.id), reverse=True)


async def store_cancel_waiting(session: AsyncSession, *, job: Job, error: str, now: datetime) -> None:
    """A throttled cancel: the card shows it waiting for MDE's Retry-After."""
    await update_devices(session, device_rows(job, DeviceState.CANCEL_WAITING, now, None, error))


async def release_cancels(session: AsyncSession, *, items: Sequence[tuple[Job, datetime]]) -> None:
    """Cancels to try again later (a transient MDE failure): back to the pool, unowned."""
    if items:
        await session.execute(update(Job), [{"id": job.id, "owner": None, "next_attempt_at": at} for job, at in items])


async def store_not_cancelled(session: AsyncSession, *, items: Sequence[tuple[Job, str]], now: datetime) -> None:
    """MDE refused to cancel (and the action is not final): the poller follows it to its real outcome."""
    if not items:
        return
    await session.execute(
        update(Job), [{"id": job.id, "state": JobState.SUBMITTED.value, "error": error} for job, error in items]
    )
    rows = []
    for job, error in items:
        rows += device_rows(job, DeviceState(job.mde_status or DeviceState.PENDING), now, None, error)
    await update_devices(session, rows)
