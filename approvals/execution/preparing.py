"""Job creation after approval, in the background: the approval click answers at once (issue 18).

An approval records the decision and the state ``approved`` only; a worker (woken by the approval, or on its
next round) creates the request's jobs in pieces, riskiest devices first, one transaction each: the first piece
is small, so its jobs are claimed and its MDE calls made while the rest is written (at 100,000 devices on
PostgreSQL writing every job took ~2 s, most of it marking the devices queued). Each piece begins by locking the
request's row and takes only devices without a state, which it marks in the transaction that inserts their
jobs; the piece that finds none left sets ``requests.jobs_created_at``. So two creators (replicas) serialise
and never share a device; a crash at any point loses only the open piece, which the restarted worker writes
again, once; a request cancelled between pieces gets no more (it is no longer approved or executing, and the
cancel marks the devices still without a state).
"""

from __future__ import annotations

from collections.abc import Callable

from approvals.db import Clock, Database
from approvals.execution import service as jobs
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit


async def prepare_approved(db: Database, clock: Clock, on_piece: Callable[[], None] | None = None) -> list[int]:
    """Create the jobs of every approved request that has none yet; returns the requests this call prepared."""
    async with db.sessions() as session:
        ids = await jobs.approved_without_jobs(session)
    prepared = []
    for request_id in ids:
        if await prepare_one(db, clock, request_id, on_piece=on_piece):
            prepared.append(request_id)
    return prepared


#: devices in the first piece on PostgreSQL (a multiple of the 500-device tag chunk): small, so the first MDE
#: call is soon. SQLite writes in one piece: its one writer would make the first claim wait for the next piece
#: anyway (measured: first MDE call no sooner, all jobs 0.7 -> 1.1 s at 100,000)
FIRST_PIECE = 2000
#: devices in each later piece: large, so 100,000 devices take few transactions
PIECE = 50000


async def prepare_one(
    db: Database,
    clock: Clock,
    request_id: int,
    *,
    on_piece: Callable[[], None] | None = None,
    first_piece: int | None = None,
    piece: int | None = None,
) -> bool:
    """Create one approved request's jobs, unless another creator did or the request is no longer approved;
    returns whether this call created any. ``on_piece`` runs after each piece commits: the worker wakes its
    submitters there, so the first piece's jobs are claimed while the next is written. The sizes default to
    ``FIRST_PIECE`` and ``PIECE`` on PostgreSQL, one piece on SQLite (None: every device left)."""
    if first_piece is None and piece is None and db.is_postgres:
        first_piece, piece = FIRST_PIECE, PIECE
    created, size = False, first_piece
    while True:
        async with db.transaction() as session:
            record = await jobs.lock_creation(session, request_id=request_id)
            if record is None:
                return created
            now = clock()
            runs, done = await jobs.create_piece(
                session, record=record, include_protected=record.break_glass_by is not None, now=now, size=size
            )
            if done:
                prepared = await jobs.prepared_count(session, request_id=request_id, runs=runs)
                emit(session, request_id, EventKind.PROGRESS, prepared=prepared)  # "preparing" becomes counts
        created, size = True, piece
        if on_piece is not None:
            on_piece()
        if done:
            return True
