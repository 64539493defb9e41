"""Job creation after approval, in the background: the approval click answers at once (issue 18).

An approval records the decision and the state ``approved`` only; a worker (woken by the approval, or on its
next round) creates the request's jobs in one transaction that also marks them created
(``requests.jobs_created_at``). That mark is the first write of the transaction, so two creators (replicas)
serialise on the request's row and the loser finds it set; an approval recorded before a crash still gets its
jobs, once, after the restart; a request cancelled before its jobs exist is no longer ``approved`` and gets none.
"""

from __future__ import annotations

from approvals.db import Clock, Database
from approvals.execution import service as jobs
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit


async def prepare_approved(db: Database, clock: Clock) -> list[int]:
    """Create the jobs of every approved request that has none yet; returns the requests this call prepared."""
    async with db.sessions() as session:
        ids = await jobs.approved_without_jobs(session)
    prepared = []
    for request_id in ids:
        if await prepare_one(db, clock, request_id):
            prepared.append(request_id)
    return prepared


async def prepare_one(db: Database, clock: Clock, request_id: int) -> bool:
    """Create one approved request's jobs, unless another creator did or the request is no longer approved."""
    async with db.transaction() as session:
        now = clock()
        record = await jobs.claim_creation(session, request_id=request_id, now=now)
        if record is None:
            return False
        runs = await jobs.create_jobs(
            session, record=record, include_protected=record.break_glass_by is not None, now=now
        )
        emit(session, request_id, EventKind.PROGRESS, prepared=runs)  # the card: "preparing" becomes counts
    return True
