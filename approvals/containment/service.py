"""Storage for the containment register and timeline: queries and conditional updates, no chat, no HTTP."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.containment.models import Containment, MdeState, ReconcileCursor, Source, TimelineEntry, TimelineKind
from approvals.containment.timebox import planned_end
from approvals.identity import SYSTEM
from approvals.requests.models import Decision, RequestDevice, RequestRecord

#: the verbs whose success changes the register
CONTAINMENT_VERBS = ("isolate", "unisolate")
#: ``/metrics`` age buckets of devices isolated now: (label, upper bound)
AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("lt_1d", timedelta(days=1)),
    ("1d_3d", timedelta(days=3)),
    ("3d_7d", timedelta(days=7)),
    ("ge_7d", None),
)


@dataclass(frozen=True)
class Isolation:
    """A device found isolated: who asked, for which request and incident, and which MDE action did it."""

    machine_id: str
    device_name: str
    isolation_type: str | None
    source: Source
    requested_by: str
    at: datetime
    action_id: str | None = None
    request_id: int | None = None
    incident_id: str | None = None
    approved_by: str | None = None
    reason: str | None = None
    planned_end: datetime | None = None


def timeline(
    session: AsyncSession,
    *,
    machine_id: str,
    device_name: str,
    at: datetime,
    kind: TimelineKind,
    actor: str | None,
    request_id: int | None = None,
    action_id: str | None = None,
    text: str | None = None,
) -> None:
    session.add(
        TimelineEntry(
            machine_id=machine_id,
            device_name=device_name,
            at=at,
            kind=kind.value,
            actor=actor,
            request_id=request_id,
            action_id=action_id,
            text=text,
        )
    )


async def open_containment(session: AsyncSession, machine_id: str) -> Containment | None:
    return await session.scalar(select(Containment).where(Containment.open_key == machine_id))


async def open_isolation(session: AsyncSession, item: Isolation, now: datetime) -> Containment:
    """Open (or take over) the device's containment; an outside one becomes ours when we isolate it too."""
    row = await open_containment(session, item.machine_id)
    if row is None:
        row = Containment(machine_id=item.machine_id, open_key=item.machine_id)
        session.add(row)
    row.device_name = item.device_name
    row.isolation_type = item.isolation_type
    row.source = item.source.value
    row.request_id, row.incident_id = item.request_id, item.incident_id
    row.requested_by, row.approved_by, row.reason = item.requested_by, item.approved_by, item.reason
    row.isolated_at, row.planned_end = item.at, item.planned_end
    row.mde_state, row.mde_action_id, row.confirmed_at = MdeState.ISOLATED.value, item.action_id, now
    row.adopted_by = row.acknowledged_by = row.acknowledged_reason = None
    row.release_proposal_id, row.reminded_at = None, None
    return row


def close(row: Containment, *, at: datetime, by: str, action_id: str | None, request_id: int | None = None) -> None:
    row.open_key = None
    row.released_at, row.released_by, row.release_request_id = at, by, request_id
    row.mde_state, row.mde_action_id, row.confirmed_at = MdeState.RELEASED.value, action_id, at


class SettledJob(Protocol):
    """A job that reached its final state (``approvals.execution.models.Job``), as the register reads it."""

    request_id: int
    machine_ids: list[str]
    action_id: str | None


async def record_outcomes(session: AsyncSession, items: Sequence[tuple[SettledJob, str]], now: datetime) -> None:
    """The execution hook: (job, outcome) pairs reaching their final state; isolate and unisolate
    successes open and close containments in the same transaction as the job's own update."""
    succeeded = [job for job, outcome in items if outcome == "Succeeded"]
    if not succeeded:
        return
    records = {
        r.id: r
        for r in await session.scalars(
            select(RequestRecord).where(
                RequestRecord.id.in_({j.request_id for j in succeeded}), RequestRecord.verb.in_(CONTAINMENT_VERBS)
            )
        )
    }
    jobs = [j for j in succeeded if j.request_id in records]
    if not jobs:
        return
    names = await _device_names(session, records)
    approvers = await _approvers(session, records)
    for job in jobs:
        record = records[job.request_id]
        for machine_id in job.machine_ids:
            name = names.get((record.id, machine_id), machine_id)
            if record.verb == "isolate":
                await _isolated_by_request(session, record, machine_id, name, job.action_id, approvers, now)
            else:
                await _released_by_request(session, record, machine_id, name, job.action_id, now)


