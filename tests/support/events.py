"""The outbox as a thread reader sees it: the note lines stored for one request, in the order written."""

from __future__ import annotations

from sqlalchemy import select

from approvals.outbox.models import Event
from tests.support.stack import Stack


async def notes(stack: Stack, request_id: int) -> list[str]:
    async with stack.db.sessions() as session:
        rows = await session.scalars(
            select(Event).where(Event.request_id == request_id, Event.kind == "note").order_by(Event.id)
        )
        return [str(e.payload.get("text")) for e in rows]
