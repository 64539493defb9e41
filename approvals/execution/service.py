"""Job storage: create a request's jobs, claim them, record submissions and outcomes, read what settles.

Keyword-only queries, no chat, no HTTP, no events (the flows emit them). Claims use ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL so several replicas share one queue without handing a job to two workers; SQLite has
one writer at a time, which gives the same guarantee.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.bulk import insert_columns
from approvals.execution.devices import device_rows, update_devices
from approvals.execution.heartbeats import alive_owners
from approvals.execution.models import Job, JobKind, JobState
from approvals.requests.models import DeviceState, RequestDevice, RequestRecord
from approvals.requests.states import RequestState
from approvals.verbs import ACTIONS, JOB_VERBS

TAG_CHUNK = 500
LIVE_JOB_STATES = (JobState.HELD, JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.CANCELLING)
_JOBS: Table = Job.__table__  # type: ignore[assignment]
#: jobs per insert: preparing one piece's values holds the event loop, so 100,000 go in pieces
_INSERT_CHUNK = 20000
#: an approved request's jobs are created while it is approved, or executing (the first piece's jobs claimed)
CREATING_STATES = (RequestState.APPROVED.value, RequestState.EXECUTING.value)


# -- creation: after approval, in the background -------------------------------------------------------------


async def approved_without_jobs(session: AsyncSession, *, limit: int = 20) -> list[int]:
    """Approved requests whose jobs are not all created yet, oldest approval first (``executing``: a creator
    stopped between pieces, after the first piece's jobs were claimed)."""
    rows = await session.scalars(
        select(RequestRecord.id)
        .where(
            RequestRecord.state.in_(CREATING_STATES),
            RequestRecord.jobs_created_at.is_(None),
            RequestRecord.verb.in_(JOB_VERBS),  # a schedule request's approval activates it instead
        )
        .order_by(RequestRecord.id)
        .limit(limit)
    )
    return list(rows)


async def lock_creation(session: AsyncSession, *, request_id: int) -> RequestRecord | None:
    """Take the request's row lock (the SQLite write lock) for one piece of its job creation, if its jobs are
    still to be created: the first statement of every creating transaction, so a concurrent creator or cancel
    waits, then finds the devices this piece marked, or the request cancelled. Returns the request if so."""
    locked = await session.execute(
        update(RequestRecord)
        .where(
            RequestRecord.id == request_id,
            RequestRecord.state.in_(CREATING_STATES),
            RequestRecord.jobs_created_at.is_(None),
        )
        .values(jobs_created_at=None)  # a write that changes nothing: only the lock is wanted
        .execution_options(synchronize_session=False)
    )
    if not locked.rowcount:  # type: ignore[attr-defined]
        return None
    return await session.scalar(
        select(RequestRecord).where(RequestRecord.id == request_id).execution_options(populate_existing=True)
    )


async def create_piece(
    session: AsyncSession, *, record: RequestRecord, include_protected: bool, now: datetime, size: int | None
) -> tuple[int, bool]:
    """Store the jobs of the next ``size`` devices of an approved request (all if None), riskiest first;
    protected devices are skipped unless break-glass approved. Returns (devices or tenant-wide jobs that will
    run, whether every job now exists: then ``jobs_created_at`` is set, in this transaction).

    A device's state goes from NULL to queued or held in the transaction that inserts its job, under the lock
    of ``lock_creation``: the next piece, a restarted creator or another replica takes only devices still
    NULL, so each device gets one job whatever commits or dies in between (issue 18: at 100,000 devices the
    riskiest ones run while the rest is written). Set-based: a few statements per piece whatever its size.
    """
    mine = RequestDevice.request_id == record.id
    waiting = mine & RequestDevice.state.is_(None)
    if not include_protected:  # only the first piece finds any
        await session.execute(
            update(RequestDevice)
            .where(waiting, RequestDevice.protection == "protected")
            .values(state=DeviceState.SKIPPED, error="protected device: needs a break-glass approval", updated_at=now)
        )
    spec = ACTIONS.get(record.verb)
    if spec is not None and spec.tenant_wide:
        await _insert_jobs(session, [_job(record.id, JobKind.INDICATOR, [], JobState.QUEUED, now)])
        await _created(session, record, now)
        return 1, True
    canary = record.canary or 0
    limit = None if canary else size  # one piece: the held jobs are released all at once when the canary passes
    order = (RequestDevice.priority, RequestDevice.name, RequestDevice.id)  # jobs are claimed in id order
    query = select(RequestDevice.machine_id, *order).where(waiting).order_by(*order)
    rows = (await session.execute(query if limit is None else query.limit(limit))).all()
    done = limit is None or len(rows) < limit
    piece = waiting if done else waiting & (tuple_(*order) <= tuple_(*rows[-1][1:]))
    runnable = [row[0] for row in rows]
    if spec is not None and spec.tag_action is not None:
        jobs = [
            _job(record.id, JobKind.TAG_CHUNK, runnable[start : start + TAG_CHUNK], JobState.QUEUED, now)
            for start in range(0, len(runnable), TAG_CHUNK)
        ]
        await session.execute(update(RequestDevice).where(piece).values(state=DeviceState.QUEUED, updated_at=now))
    else:
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
        await session.execute(update(RequestDevice).where(piece).values(state=held, updated_at=now))
        if first:  # the canary: a handful of ids, so the IN list stays small
            await session.execute(
                update(RequestDevice)
                .where(mine, RequestDevice.machine_id.in_(first))
                .values(state=DeviceState.QUEUED, updated_at=now)
            )
    await _insert_jobs(session, jobs)
    if done:
        await _created(session, record, now)
    return len(runnable), done


async def prepared_count(session: AsyncSession, *, request_id: int, runs: int) -> int:
    """Devices that will run once every piece is written (each piece's own count is lost with a crash between
    pieces); ``runs`` (the last piece's) for a request without devices: a tenant-wide job."""
    count = await session.scalar(
        select(func.count()).where(
            RequestDevice.request_id == request_id,
            RequestDevice.state.is_not(None),
            RequestDevice.state != DeviceState.SKIPPED,
        )
    )
    return int(count or 0) or runs


async def _created(session: AsyncSession, record: RequestRecord, now: datetime) -> None:
    await session.execute(
        update(RequestRecord)
        .where(RequestRecord.id == record.id)
        .values(jobs_created_at=now)
        .execution_options(synchronize_session=False)
    )


async def _insert_jobs(session: AsyncSession, jobs: list[dict[str, Any]]) -> None:
    """By the database's fast path (``COPY`` on PostgreSQL), in pieces: one transaction, and the event loop
    serves others (a click, a Slack ack) between pieces."""
    for start in range(0, len(jobs), _INSERT_CHUNK):
        chunk = jobs[start : start + _INSERT_CHUNK]
        await insert_columns(session, _JOBS, {name: [job[name] for job in chunk] for name in chunk[0]})


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


# -- claims ----------------------------------------------------------------------------------------------------


async def claim_jobs(
    session: AsyncSession, *, owner: str, limit: int, now: datetime, stale: timedelta, is_postgres: bool
) -> list[Job]:
    """Claim queued jobs, and submitting jobs whose worker stopped heartbeating (it died mid-call)."""
    due = or_(
        (Job.state == JobState.QUEUED.value) & (Job.next_attempt_at <= now),
        (Job.state == JobState.SUBMITTING.value) & Job.owner.not_in(alive_owners(now, stale)),
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


async def submitted_jobs(
    session: AsyncSession, *, owner: str, now: datetime, stale: timedelta, limit: int = 10000
) -> list[Job]:
    """Jobs to poll: this worker's, and any whose worker stopped heartbeating (taken over)."""
    query = (
        select(Job)
        .where(
            Job.state == JobState.SUBMITTED.value,
            or_(Job.owner == owner, Job.owner.is_(None), Job.owner.not_in(alive_owners(now, stale))),
        )
        .order_by(Job.submitted_at)
        .limit(limit)
    )
    jobs = list(await session.scalars(query))
    for job in jobs:
        job.owner = owner
    return jobs


async def lock_owned(
    session: AsyncSession, *, job_ids: Sequence[int], owner: str, state: JobState, is_postgres: bool
) -> set[int]:
    """The jobs of ``job_ids`` still held by ``owner`` in ``state`` (row-locked on PostgreSQL)."""
    if not job_ids:
        return set()
    query = select(Job.id).where(Job.id.in_(job_ids), Job.owner == owner, Job.state == state.value)
    if is_postgres:
        query = query.with_for_update()
    return set(await session.scalars(query))


# -- results: one statement per kind of change, whatever the batch size ------------------------------------------


async def store_submitted(
    session: AsyncSession, *, items: Sequence[tuple[Job, str, DeviceState]], now: datetime
) -> None:
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
    await update_devices(session, [r for job, a, status in items for r in device_rows(job, status, now, a)])


async def store_final(
    session: AsyncSession, *, items: Sequence[tuple[Job, DeviceState, str | None]], now: datetime
) -> None:
    """(job, outcome, error) for jobs that are done."""
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
    await update_devices(session, [r for job, o, error in items for r in device_rows(job, o, now, None, error)])


async def store_retries(session: AsyncSession, *, items: Sequence[tuple[Job, datetime, str]]) -> None:
    """(job, when, why) for jobs to try again: back to the queue, unowned."""
    if items:
        await session.execute(
            update(Job),
            [
                {"id": job.id, "state": JobState.QUEUED.value, "next_attempt_at": at, "error": error, "owner": None}
                for job, at, error in items
            ],
        )


async def store_status(session: AsyncSession, *, items: Sequence[tuple[Job, DeviceState]], now: datetime) -> None:
    """Intermediate MDE statuses (Pending -> InProgress) for the card."""
    if items:
        await session.execute(update(Job), [{"id": job.id, "mde_status": status} for job, status in items])
        await update_devices(session, [r for job, status in items for r in device_rows(job, status, now)])


async def device_names(session: AsyncSession, *, jobs: Sequence[Job]) -> dict[tuple[int, str], str]:
    """(request id, machine id) -> device name, for the devices of ``jobs`` (thread lines name devices)."""
    wanted = {(job.request_id, m) for job in jobs for m in job.machine_ids}
    if not wanted:
        return {}
    rows = await session.execute(
        select(RequestDevice.request_id, RequestDevice.machine_id, RequestDevice.name).where(
            RequestDevice.request_id.in_({r for r, _m in wanted}),
            RequestDevice.machine_id.in_({m for _r, m in wanted}),
        )
    )
    return {(r, m): n for r, m, n in rows.all()}