async def _isolated_by_request(
    session: AsyncSession,
    record: RequestRecord,
    machine_id: str,
    name: str,
    action_id: str | None,
    approvers: dict[int, str],
    now: datetime,
) -> None:
    params = record.params or {}
    item = Isolation(
        machine_id=machine_id,
        device_name=name,
        isolation_type=str(params.get("isolation_type") or "Full"),
        source=Source.BOT,
        requested_by=record.requester_label,
        at=now,
        action_id=action_id,
        request_id=record.id,
        incident_id=record.incident_id,
        approved_by=approvers.get(record.id),
        reason=record.reason,
        planned_end=planned_end(params, now),
    )
    await open_isolation(session, item, now)
    _step(session, record, machine_id, name, action_id, now, TimelineKind.ISOLATED, incident_id=record.incident_id)


async def _released_by_request(
    session: AsyncSession, record: RequestRecord, machine_id: str, name: str, action_id: str | None, now: datetime
) -> None:
    row = await open_containment(session, machine_id)
    if row is not None:
        close(row, at=now, by=record.requester_label, action_id=action_id, request_id=record.id)
    _step(
        session,
        record,
        machine_id,
        name,
        action_id,
        now,
        TimelineKind.RELEASED,
        containment_id=row.id if row is not None else None,
    )


STEP_TEXT = {
    TimelineKind.ISOLATED: "isolated ({type}) by request #{id}",
    TimelineKind.RELEASED: "released by request #{id}",
}
STEP_AUDIT = {TimelineKind.ISOLATED: "containment.opened", TimelineKind.RELEASED: "containment.released"}


def _step(
    session: AsyncSession,
    record: RequestRecord,
    machine_id: str,
    name: str,
    action_id: str | None,
    now: datetime,
    kind: TimelineKind,
    **details: Any,
) -> None:
    """One of our requests changed a device's containment: a timeline line and an audit entry."""
    isolation_type = (record.params or {}).get("isolation_type") or "Full"
    timeline(
        session,
        machine_id=machine_id,
        device_name=name,
        at=now,
        kind=kind,
        actor=record.requester_label,
        request_id=record.id,
        action_id=action_id,
        text=STEP_TEXT[kind].format(type=isolation_type, id=record.id),
    )
    audit(
        session,
        STEP_AUDIT[kind],
        SYSTEM,
        request_id=record.id,
        verb=record.verb,
        devices=[machine_id],
        action_ids=[action_id] if action_id else [],
        outcome=kind.value,
        **details,
    )


async def _device_names(session: AsyncSession, records: dict[int, RequestRecord]) -> dict[tuple[int, str], str]:
    rows = await session.execute(
        select(RequestDevice.request_id, RequestDevice.machine_id, RequestDevice.name).where(
            RequestDevice.request_id.in_(records)
        )
    )
    return {(r, m): n for r, m, n in rows}


async def _approvers(session: AsyncSession, records: dict[int, RequestRecord]) -> dict[int, str]:
    rows = await session.execute(
        select(Decision.request_id, Decision.actor_label)
        .where(Decision.request_id.in_(records), Decision.approve.is_(True))
        .order_by(Decision.id)
    )
    out: dict[int, list[str]] = {}
    for request_id, label in rows:
        out.setdefault(request_id, []).append(label)
    return {r: ", ".join(labels) for r, labels in out.items()}


# -- reads ------------------------------------------------------------------------------------------------
async def isolated_now(
    session: AsyncSession,
    *,
    machine_ids: Iterable[str] | None = None,
    incident_id: str | None = None,
    older_than: datetime | None = None,
) -> list[Containment]:
    """Open containments, oldest first, optionally narrowed (to devices, an incident, an age)."""
    query = select(Containment).where(Containment.open_key.is_not(None)).order_by(Containment.isolated_at)
    if machine_ids is not None:
        query = query.where(Containment.machine_id.in_(list(machine_ids)))
    if incident_id is not None:
        query = query.where(Containment.incident_id == incident_id)
    if older_than is not None:
        query = query.where(Containment.isolated_at < older_than)
    return list(await session.scalars(query))


