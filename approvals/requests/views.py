"""A request's read model for cards, and its devices page by page for "show all" and the CSV.

A view carries counts and the first rows of each list, never every device: it is built for the card, for a
click's answer and for every card refresh, and at 100,000 devices reading every row took about 12 s each
time (issue 18). Counts come from one GROUP BY answered by ``ix_request_devices_request_counts`` alone, rows
from LIMITed queries in name order (``ix_request_devices_request_name``), so a view costs about the same at
100,000 devices as at 100 (SQLite: 5.8 s -> 33 ms; PostgreSQL: 5.5 s -> 70 ms).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.requests.labels import action_label
from approvals.requests.models import (
    NOT_SUCCEEDED_DEVICE_STATES,
    DeviceState,
    RequestDevice,
    RequestExclusion,
    RequestRecord,
)
from approvals.requests.service import decisions_for, get_request, progress_of
from approvals.requests.states import RequestState
from approvals.resolution.priority import order_sentence
from approvals.verbs import ACTIONS, Family, Verb, is_tenant_wide
from approvals.views import DecisionRow, DeviceCounts, DeviceRow, ExclusionRow, OutcomeCount, RequestView

#: rows per list in a view: more than any card shows (a Teams summary fits at most ~200 rows in 4,000 bytes),
#: so every card reads the same as when the view held every device
VIEW_ROWS = 200
#: rows per query when paging through every device (the CSV)
PAGE_ROWS = 5000
#: matching rows are "few" below one in FEW devices: found by their index and sorted, not by walking names
FEW = 20

#: what a card needs of each device, read as plain rows: no ORM object per device
_ROW_COLUMNS = (
    RequestDevice.id,
    RequestDevice.machine_id,
    RequestDevice.name,
    RequestDevice.os_platform,
    RequestDevice.health_status,
    RequestDevice.last_seen,
    RequestDevice.tags,
    RequestDevice.group_name,
    RequestDevice.state,
    RequestDevice.action_id,
    RequestDevice.error,
    RequestDevice.warning,
    RequestDevice.note,
)


def _device_row(d: Any) -> DeviceRow:
    return DeviceRow(
        machine_id=d.machine_id,
        name=d.name,
        os_platform=d.os_platform,
        health_status=d.health_status,
        last_seen=d.last_seen,
        tags=tuple(d.tags or ()),
        group=d.group_name,
        state=d.state,
        action_id=d.action_id,
        error=d.error,
        warning=d.warning,
        note=d.note,
    )


def _acts_on(protected_pending: bool) -> ColumnElement[bool]:
    """The devices the request acts on: a protected device without a break-glass approval is an exclusion."""
    return RequestDevice.protection != "protected" if protected_pending else true()


def _rows(
    request_id: int, *where: ColumnElement[bool], limit: int = VIEW_ROWS, few: bool = False
) -> Select[*tuple[Any, ...]]:
    """The first rows by name that match ``where``. When they are ``few`` among many, sort just them: ordered
    by an expression, SQLite finds them by ``ix_request_devices_request_counts`` instead of walking the name
    index past every device that does not match (it keeps no statistics that would tell it; 400 ms at 100,000)."""
    name = RequestDevice.name + "" if few else RequestDevice.name
    return (
        select(*_ROW_COLUMNS)
        .where(RequestDevice.request_id == request_id, *where)
        .order_by(name, RequestDevice.id)
        .limit(limit)
    )


async def _first(
    session: AsyncSession, request_id: int, where: list[ColumnElement[bool]], matching: int, total: int
) -> tuple[DeviceRow, ...]:
    """The first ``VIEW_ROWS`` of the ``matching`` devices (of ``total``) by name; nothing to read when none."""
    if not matching:
        return ()
    query = _rows(request_id, *where, few=matching * FEW < total)
    return tuple(_device_row(d) for d in await session.execute(query))


async def device_rows(session: AsyncSession, request_id: int, *, limit: int) -> list[DeviceRow]:
    """The first ``limit`` devices a request acts on, by name, as its card lists them ("show all")."""
    record = await get_request(session, request_id)
    if record is None:
        return []
    protected_pending = record.touches_protected and not record.break_glass_by
    rows = await session.execute(_rows(request_id, _acts_on(protected_pending), limit=limit))
    return [_device_row(d) for d in rows]


async def result_pages(session: AsyncSession, request_id: int, page: int = PAGE_ROWS) -> AsyncIterator[list[Any]]:
    """Every device of the request with its result, by name, one keyset page at a time (the CSV): plain rows,
    never all of them in memory as ORM objects."""
    after: tuple[str, int] | None = None
    while True:
        query = _rows(request_id, limit=page)
        if after is not None:
            query = query.where(tuple_(RequestDevice.name, RequestDevice.id) > tuple_(*after))
        rows = list(await session.execute(query))
        if rows:
            yield rows
        if len(rows) < page:
            return
        after = (rows[-1].name, rows[-1].id)


async def results_csv(session: AsyncSession, request_id: int) -> str:
    """Every device's result as CSV, written page by page from storage."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["machine_id", "name", "os_platform", "state", "action_id", "error"])
    async for page in result_pages(session, request_id):
        writer.writerows(
            [d.machine_id, d.name, d.os_platform or "", d.state or "", d.action_id or "", d.error or ""] for d in page
        )
    return out.getvalue()


