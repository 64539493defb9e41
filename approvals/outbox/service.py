"""Append events, read them after a cursor, lease a surface's cursor, remember where cards live."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.db import utcnow
from approvals.outbox.models import DeliveryCursor, Event, EventKind, MessageRefRecord


def emit(session: AsyncSession, request_id: int, kind: EventKind, **payload: Any) -> None:
    """Queue an event in the caller's transaction: it exists if and only if the change commits."""
    session.add(Event(request_id=request_id, kind=kind.value, payload=payload, created_at=utcnow()))


async def events_after(session: AsyncSession, last_id: int, limit: int = 200) -> list[Event]:
    rows = await session.scalars(select(Event).where(Event.id > last_id).order_by(Event.id).limit(limit))
    return list(rows)


async def latest_event_id(session: AsyncSession) -> int:
    value = await session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
    return int(value or 0)


async def lease_cursor(
    session: AsyncSession, surface: str, owner: str, ttl: timedelta, now: datetime | None = None
) -> int | None:
    """Take (or renew) the right to deliver ``surface``'s feed; returns the cursor, or None if held elsewhere."""
    now = now or utcnow()
    if await session.get(DeliveryCursor, surface) is None:
        try:
            async with session.begin_nested():
                session.add(DeliveryCursor(surface=surface, last_event_id=0))
        except IntegrityError:
            pass
    result = await session.execute(
        update(DeliveryCursor)
        .where(
            DeliveryCursor.surface == surface,
            or_(
                DeliveryCursor.owner.is_(None),
                DeliveryCursor.owner == owner,
                DeliveryCursor.lease_until < now,
            ),
        )
        .values(owner=owner, lease_until=now + ttl)
        .returning(DeliveryCursor.last_event_id)
    )
    row = result.first()
    return None if row is None else int(row[0])


async def advance_cursor(session: AsyncSession, surface: str, owner: str, event_id: int) -> bool:
    result = await session.execute(
        update(DeliveryCursor)
        .where(DeliveryCursor.surface == surface, DeliveryCursor.owner == owner)
        .values(last_event_id=event_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_message_ref(session: AsyncSession, request_id: int, surface: str) -> MessageRefRecord | None:
    return await session.scalar(
        select(MessageRefRecord).where(MessageRefRecord.request_id == request_id, MessageRefRecord.surface == surface)
    )


def save_message_ref(
    session: AsyncSession,
    request_id: int,
    surface: str,
    channel_id: str,
    message_id: str,
    context: str | None,
    thread_id: str | None = None,
) -> None:
    session.add(
        MessageRefRecord(
            request_id=request_id,
            surface=surface,
            channel_id=channel_id,
            message_id=message_id,
            context=context,
            thread_id=thread_id,
        )
    )
