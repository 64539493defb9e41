"""Incident storage: one row per (source, workspace, external id), updates as diffs, the feed, threads,
rejects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.db import utcnow
from approvals.incidents.models import (
    ConversationRecord,
    IncidentEvent,
    IncidentRecord,
    IncidentThread,
    WebhookNonce,
    WebhookReject,
)
from approvals.incidents.payloads import IncidentData
from approvals.views import IncidentView

MAX_KEPT_BODY = 256 * 1024


@dataclass
class Upsert:
    record: IncidentRecord
    created: bool
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    new_devices: list[dict[str, Any]] = field(default_factory=list)
    newly_closed: bool = False
    reopened: bool = False


def emit_incident(session: AsyncSession, incident_id: int, kind: str, **payload: Any) -> None:
    session.add(IncidentEvent(incident_id=incident_id, kind=kind, payload=payload, created_at=utcnow()))


class AmbiguousIncident(LookupError):
    """``incident:KEY`` names incidents of more than one workspace; the message lists them."""


def _fields(data: IncidentData) -> dict[str, Any]:
    """What a payload sets on the incident: an alert folded into it brings its entities, nothing else."""
    if data.alert_only:
        return {"entity_kinds": sorted(data.entity_kinds)}
    return {
        "title": data.title,
        "severity": data.severity,
        "status": data.status,
        "closed": data.closed,
        "product": data.product,
        "url": data.url,
        "tags": list(data.tags),
        "entity_kinds": sorted(data.entity_kinds),
    }


async def upsert(session: AsyncSession, data: IncidentData, raw: dict[str, Any]) -> Upsert:
    """Insert a new incident or apply an update to the stored one (the same incident twice changes nothing)."""
    existing = await get_by_key(session, data.source, data.external_id, workspace=data.workspace, for_update=True)
    devices = [d.as_dict() for d in data.devices]
    if existing is None:
        record = IncidentRecord(
            source=data.source,
            workspace=data.workspace,
            external_id=data.external_id,
            devices=devices,
            raw=raw,
            rules=[],
            # an alert that arrives before its incident opens it: the alert's words, never closed
            title=data.title,
            severity=data.severity,
            status="active" if data.alert_only else data.status,
            closed=False,
            alerts=[a.as_dict() for a in data.alerts],
        )
        for name, value in _fields(data).items():
            setattr(record, name, value)
        try:
            async with session.begin_nested():
                session.add(record)
            return Upsert(record=record, created=True, new_devices=devices)
        except IntegrityError:  # another replica stored it a moment ago: this is an update of that one
            existing = await get_by_key(
                session, data.source, data.external_id, workspace=data.workspace, for_update=True
            )
            assert existing is not None
    result = Upsert(record=existing, created=False)
    for name, value in _fields(data).items():
        if name == "entity_kinds" and data.alert_only:  # an alert's entity kinds add to the incident's
            value = sorted(set(existing.entity_kinds or []) | set(value))
        old = getattr(existing, name)
        if old != value:
            result.changes[name] = (old, value)
            setattr(existing, name, value)
    alerts = merge_alerts(existing.alerts or [], data)
    if alerts != (existing.alerts or []):
        result.changes["alerts"] = (existing.alerts or [], alerts)
        existing.alerts = alerts
    added = unnamed(existing.devices, devices)
    if added:  # entities only ever accumulate: an update that omits a host does not un-name it
        existing.devices = [*existing.devices, *added]
        result.new_devices = added
    result.newly_closed = "closed" in result.changes and existing.closed
    result.reopened = "closed" in result.changes and not existing.closed
    if result.changes or added:
        existing.raw = raw
        existing.updated_at = utcnow()
    return result


def merge_alerts(known: list[dict[str, Any]], data: IncidentData) -> list[dict[str, Any]]:
    """The incident's alerts after this payload: a reported alert replaces its stored state (same id), a new one
    is added, and one the payload does not mention stays as it was (an alert payload names only itself)."""
    by_id = {a["id"]: a for a in known}
    for alert in data.alerts:
        by_id[alert.id] = alert.as_dict()
    return list(by_id.values())


async def merged_into(session: AsyncSession, incident_id: int) -> list[int]:
    """Our ids of the incidents merged into this one, directly or through one another (B into A after C into
    B), each once, nearest first. ``merged_into`` is set only while an incident stays ``redirected``."""
    found: list[int] = []
    seen = {incident_id}
    frontier = [incident_id]
    while frontier:
        query = select(IncidentRecord.id).where(IncidentRecord.merged_into.in_(frontier)).order_by(IncidentRecord.id)
        frontier = [i for i in await session.scalars(query) if i not in seen]
        seen.update(frontier)
        found.extend(frontier)
    return found


def unnamed(known: list[dict[str, Any]], devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The devices an incident does not name yet (same MDE id and DNS name, case-insensitively)."""
    keys = {(d.get("mde_device_id"), (d.get("dns_name") or "").lower()) for d in known}
    return [d for d in devices if (d.get("mde_device_id"), (d.get("dns_name") or "").lower()) not in keys]


async def get_by_key(
    session: AsyncSession, source: str, external_id: str, *, workspace: str = "", for_update: bool = False
) -> IncidentRecord | None:
    query = select(IncidentRecord).where(
        IncidentRecord.source == source,
        IncidentRecord.workspace == workspace,
        IncidentRecord.external_id == external_id,
    )
    if for_update:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