async def build_view(session: AsyncSession, request_id: int, *, eta_seconds: float | None = None) -> RequestView | None:
    record = await get_request(session, request_id)
    if record is None:
        return None
    state = RequestState(record.state)
    protected_pending = record.touches_protected and not record.break_glass_by
    acts_on = _acts_on(protected_pending)
    groups = await _groups(session, request_id)
    total = sum(g.devices for g in groups)
    included = [g for g in groups if not (protected_pending and g.protection == "protected")]
    by_state: Counter[DeviceState | None] = Counter()
    priorities: Counter[int] = Counter()
    for g in included:
        by_state[g.state] += g.devices
        priorities[g.priority] += g.devices
    not_succeeded_total = sum(n for s, n in by_state.items() if s in NOT_SUCCEEDED_DEVICE_STATES)
    warned_total = sum(g.devices for g in included if g.protection != "none")
    devices = await _first(session, request_id, [acts_on], sum(by_state.values()), total)
    failed = RequestDevice.state.in_(list(NOT_SUCCEEDED_DEVICE_STATES))
    not_succeeded = await _first(session, request_id, [acts_on, failed], not_succeeded_total, total)
    warned_where = [acts_on, RequestDevice.protection != "none"]
    warned = await _first(session, request_id, warned_where, warned_total, total)
    left_out = total - sum(by_state.values())
    exclusions, kinds = await _exclusions(session, record, left_out, total)
    outcomes = await _outcomes(session, request_id, acts_on) if state is RequestState.CANCELLED else ()
    decisions = await decisions_for(session, request_id)
    progress = None
    if state not in (RequestState.PENDING, RequestState.REJECTED, RequestState.EXPIRED) or record.approved_at:
        # approved, but a worker has not created every job yet (it writes them in pieces, and the first piece
        # may already be executing): the devices without a state are still being prepared
        waiting = state in (RequestState.APPROVED, RequestState.EXECUTING) and record.jobs_created_at is None
        progress = progress_of(by_state, eta_seconds, preparing=by_state[None] if waiting else 0)
    return RequestView(
        id=record.id,
        action=record.verb,
        action_label=action_label(record.verb, record.params or {}),
        state=record.state,
        requester_label=record.requester_label,
        requester_key=record.requester_key,
        reason=record.reason,
        target_text=record.target_text,
        devices=devices,
        exclusions=tuple(exclusions),
        counts=DeviceCounts(
            total=sum(by_state.values()),
            by_state=tuple((None if s is None else str(s), n) for s, n in by_state.items()),
            not_succeeded=not_succeeded,
            not_succeeded_total=not_succeeded_total,
            warned=warned,
            warned_total=warned_total,
            exclusions_total=sum(kinds.values()),
            exclusion_kinds=frozenset(kinds),
            outcomes=outcomes,
        ),
        required_approvals=record.required_approvals,
        decisions=tuple(
            DecisionRow(
                actor_label=d.actor_label, approve=d.approve, at=d.at, reason=d.reason, break_glass=d.break_glass
            )
            for d in decisions
        ),
        created_at=record.created_at,
        expires_at=record.expires_at,
        # a schedule's runs and an indicator's MDE call report in the thread, not as device counts
        progress=None if not record.verb.runs_jobs or is_tenant_wide(record.verb) else progress,
        dry_run=record.dry_run,
        canary=record.canary,
        incident_id=record.incident_id,
        warnings=tuple(record.warnings or ()),
        order_note=order_sentence(priorities) if _ordered(record.verb, state) else None,
    )


