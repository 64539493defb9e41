"""Rows the storage tests start from, written the way the engine writes them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from approvals.db import utcnow
from approvals.requests.models import RequestRecord
from approvals.verbs import Verb


async def add_request(session: AsyncSession, *, state: str = "pending", verb: Verb = Verb.ISOLATE) -> RequestRecord:
    """A console request by alice on ws-1, flushed so it has its id."""
    now = utcnow()
    record = RequestRecord(
        verb=verb,
        params={},
        state=state,
        requester_key="console:alice",
        requester_label="alice",
        origin_surface="console",
        origin_channel="console",
        target_text="ws-1",
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    await session.flush()
    return record
