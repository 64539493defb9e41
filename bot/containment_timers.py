"""What happens to containments with time: a time-boxed isolation's release is proposed at its planned end
(pre-approved if the policy says ``containment.release: auto_at_end``), and a long containment is reminded
in its thread (and its incident's war room) after ``containment.remind_after``, then daily, until released
or acknowledged with a reason.

Both are exactly-once across replicas and restarts: each claims its containments with one conditional
UPDATE and writes what it announces (the proposal request, the reminder line) in the same transaction, so a
crash before the commit leaves nothing behind and the next tick does it again; a crash after it leaves
nothing to redo. A pre-approved release that was proposed but not yet approved when the process stopped is
approved at the next tick.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.commands.models import Target, TargetKind, Verb
from approvals.containment import messaging
from approvals.containment.models import Containment
from approvals.db import Clock, Database
from approvals.errors import ResolutionError
from approvals.identity import Actor, Origin
from approvals.incidents import service as incident_store
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.requests.models import RequestRecord
from approvals.requests.states import RequestState
from approvals.resolution.flows import Resolution
from approvals.service import ChatOps
from mde.errors import MdeError

log = logging.getLogger(__name__)

TIMED_RELEASE = Actor(platform="system", user_id="timed-release", display_name="timed release")
#: a proposal claimed but not created (only while its transaction is open; never committed)
CLAIMED = -1
#: the planned end came but MDE had nothing to release (the reason is in the request's thread)
NOTHING_TO_RELEASE = 0


class ContainmentTimers:
    def __init__(self, db: Database, chatops: ChatOps, clock: Clock, *, interval_s: float = 30.0) -> None:
        self.db = db
        self.chatops = chatops
        self.clock = clock
        #: ``maybe_tick`` (the worker's housekeeping, every second) looks this often
        self.interval_s = interval_s
        self._last = 0.0

    async def maybe_tick(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            await self.tick()

    async def tick(self) -> list[int]:
        """Propose due releases, approve pre-approved ones, send due reminders; returns the proposals made."""
        proposed = await self.propose_due_releases()
        await self.approve_preapproved()
        await self.remind()
        if proposed:
            self.chatops.notify()
        return proposed

    # -- time-boxed isolation ------------------------------------------------------------------------------
    async def propose_due_releases(self) -> list[int]:
        now = self.clock()
        async with self.db.sessions() as session:
            due = list(
                await session.scalars(
                    select(Containment).where(
                        Containment.open_key.is_not(None),
                        Containment.planned_end <= now,
                        Containment.release_proposal_id.is_(None),
                        Containment.request_id.is_not(None),
                    )
                )
            )
        by_request: dict[int, list[Containment]] = defaultdict(list)
        for row in due:
            by_request[int(row.request_id or 0)].append(row)
        made = []
        for request_id, rows in sorted(by_request.items()):
            proposal = await self._propose(request_id, rows)
            if proposal is not None:
                made.append(proposal)
        return made

    async def _propose(self, request_id: int, rows: list[Containment]) -> int | None:
        async with self.db.sessions() as session:
            original = await session.get(RequestRecord, request_id)
        if original is None:
            return None
        targets = tuple(Target(TargetKind.DEVICE, row.machine_id) for row in rows)
        try:
            resolution = await self.chatops.resolver.resolve(targets, verb=Verb.UNISOLATE)
        except (ResolutionError, MdeError) as exc:
            log.warning("timed release of request #%s: cannot resolve its devices yet (%s)", request_id, exc)
            return None
        async with self.db.transaction() as session:
            claimed = await _claim(session, [r.id for r in rows])
            if not claimed:
                return None  # another replica proposed it
            wanted = {r.machine_id for r in rows if r.id in claimed}
            if not any(m.id in wanted for m in resolution.devices):
                await _nothing_to_release(session, request_id, claimed, resolution)
                return None
            resolution = Resolution(
                devices=[m for m in resolution.devices if m.id in wanted],
                protection={k: v for k, v in resolution.protection.items() if k in wanted},
                exclusions=resolution.exclusions,
                matched_by=resolution.matched_by,
            )
            params: dict[str, object] = {"timed_release_of": request_id}
            if (original.params or {}).get("release_preapproved"):
                params["release_preapproved"] = True
            record = await self.chatops.flows.create_in(
                session,
                actor=TIMED_RELEASE,
                origin=Origin(original.origin_surface, original.origin_channel, original.origin_context),
                verb=Verb.UNISOLATE,
                params=params,
                reason=f"Planned end of the time-boxed isolation by request #{request_id} ({original.reason or '-'})",
                target_text=" ".join(f"device:{r.device_name}" for r in rows if r.id in claimed),
                resolution=resolution,
                canary=None,
                incident_id=original.incident_id,
            )
            await session.execute(
                update(Containment)
                .where(Containment.id.in_(claimed))
                .values(release_proposal_id=record.id)
                .execution_options(synchronize_session=False)
            )
            names = ", ".join(sorted(r.device_name for r in rows if r.id in claimed))
            how = "pre-approved at request time; it runs now" if "release_preapproved" in params else "one approval"
            emit(
                session,
                request_id,
                EventKind.NOTE,
                text=f"Planned end reached: request #{record.id} releases {names} ({how}).",
            )
        return record.id

    async def approve_preapproved(self) -> None:
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(RequestRecord.id, RequestRecord.params).where(
                    RequestRecord.state == RequestState.PENDING.value,
                    RequestRecord.verb == Verb.UNISOLATE,
                    RequestRecord.requester_key == TIMED_RELEASE.key,
                )
            )
            pending = [request_id for request_id, params in rows if (params or {}).get("release_preapproved")]
        for request_id in pending:
            outcome = await self.chatops.approvals.approve_preapproved_release(request_id)
            if outcome.allowed:
                self.chatops.notify()

    # -- reminders -----------------------------------------------------------------------------------------
    async def remind(self) -> int:
        """One reminder per due containment, its thread and its incident's war room; returns how many."""
        now = self.clock()
        after = self.chatops.policy.model.containment.remind_after_delta
        async with self.db.transaction() as session:
            rows = list(
                (
                    await session.execute(
                        update(Containment)
                        .where(
                            Containment.open_key.is_not(None),
                            Containment.acknowledged_by.is_(None),
                            Containment.isolated_at <= now - after,
                            (Containment.reminded_at.is_(None)) | (Containment.reminded_at <= now - timedelta(days=1)),
                        )
                        .values(reminded_at=now)
                        .returning(Containment)
                        .execution_options(synchronize_session=False)
                    )
                ).scalars()
            )
            for row in rows:
                _remind(session, row, now)
        if rows:
            self.chatops.notify()
        return len(rows)