def workspace_name(workspace: str) -> str:
    """How a workspace is shown: the name at the end of its ARM id (or the id itself)."""
    return workspace.rstrip("/").rsplit("/", 1)[-1]


async def find(session: AsyncSession, key: str) -> IncidentRecord | None:
    """``incident:KEY`` as users type it: the Sentinel incident number or Graph id, or ``#<our id>``.
    A number that two Sentinel workspaces both use raises ``AmbiguousIncident`` (never a guess)."""
    key = key.strip()
    if key.startswith("#") and key[1:].isdigit():
        return await session.get(IncidentRecord, int(key[1:]))
    query = select(IncidentRecord).where(IncidentRecord.external_id == key).order_by(IncidentRecord.id.desc())
    found = list(await session.scalars(query))
    keys = {(r.source, r.workspace) for r in found}
    if len(keys) > 1:
        where = ", ".join(f"incident:#{r.id} ({workspace_name(r.workspace) or r.source})" for r in found)
        raise AmbiguousIncident(f"Incident {key} exists in more than one workspace; name one: {where}.")
    return found[0] if found else None


async def events_after(session: AsyncSession, last_id: int, limit: int = 100) -> list[IncidentEvent]:
    query = select(IncidentEvent).where(IncidentEvent.id > last_id).order_by(IncidentEvent.id).limit(limit)
    return list(await session.scalars(query))


async def threads_for(session: AsyncSession, incident_id: int, surface: str | None = None) -> list[IncidentThread]:
    query = select(IncidentThread).where(IncidentThread.incident_id == incident_id).order_by(IncidentThread.id)
    if surface is not None:
        query = query.where(IncidentThread.surface == surface)
    return list(await session.scalars(query))


async def latest_event_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(IncidentEvent.id))) or 0)


async def thread_for(session: AsyncSession, incident_id: int, surface: str, channel_id: str) -> IncidentThread | None:
    query = select(IncidentThread).where(
        IncidentThread.incident_id == incident_id,
        IncidentThread.surface == surface,
        IncidentThread.channel_id == channel_id,
    )
    return (await session.scalars(query)).first()


async def add_thread(
    session: AsyncSession,
    incident_id: int,
    *,
    surface: str,
    channel_id: str,
    rule: str,
    mention: str | None,
    message_id: str | None = None,
    context: str | None = None,
) -> bool:
    """Route the incident to a channel once; False when it already goes there. ``message_id`` continues
    an existing war-room thread (a merged incident's) instead of posting a new root."""
    if await thread_for(session, incident_id, surface, channel_id) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                IncidentThread(
                    incident_id=incident_id,
                    surface=surface,
                    channel_id=channel_id,
                    rule=rule,
                    mention=mention,
                    message_id=message_id,
                    context=context,
                )
            )
    except IntegrityError:
        return False
    return True


async def first_use(session: AsyncSession, digest: str, window: timedelta) -> bool:
    """Record a signature as used; False if it was used before (a replay), on this replica or another."""
    now = utcnow()
    await session.execute(delete(WebhookNonce).where(WebhookNonce.seen_at < now - 2 * window))
    try:
        async with session.begin_nested():
            session.add(WebhookNonce(digest=digest, seen_at=now))
    except IntegrityError:
        return False
    return True


def record_reject(session: AsyncSession, reason: str, body: bytes) -> None:
    text = body[:MAX_KEPT_BODY].decode("utf-8", errors="replace")
    session.add(WebhookReject(reason=reason[:2000], body=text, received_at=utcnow()))


async def remember_conversation(session: AsyncSession, surface: str, channel_id: str, context: str | None) -> None:
    row = await session.get(ConversationRecord, (surface, channel_id))
    if row is None:
        try:
            async with session.begin_nested():
                session.add(ConversationRecord(surface=surface, channel_id=channel_id, context=context))
        except IntegrityError:
            pass
    elif row.context != context:
        row.context = context
        row.updated_at = utcnow()


async def conversation_context(session: AsyncSession, surface: str, channel_id: str) -> str | None:
    row = await session.get(ConversationRecord, (surface, channel_id))
    return row.context if row else None


def build_view(record: IncidentRecord, mention: str | None = None) -> IncidentView:
    devices = tuple(d.get("dns_name") or d.get("mde_device_id") or "?" for d in record.devices)
    return IncidentView(
        id=record.id,
        source=record.source,
        workspace=workspace_name(record.workspace),
        external_id=record.external_id,
        title=record.title,
        severity=record.severity,
        status=record.status,
        closed=record.closed,
        product=record.product,
        url=record.url,
        devices=devices,
        rules=tuple(record.rules or ()),
        mention=mention,
    )


async def devices_of(session: AsyncSession, key: str) -> tuple[list[str], list[str]] | None:
    """``incident:KEY`` -> (MDE device ids, DNS names without an id) for the resolver."""
    record = await find(session, key)
    if record is None:
        return None
    ids = [d["mde_device_id"] for d in record.devices if d.get("mde_device_id")]
    names = [d["dns_name"] for d in record.devices if not d.get("mde_device_id") and d.get("dns_name")]
    return ids, names
