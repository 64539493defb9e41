"""Settling requests: release or stop a canary's held jobs, close a request whose jobs are all done (state,
FINISHED event, audit), and publish progress. Flows: state changes and events happen here, the queries are in
``execution.settle_store``."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.execution import settle_store as store
from approvals.execution.models import JobState
from approvals.execution.service import LIVE_JOB_STATES
from approvals.identity import SYSTEM
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.requests.models import FAILED_DEVICE_STATES, DeviceState, RequestRecord
from approvals.requests.service import progress_for
from approvals.requests.states import RequestState, transition

CANARY_FAILED = "not attempted: the canary batch failed"


async def release_canary(session: AsyncSession, *, request_id: int, now: datetime) -> str | None:
    """After the canary batch: release the rest if every canary succeeded, else stop with a report.

    Returns the thread line when this call decided, None while the canary runs (or there is none)."""
    canary, held = await store.canary_jobs(session, request_id=request_id)
    if not canary or not held or any(j.state != JobState.DONE.value for j in canary):
        return None
    failed = [j for j in canary if j.outcome != DeviceState.SUCCEEDED]
    if failed:
        await store.skip_held(session, request_id=request_id, error=CANARY_FAILED, now=now)
        text = f"Canary batch failed on {len(failed)} of {len(canary)} device(s); the other {held} were not attempted."
    else:
        await store.release_held(session, request_id=request_id, now=now)
        text = f"Canary batch of {len(canary)} succeeded; releasing the other {held} device(s)."
    emit(session, request_id, EventKind.NOTE, text=text)
    return text


async def finalize_if_done(session: AsyncSession, *, request_id: int, now: datetime) -> RequestState | None:
    """Close a request whose jobs are all settled; returns the final state if this call closed it.

    An approved request whose jobs are not all created yet is not done: it has no live job because the worker
    has not written them, or ran its first piece's jobs before writing the next (a cancelled one, which will
    never get any more, is)."""
    record = await session.get(RequestRecord, request_id)
    if record is None or record.summarized_at is not None:
        return None
    state = RequestState(record.state)
    if state in (RequestState.APPROVED, RequestState.EXECUTING) and record.jobs_created_at is None:
        return None
    counts = await store.live_job_counts(session, request_id=request_id)
    if any(counts.get(s.value, 0) for s in LIVE_JOB_STATES):
        return None
    outcomes = await store.outcome_counts(session, request_id=request_id)
    succeeded = outcomes.get(DeviceState.SUCCEEDED, 0)
    failed = sum(n for s, n in outcomes.items() if s in FAILED_DEVICE_STATES)
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
    if not await store.mark_summarized(session, request_id=request_id, now=now):
        return None
    emit(session, request_id, EventKind.FINISHED, state=final.value, succeeded=succeeded, failed=failed)
    audit(
        session,
        "request.finished",
        SYSTEM,
        request_id=request_id,
        verb=record.verb,
        outcome=final.value,
        action_ids=await store.action_ids(session, request_id=request_id),
        succeeded=succeeded,
        failed=failed,
        counts=outcomes,
    )
    return final


class ProgressReports:
    """One PROGRESS event per request when its counts changed, at most every ``interval_s`` (a card edit
    each, so not one per settled job)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._sent: dict[int, tuple[int, int]] = {}
        self._at: dict[int, float] = {}

    async def maybe_emit(self, session: AsyncSession, request_id: int) -> None:
        view = await progress_for(session, request_id)
        key = (view.submitted, view.done)
        now = asyncio.get_running_loop().time()
        if self._sent.get(request_id) == key or now - self._at.get(request_id, 0.0) < self.interval_s:
            return
        self._sent[request_id], self._at[request_id] = key, now
        emit(
            session,
            request_id,
            EventKind.PROGRESS,
            submitted=view.submitted,
            done=view.done,
            total=view.total,
            failed=view.failed,
        )

    def forget(self, request_id: int) -> None:
        """The request closed: nothing more to report."""
        self._sent.pop(request_id, None)
        self._at.pop(request_id, None)