async def _claim(session: AsyncSession, ids: list[int]) -> set[int]:
    result = await session.execute(
        update(Containment)
        .where(Containment.id.in_(ids), Containment.release_proposal_id.is_(None), Containment.open_key.is_not(None))
        .values(release_proposal_id=CLAIMED)
        .returning(Containment.id)
        .execution_options(synchronize_session=False)
    )
    return set(result.scalars())


async def _nothing_to_release(
    session: AsyncSession, request_id: int, claimed: set[int], resolution: Resolution
) -> None:
    """MDE says none of the devices can be released (e.g. released meanwhile): say why, propose nothing."""
    await session.execute(
        update(Containment)
        .where(Containment.id.in_(claimed))
        .values(release_proposal_id=NOTHING_TO_RELEASE)
        .execution_options(synchronize_session=False)
    )
    reasons = "; ".join(f"{e.name}: {e.reason}" for e in resolution.exclusions) or "no device left"
    emit(session, request_id, EventKind.NOTE, text=f"Planned end reached, but there is nothing to release ({reasons}).")


def _remind(session: AsyncSession, row: Containment, now: datetime) -> None:
    short = row.device_name.split(".")[0]
    text = (
        f"Reminder: {row.device_name} has been isolated for {messaging.age(now - row.isolated_at)} "
        f'(since {messaging.when(row.isolated_at)}). Release it: unisolate device:{short} --reason "…"; or keep '
        f'it isolated on purpose (no more reminders): adopt device:{short} --reason "…"'
    )
    if row.request_id is not None:
        emit(session, row.request_id, EventKind.NOTE, text=text)
    if row.incident_id is not None and row.incident_id.isdigit():
        incident_store.emit_incident(session, int(row.incident_id), "note", text=text)
    audit(session, "containment.reminded", TIMED_RELEASE, request_id=row.request_id, devices=[row.machine_id])