async def device_timeline(session: AsyncSession, device: str, limit: int = 50) -> list[TimelineEntry]:
    """A device's containment history, newest last; ``device`` is a machine id or a name (prefix, any case)."""
    query = (
        select(TimelineEntry)
        .where(
            or_(
                TimelineEntry.machine_id == device.lower(),
                func.lower(TimelineEntry.device_name) == device.lower(),
                func.lower(TimelineEntry.device_name).startswith(device.lower() + "."),
            )
        )
        .order_by(TimelineEntry.at.desc(), TimelineEntry.id.desc())
        .limit(limit)
    )
    return list(reversed(list(await session.scalars(query))))


async def age_buckets(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Devices isolated now, by how long they have been (``AGE_BUCKETS``)."""
    rows = await session.scalars(select(Containment.isolated_at).where(Containment.open_key.is_not(None)))
    counts = {label: 0 for label, _bound in AGE_BUCKETS}
    for isolated_at in rows:
        age = now - isolated_at
        label = next(label for label, bound in AGE_BUCKETS if bound is None or age < bound)
        counts[label] += 1
    return counts


async def all_containments(session: AsyncSession, after_id: int, limit: int) -> list[Containment]:
    rows = await session.scalars(
        select(Containment).where(Containment.id > after_id).order_by(Containment.id).limit(limit)
    )
    return list(rows)


# -- the reconciliation cursor ----------------------------------------------------------------------------
CURSOR_ID = 1


async def lease_run(
    session: AsyncSession, owner: str, *, now: datetime, lease: timedelta, due_only: bool = True
) -> ReconcileCursor | None:
    """Claim the next reconciliation run: one conditional UPDATE, so one replica wins whatever their number.

    The run is due when ``next_run_at`` has passed (``due_only=False``: now, as ``/reconcile`` in the console
    asks); a run whose holder died is taken over when its lease ends. Returns the cursor (with ``read_until``
    as the last run left it), or None if not due or held.
    """
    if await session.get(ReconcileCursor, CURSOR_ID) is None:
        try:
            async with session.begin_nested():
                session.add(ReconcileCursor(id=CURSOR_ID, last_calls=0))
        except IntegrityError:
            pass
    result = await session.execute(
        update(ReconcileCursor)
        .where(
            ReconcileCursor.id == CURSOR_ID,
            or_(ReconcileCursor.lease_until.is_(None), ReconcileCursor.lease_until < now),
            *([or_(ReconcileCursor.next_run_at.is_(None), ReconcileCursor.next_run_at <= now)] if due_only else []),
        )
        .values(owner=owner, lease_until=now + lease)
        .returning(ReconcileCursor.read_until)
        .execution_options(synchronize_session=False)
    )
    row = result.first()
    if row is None:
        return None
    return ReconcileCursor(id=CURSOR_ID, read_until=row[0], owner=owner)


async def finish_run(
    session: AsyncSession, owner: str, *, now: datetime, read_until: datetime, next_run_at: datetime, calls: int
) -> bool:
    """Move the cursor and release the lease, if this owner still holds it (else nothing is stored)."""
    result = await session.execute(
        update(ReconcileCursor)
        .where(ReconcileCursor.id == CURSOR_ID, ReconcileCursor.owner == owner)
        .values(
            read_until=read_until,
            next_run_at=next_run_at,
            owner=None,
            lease_until=None,
            last_run_at=now,
            last_calls=calls,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def seen_actions(session: AsyncSession, action_ids: Iterable[str]) -> set[str]:
    ids = list(action_ids)
    if not ids:
        return set()
    seen = set(await session.scalars(select(Containment.mde_action_id).where(Containment.mde_action_id.in_(ids))))
    seen |= set(await session.scalars(select(TimelineEntry.action_id).where(TimelineEntry.action_id.in_(ids))))
    return {s for s in seen if s}
