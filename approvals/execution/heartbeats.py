"""Worker liveness: heartbeats, a restarted worker's new incarnation, and the fencing of an older one.

A job claimed by a worker whose heartbeat went stale is taken over by another (``alive_owners``); a
replica restarted under the same identity hands its previous life's claims over at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.execution.models import Job, JobState, WorkerRecord

#: suffix given to the jobs a restarted worker finds in its own name: the takeover path then adopts them at once
BEFORE_RESTART = "~before-restart"
#: two timestamps closer than this are the same incarnation (databases round timestamps differently)
_SAME_INSTANT = timedelta(milliseconds=1)


def alive_owners(now: datetime, stale: timedelta) -> Select[str]:
    """The workers that heartbeated within ``stale``: jobs held by anyone else are up for takeover."""
    return select(WorkerRecord.owner).where(WorkerRecord.heartbeat_at >= now - stale)


async def heartbeat(session: AsyncSession, *, owner: str, now: datetime) -> None:
    result = await session.execute(update(WorkerRecord).where(WorkerRecord.owner == owner).values(heartbeat_at=now))
    if not result.rowcount:  # type: ignore[attr-defined]
        session.add(WorkerRecord(owner=owner, started_at=now, heartbeat_at=now))


async def begin_incarnation(session: AsyncSession, *, owner: str, now: datetime) -> int:
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


async def is_current_incarnation(session: AsyncSession, *, owner: str, started_at: datetime) -> bool:
    """False once another process started under the same identity (it reset ``started_at``)."""
    current = await session.scalar(select(WorkerRecord.started_at).where(WorkerRecord.owner == owner))
    return current is None or abs(current - started_at) < _SAME_INSTANT
