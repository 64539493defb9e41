"""Job storage: enqueue on approval, claim, record submissions and outcomes, finalize.

Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several replicas share one queue without
handing a job to two workers; SQLite has one writer at a time, which gives the same guarantee.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.db import UTCDateTime
from approvals.execution.models import Job, JobKind, JobState, WorkerRecord
from approvals.identity import SYSTEM
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.requests.models import FAILED_DEVICE_STATES, DeviceState, RequestDevice, RequestRecord
from approvals.requests.states import RequestState, transition
from approvals.verbs import ACTIONS, JOB_VERBS

TAG_CHUNK = 500
LIVE_JOB_STATES = (JobState.HELD, JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.CANCELLING)
BEFORE_SUBMISSION = "cancelled before submission"


async def enqueue_jobs(session: AsyncSession, record: RequestRecord, *, include_protected: bool, now: datetime) -> int:
    """Store the work for an approved request; protected devices are skipped unless break-glass approved.

    Set-based (a few UPDATEs and one bulk INSERT whatever the size): a 100,000-device approval must answer
    the click in about a second, and row-at-a-time ORM changes took seconds per 10,000 devices.
    """
    if not record.verb.runs_jobs:  # a schedule request: its approval activates the schedule instead
        return 0
    rows = (
        await session.execute(
            select(RequestDevice.machine_id, RequestDevice.protection)
            .where(RequestDevice.request_id == record.id)
            .order_by(RequestDevice.priority, RequestDevice.name)  # riskiest first: jobs are claimed in id order
        )
    ).all()
    mine = RequestDevice.request_id == record.id
    skip = not include_protected
    if skip:
        await session.execute(
            update(RequestDevice)
            .where(mine, RequestDevice.protection == "protected")
            .values(state=DeviceState.SKIPPED, error="protected device: needs a break-glass approval", updated_at=now)
        )
    runnable = [machine_id for machine_id, protection in rows if not (skip and protection == "protected")]
    runs = mine if not skip else mine & (RequestDevice.protection != "protected")
    spec = ACTIONS.get(record.verb)
    if spec is not None and spec.tenant_wide:
        session.add(
            Job(
                request_id=record.id,
                kind=JobKind.INDICATOR.value,
                machine_ids=[],
                state=JobState.QUEUED.value,
                next_attempt_at=now,
                created_at=now,
            )
        )
        return 1
    if spec is not None and spec.tag_action is not None:
        jobs = [
            _job(record.id, JobKind.TAG_CHUNK, runnable[start : start + TAG_CHUNK], JobState.QUEUED, now)
            for start in range(0, len(runnable), TAG_CHUNK)
        ]
        await session.execute(update(RequestDevice).where(runs).values(state=DeviceState.QUEUED, updated_at=now))
    else:
        canary = record.canary or 0
        first = set(runnable[:canary])
        jobs = [
            _job(
                record.id,
                JobKind.DEVICE,
                [machine_id],
                JobState.QUEUED if not canary or machine_id in first else JobState.HELD,
                now,
                canary=machine_id in first,
            )
            for machine_id in runnable
        ]
        held = DeviceState.HELD if canary else DeviceState.QUEUED
        await session.execute(update(RequestDevice).where(runs).values(state=held, updated_at=now))
        if first:  # the canary: a handful of ids, so the IN list stays small
            await session.execute(
                update(RequestDevice)
                .where(mine, RequestDevice.machine_id.in_(first))
                .values(state=DeviceState.QUEUED, updated_at=now)
            )
    if jobs:
        await session.execute(insert(_JOBS), jobs)
    return len(runnable)


def _job(
    request_id: int, kind: JobKind, machine_ids: list[str], state: JobState, now: datetime, *, canary: bool = False
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "kind": kind.value,
        "machine_ids": machine_ids,
        "state": state.value,
        "canary": canary,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def _alive_owners(now: datetime, stale: timedelta):  # type: ignore[no-untyped-def]
    return select(WorkerRecord.owner).where(WorkerRecord.heartbeat_at >= now - stale)


async def heartbeat(session: AsyncSession, owner: str, *, now: datetime) -> None:
    result = await session.execute(update(WorkerRecord).where(WorkerRecord.owner == owner).values(heartbeat_at=now))
    if not result.rowcount:  # type: ignore[attr-defined]
        session.add(WorkerRecord(owner=owner, started_at=now, heartbeat_at=now))


#: suffix given to the jobs a restarted worker finds in its own name: the takeover path then adopts them at once
BEFORE_RESTART = "~before-restart"
#: two timestamps closer than this are the same incarnation (databases round timestamps differently)
_SAME_INSTANT = timedelta(milliseconds=1)


async def begin_incarnation(session: AsyncSession, owner: str, *, now: datetime) -> int:
    """Start a new life of worker ``owner``; returns how many of its previous life's claims it hands over.

    A replica restarted under the same identity (``WORKER_ID``) knows its previous life is over: the
    ``submitting`` jobs that life held are renamed to an owner that never heartbeats, so the usual takeover
    (look in MDE for the action first, then submit) adopts them now instead of after ``stale_s``. The new
    ``started_at`` is the fencing token: a previous life that is somehow still running sees it on its next
    heartbeat and stops (see ``is_current_incarnation``).
    """
    result = await session.execute(
        update(WorkerRecord).where(WorkerRecord.owner == owner).values(started_at=now, heartbeat_at=now)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        session.add(WorkerRecord(owner=owner, started_at=now, heartbeat_at=now))
        return 0
    handed = await session.execute(
        update(Job)
        .where(Job.owner == owner, Job.state == JobState.SUBMITTING.value)
        .values(owner=f"{owner[: 100 - len(BEFORE_RESTART)]}{BEFORE_RESTART}")
        .execution_options(synchronize_session=False)
    )
    return int(handed.rowcount or 0)  # type: ignore[attr-defined]


async def is_current_incarnation(session: AsyncSession, owner: str, started_at: datetime) -> bool:
    """False once another process started under the same identity (it reset ``started_at``)."""
    current = await session.scalar(select(WorkerRecord.started_at).where(WorkerRecord.owner == owner))
    return current is None or abs(current - started_at) < _SAME_INSTANT


async def claim_jobs(
    session: AsyncSession, owner: str, *, limit: int, now: datetime, stale: timedelta, is_postgres: bool
) -> list[Job]:
    """Claim queued jobs, and submitting jobs whose worker stopped heartbeating (it died mid-call)."""
    due = or_(
        (Job.state == JobState.QUEUED.value) & (Job.next_attempt_at <= now),
        (Job.state == JobState.SUBMITTING.value) & Job.owner.not_in(_alive_owners(now, stale)),
    )
    query = select(Job.id).where(due).order_by(Job.canary.desc(), Job.id).limit(limit)
    if is_postgres:
        query = query.with_for_update(skip_locked=True)
    ids = list(await session.scalars(query))
    if not ids:
        return []
    # RETURNING gives exactly the rows this statement moved: two claimers never share a job
    claimed = await session.scalars(
        update(Job)
        .where(Job.id.in_(ids), due)
        .values(state=JobState.SUBMITTING.value, owner=owner, attempts=Job.attempts + 1)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    mine = list(claimed)
    if not mine:
        return []
    rows = await session.scalars(select(Job).where(Job.id.in_(mine)).execution_options(populate_existing=True))
    return list(rows)


async def set_devices(
    session: AsyncSession,
    job: Job,
    *,
    state: DeviceState,
    now: datetime,
    action_id: str | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, object] = {"state": state, "updated_at": now, "error": error}
    if action_id is not None:
        values["action_id"] = action_id
    await session.execute(
        update(RequestDevice)
        .where(RequestDevice.request_id == job.request_id, RequestDevice.machine_id.in_(job.machine_ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def record_submitted(
    session: AsyncSession, job_id: int, owner: str, *, action_id: str, status: DeviceState, now: datetime
) -> Job | None:
    job = await session.get(Job, job_id)
    if job is None or job.owner != owner or job.state != JobState.SUBMITTING.value:
        return None
    job.state, job.action_id, job.mde_status = JobState.SUBMITTED.value, action_id, status
    job.submitted_at = now
    await set_devices(session, job, state=status, action_id=action_id, now=now)
    return job


async def record_final(
    session: AsyncSession, job: Job, *, outcome: DeviceState, now: datetime, error: str | None = None
) -> None:
    job.state, job.outcome, job.mde_status, job.error, job.finished_at = (
        JobState.DONE.value,
        outcome,
        outcome,
        error,
        now,
    )
    await set_devices(session, job, state=outcome, now=now, error=error)
    if outcome != DeviceState.SUCCEEDED:
        names = list(
            await session.scalars(
                select(RequestDevice.name).where(
                    RequestDevice.request_id == job.request_id, RequestDevice.machine_id.in_(job.machine_ids)
                )
            )
        )
        emit(session, job.request_id, EventKind.DEVICE_FAILED, devices=names, outcome=outcome, error=error)


async def requeue(session: AsyncSession, job: Job, *, at: datetime, error: str) -> None:
    job.state, job.next_attempt_at, job.error, job.owner = JobState.QUEUED.value, at, error, None


async def cancel_unsubmitted(session: AsyncSession, request_id: int, *, now: datetime) -> tuple[int, int]:
    """Stop what has not been submitted and hand every submitted action to the cancellers.

    Returns (jobs stopped before submission, MDE actions to cancel). Nothing calls MDE here: the chat
    command answers at once and the workers cancel, newest first.
    """
    stopped = await session.execute(
        update(Job)
        .where(Job.request_id == request_id, Job.state.in_([JobState.HELD.value, JobState.QUEUED.value]))
        .values(state=JobState.CANCELLED.value, outcome=DeviceState.CANCELLED.value, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(RequestDevice)
        .where(RequestDevice.request_id == request_id, RequestDevice.state.in_([DeviceState.HELD, DeviceState.QUEUED]))
        .values(state=DeviceState.CANCELLED, error=BEFORE_SUBMISSION, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    ids = list(
        await session.scalars(
            select(Job.id).where(
                Job.request_id == request_id, Job.state == JobState.SUBMITTED.value, Job.action_id.is_not(None)
            )
        )
    )
    await mark_cancelling(session, ids, now=now)
    return int(stopped.rowcount or 0), len(ids)  # type: ignore[attr-defined]


async def mark_cancelling(session: AsyncSession, job_ids: Sequence[int], *, now: datetime) -> None:
    """Submitted jobs of a cancelled request: their actions are to be cancelled in MDE."""
    if not job_ids:
        return
    await session.execute(
        update(Job)
        .where(Job.id.in_(job_ids))
        .values(state=JobState.CANCELLING.value, owner=None, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    for chunk in _chunks(list(job_ids), 500):
        machines = select(Job.request_id, Job.machine_ids).where(Job.id.in_(chunk))
        rows = [(r, m) for r, ms in (await session.execute(machines)).all() for m in ms]
        if rows:
            await session.execute(
                _DEVICE_UPDATE,
                [
                    {"b_request": r, "b_machine": m, "b_state": DeviceState.CANCELLING, "b_action": None}
                    | {"b_error": None, "b_at": now}
                    for r, m in rows
                ],
            )


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def claim_cancels(
    session: AsyncSession, owner: str, *, now: datetime, stale: timedelta, limit: int, is_postgres: bool
) -> list[Job]:
    """Cancelling jobs, newest submission first (the likeliest still pending), this worker's or orphaned."""
    due = (
        (Job.state == JobState.CANCELLING.value)
        & (Job.next_attempt_at <= now)
        & or_(Job.owner.is_(None), Job.owner == owner, Job.owner.not_in(_alive_owners(now, stale)))
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


async def store_cancel_waiting(session: AsyncSession, job: Job, *, error: str, now: datetime) -> None:
    """A throttled cancel: the card shows it waiting for MDE's Retry-After."""
    await _devices(session, _device_rows(job, DeviceState.CANCEL_WAITING, now, None, error))


async def release_cancels(session: AsyncSession, items: list[tuple[Job, datetime]]) -> None:
    """Cancels to try again later (a transient MDE failure): back to the pool, unowned."""
    if items:
        await session.execute(
            update(Job), [{"id": job.id, "owner": None, "next_attempt_at": at} for job, at in items]
        )


async def store_not_cancelled(session: AsyncSession, items: list[tuple[Job, str]], now: datetime) -> None:
    """MDE refused to cancel (and the action is not final): the poller follows it to its real outcome."""
    if not items:
        return
    await session.execute(
        update(Job), [{"id": job.id, "state": JobState.SUBMITTED.value, "error": error} for job, error in items]
    )
    rows = []
    for job, error in items:
        rows += _device_rows(job, DeviceState(job.mde_status or DeviceState.PENDING), now, None, error)
    await _devices(session, rows)


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


async def submitted_jobs(
    session: AsyncSession, owner: str, *, now: datetime, stale: timedelta, limit: int = 10000
) -> list[Job]:
    """Jobs to poll: this worker's, and any whose worker stopped heartbeating (taken over)."""
    query = (
        select(Job)
        .where(
            Job.state == JobState.SUBMITTED.value,
            or_(Job.owner == owner, Job.owner.is_(None), Job.owner.not_in(_alive_owners(now, stale))),
        )
        .order_by(Job.submitted_at)
        .limit(limit)
    )
    jobs = list(await session.scalars(query))
    for job in jobs:
        job.owner = owner
    return jobs


async def live_job_counts(session: AsyncSession, request_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(Job.state, func.count()).where(Job.request_id == request_id).group_by(Job.state)
    )
    return {state: count for state, count in rows.all()}


async def release_canary(session: AsyncSession, request_id: int, *, now: datetime) -> str | None:
    """After the canary batch: release the rest if every canary succeeded, else stop with a report."""
    canary = list(await session.scalars(select(Job).where(Job.request_id == request_id, Job.canary.is_(True))))
    held = await session.scalar(
        select(func.count()).where(Job.request_id == request_id, Job.state == JobState.HELD.value)
    )
    if not canary or not held or any(j.state != JobState.DONE.value for j in canary):
        return None
    failed = [j for j in canary if j.outcome != DeviceState.SUCCEEDED]
    if failed:
        await session.execute(
            update(Job)
            .where(Job.request_id == request_id, Job.state == JobState.HELD.value)
            .values(state=JobState.CANCELLED.value, outcome=DeviceState.SKIPPED.value, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(RequestDevice)
            .where(RequestDevice.request_id == request_id, RequestDevice.state == DeviceState.HELD)
            .values(state=DeviceState.SKIPPED, error="not attempted: the canary batch failed", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        text = f"Canary batch failed on {len(failed)} of {len(canary)} device(s); the other {held} were not attempted."
        emit(session, request_id, EventKind.NOTE, text=text)
        return text
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
    text = f"Canary batch of {len(canary)} succeeded; releasing the other {held} device(s)."
    emit(session, request_id, EventKind.NOTE, text=text)
    return text


async def finalize_if_done(session: AsyncSession, request_id: int, *, now: datetime) -> str | None:
    """Close a request whose jobs are all settled; returns the final state if this call closed it."""
    record = await session.get(RequestRecord, request_id)
    if record is None or record.summarized_at is not None:
        return None
    counts = await live_job_counts(session, request_id)
    if any(counts.get(s.value, 0) for s in LIVE_JOB_STATES):
        return None
    outcomes = dict(
        (
            await session.execute(
                select(RequestDevice.state, func.count())
                .where(RequestDevice.request_id == request_id)
                .group_by(RequestDevice.state)
            )
        ).all()
    )
    if not outcomes:  # a request without devices (an indicator): its jobs' outcomes are the result
        jobs = await session.execute(
            select(Job.outcome, func.count()).where(Job.request_id == request_id).group_by(Job.outcome)
        )
        outcomes = {DeviceState(o) if o else None: n for o, n in jobs.all()}
    succeeded = outcomes.get(DeviceState.SUCCEEDED, 0)
    failed = sum(n for s, n in outcomes.items() if s in FAILED_DEVICE_STATES)
    state = RequestState(record.state)
    final: RequestState
    if state is RequestState.CANCELLED:
        final = state
    else:
        if not failed:  # every device succeeded, or was skipped with its reason ("already isolated by #M")
            final = RequestState.SUCCEEDED
        else:
            final = RequestState.PARTIALLY_FAILED if succeeded else RequestState.FAILED
        if not await transition(session, request_id, final, now=now):
            return None
    claimed = await session.execute(
        update(RequestRecord)
        .where(RequestRecord.id == request_id, RequestRecord.summarized_at.is_(None))
        .values(summarized_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return None
    emit(session, request_id, EventKind.FINISHED, state=final.value, succeeded=succeeded, failed=failed)
    ids = list(
        await session.scalars(select(Job.action_id).where(Job.request_id == request_id, Job.action_id.is_not(None)))
    )
    audit(
        session,
        "request.finished",
        SYSTEM,
        request_id=request_id,
        verb=record.verb,
        outcome=final.value,
        action_ids=[a for a in ids if a],
        succeeded=succeeded,
        failed=failed,
        counts=outcomes,
    )
    return final.value


async def active_request_ids(session: AsyncSession) -> Sequence[int]:
    """Requests the job engine still has to settle; a schedule request is not one (``Verb.runs_jobs``)."""
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


# -- batched writes: one statement per kind of change, whatever the batch size ------------------------------

_DEVICES: Table = RequestDevice.__table__  # type: ignore[assignment]
_JOBS: Table = Job.__table__  # type: ignore[assignment]
_DEVICE_UPDATE = (
    _DEVICES.update()
    .where(_DEVICES.c.request_id == bindparam("b_request"), _DEVICES.c.machine_id == bindparam("b_machine"))
    .values(
        state=bindparam("b_state"),
        action_id=func.coalesce(bindparam("b_action"), _DEVICES.c.action_id),
        error=bindparam("b_error"),
        updated_at=bindparam("b_at", type_=UTCDateTime),
    )
)


async def lock_owned(
    session: AsyncSession, job_ids: Sequence[int], owner: str, state: JobState, *, is_postgres: bool
) -> set[int]:
    """The jobs of ``job_ids`` still held by ``owner`` in ``state`` (row-locked on PostgreSQL)."""
    if not job_ids:
        return set()
    query = select(Job.id).where(Job.id.in_(job_ids), Job.owner == owner, Job.state == state.value)
    if is_postgres:
        query = query.with_for_update()
    return set(await session.scalars(query))


async def _devices(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_DEVICE_UPDATE, rows)


def _device_rows(
    job: Job, state: DeviceState, now: datetime, action_id: str | None, error: str | None
) -> list[dict[str, Any]]:
    return [
        {
            "b_request": job.request_id,
            "b_machine": m,
            "b_state": state,
            "b_action": action_id,
            "b_error": error,
            "b_at": now,
        }
        for m in job.machine_ids
    ]


async def store_submitted(session: AsyncSession, items: list[tuple[Job, str, DeviceState]], now: datetime) -> None:
    """(job, action id, MDE status) for jobs whose action MDE created."""
    if not items:
        return
    await session.execute(
        update(Job),
        [
            {
                "id": job.id,
                "state": JobState.SUBMITTED.value,
                "action_id": action_id,
                "mde_status": status,
                "submitted_at": now,
            }
            for job, action_id, status in items
        ],
    )
    await _devices(
        session, [r for job, action_id, status in items for r in _device_rows(job, status, now, action_id, None)]
    )


#: called in ``store_final``'s transaction with the (job, outcome) pairs that settled (the containment register)
OnFinal = Callable[[AsyncSession, Sequence[tuple[Job, str]], datetime], Awaitable[None]]


async def store_final(
    session: AsyncSession,
    items: list[tuple[Job, DeviceState, str | None]],
    now: datetime,
    on_final: OnFinal | None = None,
    *,
    announce: bool = True,
) -> None:
    """(job, outcome, error) for jobs that are done; ``announce``: a thread line per device that did not
    succeed (a cancel's outcomes are reported together, in the summary, instead)."""
    if not items:
        return
    await session.execute(
        update(Job),
        [
            {
                "id": job.id,
                "state": JobState.DONE.value,
                "outcome": outcome,
                "mde_status": outcome,
                "error": error,
                "finished_at": now,
            }
            for job, outcome, error in items
        ],
    )
    await _devices(session, [r for job, outcome, error in items for r in _device_rows(job, outcome, now, None, error)])
    if on_final is not None:
        await on_final(session, [(job, outcome) for job, outcome, _e in items], now)
    failed = [(job, outcome, error) for job, outcome, error in items if outcome != DeviceState.SUCCEEDED]
    if failed and announce:
        wanted = {(job.request_id, m) for job, _o, _e in failed for m in job.machine_ids}
        names = dict(
            ((r, m), n)
            for r, m, n in (
                await session.execute(
                    select(RequestDevice.request_id, RequestDevice.machine_id, RequestDevice.name).where(
                        RequestDevice.request_id.in_({r for r, _m in wanted}),
                        RequestDevice.machine_id.in_({m for _r, m in wanted}),
                    )
                )
            ).all()
        )
        for job, outcome, error in failed:
            emit(
                session,
                job.request_id,
                EventKind.DEVICE_FAILED,
                devices=[names.get((job.request_id, m), m) for m in job.machine_ids],
                outcome=outcome,
                error=error,
            )


async def store_retries(session: AsyncSession, items: list[tuple[Job, datetime, str]]) -> None:
    if items:
        await session.execute(
            update(Job),
            [
                {"id": job.id, "state": JobState.QUEUED.value, "next_attempt_at": at, "error": error, "owner": None}
                for job, at, error in items
            ],
        )


async def store_status(session: AsyncSession, items: list[tuple[Job, DeviceState]], now: datetime) -> None:
    """Intermediate MDE statuses (Pending -> InProgress) for the card."""
    if items:
        await session.execute(update(Job), [{"id": job.id, "mde_status": status} for job, status in items])
        await _devices(session, [r for job, status in items for r in _device_rows(job, status, now, None, None)])
