"""Write audit rows (same transaction as the change) and read them back for export."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.models import AuditEntry
from approvals.db import Database, utcnow
from approvals.identity import Actor


def audit(
    session: AsyncSession,
    event: str,
    actor: Actor,
    *,
    request_id: int | None = None,
    verb: str | None = None,
    surface: str | None = None,
    channel_id: str | None = None,
    devices: Sequence[str] = (),
    action_ids: Sequence[str] = (),
    outcome: str | None = None,
    text: str | None = None,
    **details: Any,
) -> None:
    session.add(
        AuditEntry(
            at=utcnow(),
            event=event,
            actor_key=actor.key,
            actor_label=actor.label(),
            actor_email=actor.email,
            surface=surface or actor.platform,
            channel_id=channel_id,
            request_id=request_id,
            verb=verb,
            devices=list(devices),
            action_ids=list(action_ids),
            outcome=outcome,
            text=text,
            details=details,
        )
    )


async def iter_audit(
    db: Database, *, since: datetime | None = None, until: datetime | None = None, batch: int = 1000
) -> AsyncIterator[AuditEntry]:
    """Stream the log in id order, a batch at a time, so a large export never sits in memory whole."""
    last_id = 0
    while True:
        async with db.sessions() as session:
            query = select(AuditEntry).where(AuditEntry.id > last_id)
            if since is not None:
                query = query.where(AuditEntry.at >= since)
            if until is not None:
                query = query.where(AuditEntry.at < until)
            rows = list(await session.scalars(query.order_by(AuditEntry.id).limit(batch)))
        if not rows:
            return
        for row in rows:
            yield row
        last_id = rows[-1].id


def entry_dict(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": (row.at or utcnow()).isoformat(),
        "event": row.event,
        "actor": row.actor_key,
        "actor_label": row.actor_label,
        "actor_email": row.actor_email,
        "surface": row.surface,
        "channel_id": row.channel_id,
        "request_id": row.request_id,
        "verb": row.verb,
        "devices": row.devices or [],
        "action_ids": row.action_ids or [],
        "outcome": row.outcome,
        "text": row.text,
        "details": row.details or {},
    }
