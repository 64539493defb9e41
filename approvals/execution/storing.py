"""Recording what MDE did, in one transaction per batch: submitted actions, final outcomes (with the
containment register's hook and a thread line per device that did not succeed), retries, and a cancel that
came while the calls were in flight. Flows: the audit rows and events are written here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.execution import service as jobs
from approvals.execution.cancels import BEFORE_SUBMISSION, mark_cancelling
from approvals.execution.heartbeats import heartbeat
from approvals.execution.models import Job, JobState
from approvals.execution.submitting import Result
from approvals.identity import SYSTEM
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.requests.models import DeviceState, RequestRecord
from approvals.requests.states import RequestState

log = logging.getLogger(__name__)

#: called in the transaction that stores settled jobs, with the (job, outcome) pairs (the containment register)
OnFinal = Callable[[AsyncSession, Sequence[tuple[Job, str]], datetime], Awaitable[None]]


async def settle_jobs(
    session: AsyncSession,
    items: Sequence[tuple[Job, DeviceState, str | None]],
    *,
    now: datetime,
    on_final: OnFinal | None,
    announce: bool = True,
) -> None:
    """(job, outcome, error) for jobs that are done; ``announce``: a thread line per device that did not
    succeed (a cancel's outcomes are reported together, in the summary, instead)."""
    if not items:
        return
    await jobs.store_final(session, items=items, now=now)
    if on_final is not None:
        await on_final(session, [(job, outcome) for job, outcome, _e in items], now)
    failed = [(job, outcome, error) for job, outcome, error in items if outcome != DeviceState.SUCCEEDED]
    if not failed or not announce:
        return
    names = await jobs.device_names(session, jobs=[job for job, _o, _e in failed])
    for job, outcome, error in failed:
        devices = [names.get((job.request_id, m), m) for m in job.machine_ids]
        emit(session, job.request_id, EventKind.DEVICE_FAILED, devices=devices, outcome=outcome, error=error)


async def store_results(
    session: AsyncSession,
    results: Sequence[Result],
    *,
    owner: str,
    now: datetime,
    is_postgres: bool,
    on_final: OnFinal | None,
) -> list[int]:
    """Record a claimed batch's results; returns the jobs whose action went out after their request was
    cancelled (to cancel in MDE). Jobs this worker no longer owns (taken over) are skipped."""
    # writing first takes SQLite's write lock, so nothing commits between the reads below and our writes
    await heartbeat(session, owner=owner, now=now)
    live = await jobs.lock_owned(
        session, job_ids=[r.job.id for r in results], owner=owner, state=JobState.SUBMITTING, is_postgres=is_postgres
    )
    # the request may have been cancelled while these calls were in flight: read its state now (on PostgreSQL
    # with a share lock, which waits for a cancel that is committing)
    query = select(RequestRecord.id, RequestRecord.state).where(
        RequestRecord.id.in_({r.job.request_id for r in results})
    )
    if is_postgres:
        query = query.with_for_update(read=True)
    cancelled = {rid for rid, state in (await session.execute(query)).all() if state == RequestState.CANCELLED.value}
    submitted, finals, retries, late_cancel = [], [], [], []
    stopped: list[tuple[Job, DeviceState, str | None]] = []
    for result in results:
        job = result.job
        if job.id not in live:
            if result.action is not None:
                log.warning("job %s was taken over; the adopter finds action %s", job.id, result.action.id)
            continue
        verb = result.record.verb if result.record else None
        if result.action is not None:
            submitted.append((job, result.action.id, DeviceState.of(result.action.status)))
            audit(
                session,
                "action.submitted",
                SYSTEM,
                request_id=job.request_id,
                verb=verb,
                devices=list(job.machine_ids),
                action_ids=[result.action.id],
                outcome=result.action.status.value,
            )
            if job.request_id in cancelled:
                late_cancel.append(job.id)
        elif job.request_id in cancelled and result.outcome in (None, DeviceState.CANCELLED):
            stopped.append((job, DeviceState.CANCELLED, BEFORE_SUBMISSION))
        elif result.outcome is not None:
            finals.append((job, result.outcome, result.error))
            if result.note:
                emit(session, job.request_id, EventKind.NOTE, text=result.note)
                audit(
                    session,
                    "indicator.applied",
                    SYSTEM,
                    request_id=job.request_id,
                    verb=verb,
                    outcome=result.outcome,
                    text=result.note,
                )
        else:
            retries.append((job, result.retry_at or now, result.error or "retry"))
    await jobs.store_submitted(session, items=submitted, now=now)
    await settle_jobs(session, finals, now=now, on_final=on_final)
    await settle_jobs(session, stopped, now=now, on_final=on_final, announce=False)
    await jobs.store_retries(session, items=retries)
    await mark_cancelling(session, job_ids=late_cancel, now=now)
    return late_cancel
