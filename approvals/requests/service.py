"""Storage queries for requests: insert the snapshot, read decisions and progress, list history. No chat, no HTTP.

The card's read model is built in ``approvals.requests.views``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.bulk import insert_columns
from approvals.identity import Actor, Origin
from approvals.requests.models import (
    CANCELLING_DEVICE_STATES,
    FAILED_DEVICE_STATES,
    SUBMITTED_DEVICE_STATES,
    Decision,
    DeviceState,
    RequestDevice,
    RequestExclusion,
    RequestRecord,
)
from approvals.requests.states import RequestState
from approvals.resolution.flows import Resolution
from approvals.resolution.priority import priority
from approvals.verbs import Verb
from approvals.views import ProgressView

#: Core tables for the bulk inserts (approvals.bulk), where ORM objects cost a flush step per row
_DEVICES: Table = RequestDevice.__table__  # type: ignore[assignment]
_EXCLUSIONS: Table = RequestExclusion.__table__  # type: ignore[assignment]


async def insert_request(
    session: AsyncSession,
    *,
    actor: Actor,
    origin: Origin,
    verb: Verb,
    params: dict[str, Any],
    reason: str | None,
    target_text: str,
    resolution: Resolution,
    required_approvals: int,
    created_at: datetime,
    expires_at: datetime,
    canary: int | None,
    incident_id: str | None = None,
    warnings: list[str] | None = None,
) -> RequestRecord:
    record = RequestRecord(
        verb=verb,
        params=params,
        state=RequestState.PENDING.value,
        requester_key=actor.key,
        requester_label=actor.label(),
        requester_email=actor.email,
        origin_surface=origin.surface,
        origin_channel=origin.channel_id,
        origin_context=origin.context,
        reason=reason,
        target_text=target_text,
        required_approvals=required_approvals,
        touches_protected=bool(resolution.protected),
        canary=canary,
        incident_id=incident_id,
        warnings=warnings or [],
        created_at=created_at,
        updated_at=created_at,
        expires_at=expires_at,
    )
    session.add(record)
    await session.flush()
    # column by column, one driver call per table (COPY on PostgreSQL): 100,000 devices in about a second
    await insert_columns(session, _DEVICES, _device_columns(record.id, resolution))
    exclusions = resolution.exclusions
    await insert_columns(
        session,
        _EXCLUSIONS,
        {
            "request_id": [record.id] * len(exclusions),
            "machine_id": [e.machine_id for e in exclusions],
            "name": [e.name for e in exclusions],
            "kind": [e.kind for e in exclusions],
            "reason": [e.reason for e in exclusions],
        },
    )
    return record


def _device_columns(request_id: int, resolution: Resolution) -> dict[str, list[Any]]:
    devices = resolution.devices
    protection = [resolution.protection[m.id] for m in devices]
    matched_by, notes, alerted = resolution.matched_by, resolution.notes, resolution.alerted
    return {
        "request_id": [request_id] * len(devices),
        "machine_id": [m.id for m in devices],
        "name": [m.computer_dns_name for m in devices],
        "os_platform": [m.os_platform for m in devices],
        "health_status": [m.health_status for m in devices],
        "last_seen": [m.last_seen for m in devices],
        "tags": [m.machine_tags for m in devices],  # a tuple is written as the same JSON array as a list
        "group_name": [m.rbac_group_name for m in devices],
        "protection": [p.level for p in protection],
        "warning": [p.reason if p.level != "none" else None for p in protection],
        "priority": [
            priority(m, named_by_incident=_named_by_incident(matched_by.get(m.id, ())), alerted=m.id in alerted)
            for m in devices
        ],
        "note": [notes.get(m.id) for m in devices],
    }


def _named_by_incident(targets: Sequence[str]) -> bool:
    return any(t.startswith("incident:") for t in targets)


async def get_request(session: AsyncSession, request_id: int, *, for_update: bool = False) -> RequestRecord | None:
    query = select(RequestRecord).where(RequestRecord.id == request_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def lock_request(session: AsyncSession, *, request_id: int, now: datetime) -> RequestRecord | None:
    """Take the request's row lock first (PostgreSQL row lock, SQLite write lock), then read it: a decision
    and a cancel of one request serialise."""
    await session.execute(
        update(RequestRecord)
        .where(RequestRecord.id == request_id)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return await get_request(session, request_id)


async def decisions_for(session: AsyncSession, request_id: int) -> list[Decision]:
    rows = await session.scalars(select(Decision).where(Decision.request_id == request_id).order_by(Decision.id))
    return list(rows)


async def devices_for(session: AsyncSession, request_id: int) -> list[RequestDevice]:
    rows = await session.scalars(
        select(RequestDevice).where(RequestDevice.request_id == request_id).order_by(RequestDevice.name)
    )
    return list(rows)


async def progress_for(session: AsyncSession, request_id: int, eta_seconds: float | None = None) -> ProgressView:
    """Counts over the devices the request acts on: a protected device without a break-glass approval is
    listed as excluded on the card, so it is not one of the devices to submit either."""
    counts: dict[DeviceState | None, int] = {
        state: count
        for state, count in (
            await session.execute(
                select(RequestDevice.state, func.count())
                .join(RequestRecord, RequestRecord.id == RequestDevice.request_id)
                .where(
                    RequestDevice.request_id == request_id,
                    or_(RequestDevice.protection != "protected", RequestRecord.break_glass_by.is_not(None)),
                )
                .group_by(RequestDevice.state)
            )
        ).all()
    }
    preparing = 0
    if counts.get(None):  # approved, but a worker has not created these devices' jobs yet (in pieces)
        waiting = await session.scalar(
            select(func.count()).where(
                RequestRecord.id == request_id,
                RequestRecord.state.in_([RequestState.APPROVED.value, RequestState.EXECUTING.value]),
                RequestRecord.jobs_created_at.is_(None),
            )
        )
        preparing = counts[None] if waiting else 0
    return progress_of(counts, eta_seconds, preparing=preparing)


def progress_of(
    counts: Mapping[DeviceState | None, int], eta_seconds: float | None = None, *, preparing: int = 0
) -> ProgressView:
    """Progress from the devices per state (a view reads those once for its counts and its progress)."""
    return ProgressView(
        total=sum(counts.values()),
        submitted=sum(n for s, n in counts.items() if s in SUBMITTED_DEVICE_STATES),
        succeeded=counts.get(DeviceState.SUCCEEDED, 0),
        failed=sum(n for s, n in counts.items() if s in FAILED_DEVICE_STATES),
        skipped=counts.get(DeviceState.SKIPPED, 0),
        cancelled=counts.get(DeviceState.CANCELLED, 0),
        cancelling=sum(n for s, n in counts.items() if s in CANCELLING_DEVICE_STATES),
        cancel_waiting=counts.get(DeviceState.CANCEL_WAITING, 0),
        eta_seconds=eta_seconds,
        preparing=preparing,
    )


async def recent_requests(session: AsyncSession, *, limit: int = 10, device: str | None = None) -> list[RequestRecord]:
    query = select(RequestRecord).order_by(RequestRecord.id.desc()).limit(limit)
    if device:
        sub = select(RequestDevice.request_id).where(
            func.lower(RequestDevice.name).startswith(device.lower()) | (RequestDevice.machine_id == device.lower())
        )
        query = query.where(RequestRecord.id.in_(sub))
    return list(await session.scalars(query))


async def open_requests(session: AsyncSession, limit: int = 20) -> list[RequestRecord]:
    live = [RequestState.PENDING.value, RequestState.APPROVED.value, RequestState.EXECUTING.value]
    rows = await session.scalars(
        select(RequestRecord).where(RequestRecord.state.in_(live)).order_by(RequestRecord.id.desc()).limit(limit)
    )
    return list(rows)