async def _groups(session: AsyncSession, request_id: int) -> list[Any]:
    """Devices per (state, protection, priority): one GROUP BY over ``ix_request_devices_request_counts``,
    which holds all three, so no device row is read. A warning is stored exactly when protection is not
    "none" (``insert_request``), so protection counts the warned devices too."""
    query = (
        select(RequestDevice.state, RequestDevice.protection, RequestDevice.priority, func.count().label("devices"))
        .where(RequestDevice.request_id == request_id)
        .group_by(RequestDevice.state, RequestDevice.protection, RequestDevice.priority)
    )
    return list(await session.execute(query))


async def _exclusions(
    session: AsyncSession, record: RequestRecord, left_out: int, total: int
) -> tuple[list[ExclusionRow], Counter[str]]:
    """The first exclusions (stored ones, then protected devices ``left_out``), and how many of each kind."""
    kinds: Counter[str] = Counter(
        dict(
            (
                await session.execute(
                    select(RequestExclusion.kind, func.count())
                    .where(RequestExclusion.request_id == record.id)
                    .group_by(RequestExclusion.kind)
                )
            ).all()
        )
    )
    stored = await session.scalars(
        select(RequestExclusion)
        .where(RequestExclusion.request_id == record.id)
        .order_by(RequestExclusion.id)
        .limit(VIEW_ROWS)
    )
    rows = [ExclusionRow(name=e.name, machine_id=e.machine_id, kind=e.kind, reason=e.reason) for e in stored]
    if not left_out:
        return rows, kinds
    kinds["protected"] += left_out
    # the break-glass offer stands only while the request waits for approval
    why = (
        "only a break-glass approval with a reason includes it"
        if record.state == RequestState.PENDING.value
        else "not included (approved without break glass)"
        if record.approved_at
        else "not included"
    )
    if len(rows) < VIEW_ROWS:
        protected = await _first(session, record.id, [RequestDevice.protection == "protected"], left_out, total)
        rows += [
            ExclusionRow(
                name=d.name, machine_id=d.machine_id, kind="protected", reason=f"protected: {d.warning}; {why}"
            )
            for d in protected[: VIEW_ROWS - len(rows)]
        ]
    return rows, kinds


async def _outcomes(session: AsyncSession, request_id: int, acts_on: ColumnElement[bool]) -> tuple[OutcomeCount, ...]:
    """A cancelled request's devices per (state, error): what its cancel report counts."""
    rows = await session.execute(
        select(RequestDevice.state, RequestDevice.error, func.count())
        .where(and_(RequestDevice.request_id == request_id, acts_on))
        .group_by(RequestDevice.state, RequestDevice.error)
    )
    return tuple(OutcomeCount(None if s is None else str(s), e, n) for s, e, n in rows)


def _ordered(verb: Verb, state: RequestState) -> bool:
    """One action per device (not a bulk tag call), not yet over: the order rule and the ETAs mean something."""
    spec = ACTIONS.get(verb)
    return (
        spec is not None
        and spec.family is Family.MACHINE_ACTIONS
        and state in (RequestState.PENDING, RequestState.APPROVED, RequestState.EXECUTING)
    )
