"""Drift: what changed in MDE behind the register's back, found by reading MDE's machine actions.

One run at a time across replicas: a run is claimed with one conditional UPDATE of the single cursor row
(``service.lease_run``), like a schedule occurrence. A run pages through ``GET /api/machineactions`` with
``$filter`` on ``type`` and ``creationDateTimeUtc`` (the filterable fields, DD:get-machineactions-collection.md;
``lastUpdateDateTimeUtc`` is not one of them), from where the last run stopped: a handful of calls per run,
whatever the number of devices, through the same rate limiter as everything else. The cursor stops at the
oldest action still pending, so an action that finishes late is read again and seen once it has finished.

Each MDE action is handled at most once: its id goes into the device's timeline, which is unique on it.
* An ``Unisolate`` we did not make, on a device the register holds isolated: the containment is closed as
  released outside the bot, one line goes to the thread of the request that isolated it, and a request to
  isolate it again is proposed there (approve to re-isolate; reject to leave it released).
* An ``Isolate`` we did not make, on a device the register does not hold: it is entered as "isolated outside
  the bot" with MDE's requestor and time, and a line in the thread of the last request that touched the
  device (if any) offers ``adopt device:NAME --reason "…"``.

Not visible this way: a release MDE makes without an action. On Linux, changing iptables rules on an
isolated device releases it (DD-ep:respond-machine-alerts.md); MDE lists no action for that.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.commands.models import ActionCommand, Target, TargetKind, Verb
from approvals.containment import messaging
from approvals.containment import service as store
from approvals.containment.models import Containment, Source, TimelineKind
from approvals.db import Clock, Database, utcnow
from approvals.errors import ResolutionError
from approvals.execution.actions import marker
from approvals.execution.models import Job
from approvals.identity import Actor, Origin
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.periodic import Periodic
from approvals.requests.models import RequestDevice, RequestRecord
from approvals.service import ChatOps
from mde.client import MAX_PAGE
from mde.errors import MdeError
from mde.models import ActionStatus, MachineAction

log = logging.getLogger(__name__)

RECONCILER = Actor(platform="system", user_id="reconciliation", display_name="containment reconciliation")
ISOLATION_ACTIONS = ("Isolate", "Unisolate")
MARKER_PREFIX = marker(0).split("#")[0] + "#"


@dataclass
class ReconcileConfig:
    #: how often the tenant's machine actions are read (each run: one call per 10,000 actions)
    interval_s: float = 900.0
    #: a run not finished this long after it was claimed is taken over (its holder died)
    lease_s: float = 600.0
    #: the first run reads this far back
    first_lookback: timedelta = timedelta(days=30)
    #: read again this much before the cursor: MDE's clock and ours, actions listed a little late
    overlap: timedelta = timedelta(minutes=5)
    #: actions per page (``$top``); MDE's maximum is 10,000 (DD:get-machineactions-collection.md)
    page_size: int = MAX_PAGE


@dataclass
class RunReport:
    actions: int = 0
    calls: int = 0
    released_outside: list[str] = field(default_factory=list)
    isolated_outside: list[str] = field(default_factory=list)
    proposals: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Reisolate:
    containment_id: int
    machine_id: str
    device_name: str
    isolation_type: str
    request_id: int
    incident_id: str | None
    by: str
    at: datetime


class Reconciler:
    def __init__(
        self,
        db: Database,
        chatops: ChatOps,
        *,
        owner: str | None = None,
        config: ReconcileConfig | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.chatops = chatops
        self.owner = owner or f"reconciler-{uuid.uuid4().hex[:12]}"
        self.config = config or ReconcileConfig()
        self.clock = clock
        # a run is due every interval_s (the lease row says when); looking ten times as often keeps it on time
        self._loop = Periodic(
            self._round, interval_s=min(60.0, max(0.2, self.config.interval_s / 10)), name="reconciliation"
        )

    # -- one run -----------------------------------------------------------------------------------------
    async def run_once(self, *, force: bool = False) -> RunReport | None:
        """Run if due (or ``force``) and not held by another replica; None when this replica did not run."""
        now = self.clock()
        async with self.db.transaction() as session:
            cursor = await store.lease_run(
                session, self.owner, now=now, lease=timedelta(seconds=self.config.lease_s), due_only=not force
            )
        if cursor is None:
            return None
        since = (cursor.read_until or now - self.config.first_lookback) - self.config.overlap
        report = RunReport()
        try:
            actions = await self.chatops.client.list_machine_actions(
                types=ISOLATION_ACTIONS, created_after=since, top=self.config.page_size, every_page=True
            )
        except MdeError as exc:
            log.warning("reconciliation: MDE answered %s; the next run reads from the same point", exc)
            actions = None
        if actions is not None:
            report.actions, report.calls = len(actions), max(1, math.ceil(len(actions) / self.config.page_size))
            await self._apply(actions, report)
        read_until = _next_cursor(actions, previous=cursor.read_until, now=now)
        async with self.db.transaction() as session:
            await store.finish_run(
                session,
                self.owner,
                now=self.clock(),
                read_until=read_until,
                next_run_at=now + timedelta(seconds=self.config.interval_s),
                calls=report.calls,
            )
        if report.released_outside or report.isolated_outside:
            self.chatops.notify()
        return report

    async def _apply(self, actions: list[MachineAction], report: RunReport) -> None:
        settled = [a for a in actions if a.status is ActionStatus.SUCCEEDED and a.machine_id]
        settled.sort(key=lambda a: (a.last_update_date_time_utc or a.creation_date_time_utc or self.clock(), a.id))
        async with self.db.sessions() as session:
            ours = await _our_actions(session, [a.id for a in settled])
            seen = await store.seen_actions(session, [a.id for a in settled])
        for action in settled:
            if action.id in ours or action.id in seen or marker_in(action):
                continue
            try:
                reisolate = await self._one(action, report)
            except IntegrityError:  # another run recorded this action first
                continue
            if reisolate is not None:
                request_id = await self._propose(reisolate)
                if request_id is not None:
                    report.proposals.append(request_id)

    async def _one(self, action: MachineAction, report: RunReport) -> _Reisolate | None:
        at = action.last_update_date_time_utc or action.creation_date_time_utc or self.clock()
        who = action.requestor or "someone outside the bot"
        async with self.db.transaction() as session:
            row = await store.open_containment(session, action.machine_id)
            name = row.device_name if row is not None else action.computer_dns_name or action.machine_id
            if action.type == "Unisolate":
                if row is None or at <= row.isolated_at:
                    return None
                return await self._released_outside(session, row, action, who, at, report)
            if row is not None:
                store.timeline(
                    session,
                    machine_id=action.machine_id,
                    device_name=name,
                    at=at,
                    kind=TimelineKind.ISOLATED_OUTSIDE,
                    actor=who,
                    action_id=action.id,
                    text="isolated again outside the bot while already in the register",
                )
                return None
            await self._isolated_outside(session, action, name, who, at)
            report.isolated_outside.append(name)
            return None

    async def _released_outside(
        self,
        session: AsyncSession,
        row: Containment,
        action: MachineAction,
        who: str,
        at: datetime,
        report: RunReport,
    ) -> _Reisolate | None:
        store.close(row, at=at, by=who, action_id=None)
        store.timeline(
            session,
            machine_id=row.machine_id,
            device_name=row.device_name,
            at=at,
            kind=TimelineKind.RELEASED_OUTSIDE,
            actor=who,
            request_id=row.request_id,
            action_id=action.id,
            text=action.requestor_comment,
        )
        audit(
            session,
            "containment.released_outside",
            RECONCILER,
            request_id=row.request_id,
            devices=[row.machine_id],
            action_ids=[action.id],
            outcome="released",
            text=f"released outside the bot by {who}",
            containment_id=row.id,
        )
        report.released_outside.append(row.device_name)
        if row.request_id is None:
            return None
        emit(
            session,
            row.request_id,
            EventKind.NOTE,
            text=(
                f"Drift: {row.device_name} was released outside the bot by {who} at {messaging.when(at)} "
                f"(MDE action {action.id}). A request to isolate it again follows: approve it to re-isolate, "
                "reject it to leave the device released."
            ),
        )
        return _Reisolate(
            containment_id=row.id,
            machine_id=row.machine_id,
            device_name=row.device_name,
            isolation_type=row.isolation_type or "Full",
            request_id=row.request_id,
            incident_id=row.incident_id,
            by=who,
            at=at,
        )

    async def _isolated_outside(
        self, session: AsyncSession, action: MachineAction, name: str, who: str, at: datetime
    ) -> None:
        item = store.Isolation(
            machine_id=action.machine_id,
            device_name=name,
            isolation_type=action.scope,
            source=Source.OUTSIDE,
            requested_by=who,
            at=at,
            action_id=action.id,
            reason=action.requestor_comment,
        )
        await store.open_isolation(session, item, self.clock())
        store.timeline(
            session,
            machine_id=action.machine_id,
            device_name=name,
            at=at,
            kind=TimelineKind.ISOLATED_OUTSIDE,
            actor=who,
            action_id=action.id,
            text=action.requestor_comment,
        )
        audit(
            session,
            "containment.isolated_outside",
            RECONCILER,
            devices=[action.machine_id],
            action_ids=[action.id],
            outcome="isolated",
            text=f"isolated outside the bot by {who}",
        )
        last = await _last_request_for(session, action.machine_id)
        if last is not None:
            short = name.split(".")[0]
            emit(
                session,
                last,
                EventKind.NOTE,
                text=(
                    f"Drift: {name} was isolated outside the bot by {who} at {messaging.when(at)} (MDE action "
                    f'{action.id}). To track it here: adopt device:{short} --reason "…"'
                ),
            )

    async def _propose(self, item: _Reisolate) -> int | None:
        async with self.db.sessions() as session:
            record = await session.get(RequestRecord, item.request_id)
        if record is None:
            return None
        origin = Origin(surface=record.origin_surface, channel_id=record.origin_channel, context=record.origin_context)
        command = ActionCommand(
            verb=Verb.ISOLATE,
            targets=(Target(TargetKind.DEVICE, item.machine_id),),
            reason=(
                f"Re-isolate {item.device_name}: released outside the bot by {item.by} at {messaging.when(item.at)}; "
                f"it was isolated by request #{item.request_id} ({record.reason or 'no reason given'})"
            ),
            isolation_type=item.isolation_type,
        )
        try:
            resolution = await self.chatops.resolver.resolve(
                command.targets, verb=Verb.ISOLATE, isolation_type=item.isolation_type
            )
        except (ResolutionError, MdeError) as exc:
            await self._note(item.request_id, f"Could not propose isolating {item.device_name} again: {exc}")
            return None
        if not resolution.devices:
            reasons = "; ".join(e.reason for e in resolution.exclusions) or "excluded"
            await self._note(item.request_id, f"Could not propose isolating {item.device_name} again: {reasons}")
            return None
        return await self.chatops.create_request(
            RECONCILER,
            origin,
            command,
            resolution,
            incident_id=item.incident_id,
            extra_params={"reisolates": item.containment_id},
        )

    async def _note(self, request_id: int, text: str) -> None:
        async with self.db.transaction() as session:
            emit(session, request_id, EventKind.NOTE, text=text)

    # -- the loop ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _round(self) -> bool:
        await self.run_once()
        return False


def marker_in(action: MachineAction) -> bool:
    """Our own actions carry ``[mde-chatops #N]`` (the hook records them when their job settles), also in the
    moment between MDE creating one and the worker storing its id."""
    return MARKER_PREFIX in (action.requestor_comment or "")


def _next_cursor(actions: list[MachineAction] | None, *, previous: datetime | None, now: datetime) -> datetime:
    """Where the next run starts: the oldest action still pending, else the newest action read."""
    if actions is None:
        return previous or now
    pending = [a.creation_date_time_utc for a in actions if not a.status.is_final and a.creation_date_time_utc]
    if pending:
        return min(pending)
    created = [a.creation_date_time_utc for a in actions if a.creation_date_time_utc]
    return max([*created, previous or now])


async def _our_actions(session: AsyncSession, action_ids: list[str]) -> set[str]:
    if not action_ids:
        return set()
    rows = await session.scalars(select(Job.action_id).where(Job.action_id.in_(action_ids)))
    return {r for r in rows if r}


async def _last_request_for(session: AsyncSession, machine_id: str) -> int | None:
    value = await session.scalar(
        select(func.max(RequestDevice.request_id)).where(RequestDevice.machine_id == machine_id)
    )
    return int(value) if value is not None else None
