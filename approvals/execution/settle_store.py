"""Storage for settling requests: which requests are live, how their jobs and devices ended, the canary's
held jobs, the summary mark. Keyword-only queries; the decisions and events are in ``execution.settling``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.execution.models import Job, JobState
from approvals.requests.models import DeviceState, RequestDevice, RequestRecord
from approvals.requests.states import RequestState
from approvals.verbs import JOB_VERBS


async def active_request_ids(session: AsyncSession) -> Sequence[int]:
    """Requests the job engine still has to settle: approved, executing, or cancelled and not yet summarized;
    a schedule request is not one (``Verb.runs_jobs``)."""
    rows = await session.scalars(
        select(RequestRecord.id).where(
            RequestRecord.state.in_(
                [RequestState.APPROVED.value, RequestState.EXECUTING.value, RequestState.CANCELLED.value]
            ),
            RequestRecord.summarized_at.is_(None),
            RequestRecord.verb.in_(JOB_VERBS),
        )
    )
    return list(rows)


async def cancelled_request_ids(session: AsyncSession) -> set[int]:
    """Cancelled requests not summarized yet: their queued submissions must not go out (other replicas)."""
    rows = await session.scalars(
        select(RequestRecord.id).where(
            RequestRecord.state == RequestState.CANCELLED.value,
            RequestRecord.summarized_at.is_(None),
            RequestRecord.verb.in_(JOB_VERBS),
        )
    )
    return set(rows)


async def live_job_counts(session: AsyncSession, *, request_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(Job.state, func.count()).where(Job.request_id == request_id).group_by(Job.state)
    )
    return {state: count for state, count in rows.all()}


async def canary_jobs(session: AsyncSession, *, request_id: int) -> tuple[list[Job], int]:
    """The request's canary jobs, and how many jobs wait for them (held)."""
    canary = list(await session.scalars(select(Job).where(Job.request_id == request_id, Job.canary.is_(True))))
    held = await session.scalar(
        select(func.count()).where(Job.request_id == request_id, Job.state == JobState.HELD.value)
    )
    return canary, int(held or 0)


async def release_held(session: AsyncSession, *, request_id: int, now: datetime) -> None:
    """The canary succeeded: the held jobs join the queue."""
    await session.execute(
        update(Job)
        .where(Job.request_id == request_id, Job.state == JobState.HELD.value)
        .values(state=JobState.QUEUED.value, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(RequestDevice)
        .where(RequestDevice.request_id == request_id, RequestDevice.state == DeviceState.HELD)
        .values(state=DeviceState.QUEUED, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def skip_held(session: AsyncSession, *, request_id: int, error: str, now: datetime) -> None:
    """The canary failed: the held jobs are never attempted, each device says why."""
    await session.execute(
        update(Job)
        .where(Job.request_id == request_id, Job.state == JobState.HELD.value)
        .values(state=JobState.CANCELLED.value, outcome=DeviceState.SKIPPED.value, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(RequestDevice)
        .where(RequestDevice.request_id == request_id, RequestDevice.state == DeviceState.HELD)
        .values(state=DeviceState.SKIPPED, error=error, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def outcome_counts(session: AsyncSession, *, request_id: int) -> dict[DeviceState | None, int]:
    """How the request's devices ended; a request without devices (an indicator): how its jobs ended."""
    rows = await session.execute(
        select(RequestDevice.state, func.count())
        .where(RequestDevice.request_id == request_id)
        .group_by(RequestDevice.state)
    )
    outcomes: dict[DeviceState | None, int] = dict(rows.all())  # type: ignore[arg-type]
    if outcomes:
        return outcomes
    jobs = await session.execute(
        select(Job.outcome, func.count()).where(Job.request_id == request_id).group_by(Job.outcome)
    )
    return {DeviceState(o) if o else None: n for o, n in jobs.all()}


async def mark_summarized(session: AsyncSession, *, request_id: int, now: datetime) -> bool:
    """Claim the request's summary: True for exactly one caller, across replicas."""
    claimed = await session.execute(
        update(RequestRecord)
        .where(RequestRecord.id == request_id, RequestRecord.summarized_at.is_(None))
        .values(summarized_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


async def action_ids(session: AsyncSession, *, request_id: int) -> list[str]:
    """Every MDE action the request created (the audit's closing row lists them)."""
    rows = await session.scalars(select(Job.action_id).where(Job.request_id == request_id, Job.action_id.is_not(None)))
    return [a for a in rows if a]
