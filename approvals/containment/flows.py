"""The register in chat: ``isolated`` (narrowed by targets or age), ``adopt``, and the timeline part of
``history device:NAME``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.commands.models import AdoptCommand, IsolatedCommand, TargetKind, Verb
from approvals.containment import messaging
from approvals.containment import service as store
from approvals.containment.models import Source, TimelineKind
from approvals.db import Clock, Database
from approvals.errors import ResolutionError
from approvals.identity import Actor, Origin
from approvals.incidents import service as incident_store
from approvals.incidents.models import IncidentRecord
from approvals.policy import Policy
from approvals.resolution.flows import Resolver
from approvals.views import Reply


class ContainmentFlows:
    def __init__(self, db: Database, resolver: Resolver, policy: Policy, clock: Clock) -> None:
        self.db = db
        self.resolver = resolver
        self.policy = policy
        self.clock = clock

    async def isolated(self, command: IsolatedCommand) -> Reply:
        incidents = [t for t in command.targets if t.kind is TargetKind.INCIDENT]
        others = [t for t in command.targets if t.kind is not TargetKind.INCIDENT]
        machine_ids: set[str] = set()
        if others:
            resolution = await self.resolver.resolve(others, verb=Verb.DEVICES)
            machine_ids = set(resolution.matched_by)
        now = self.clock()
        async with self.db.sessions() as session:
            incident_ids: set[str] = set()
            for target in incidents:
                record = await incident_store.find(session, target.value)
                if record is None:
                    raise ResolutionError(f"No incident {target.value} has been received (POST /api/incidents).")
                incident_ids.add(str(record.id))
            rows = await store.isolated_now(
                session, older_than=now - command.older_than if command.older_than else None
            )
            names = await self._incident_names(session, {r.incident_id for r in rows if r.incident_id})
        if command.targets:
            rows = [r for r in rows if r.machine_id in machine_ids or r.incident_id in incident_ids]
        narrowed = bool(command.targets or command.older_than)
        return Reply(text=messaging.register_text(rows, now, names, narrowed))

    @staticmethod
    async def _incident_names(session: AsyncSession, ids: set[str]) -> dict[str, str]:
        out = {}
        for incident_id in ids:
            record = await session.get(IncidentRecord, int(incident_id))
            if record is not None:
                out[incident_id] = f"{record.external_id} (#{record.id})"
        return out

    async def isolated_for_incident(self, incident_id: int) -> list[str]:
        async with self.db.sessions() as session:
            return sorted({row.machine_id for row in await store.isolated_now(session, incident_id=str(incident_id))})

    async def timeline(self, device: str) -> list[str]:
        async with self.db.sessions() as session:
            return messaging.timeline_lines(await store.device_timeline(session, device))

    async def adopt(self, actor: Actor, origin: Origin, command: AdoptCommand) -> Reply:
        allowed = self.policy.can_request(actor, Verb.ISOLATE, surface=origin.surface, channel_id=origin.channel_id)
        if not allowed.allowed:
            return Reply(text=allowed.reason, error=True)
        now = self.clock()
        async with self.db.transaction() as session:
            rows = [
                r
                for r in await store.isolated_now(session)
                if r.machine_id == command.device.lower() or _same_name(r.device_name, command.device)
            ]
            if not rows:
                return Reply(
                    text=f"{command.device} is not in the register as isolated; see isolated for the list.", error=True
                )
            row = rows[0]
            if row.acknowledged_by is not None:
                return Reply(
                    text=f"{row.device_name} is already kept isolated on purpose by {row.acknowledged_by}: "
                    f"{row.acknowledged_reason}",
                    error=True,
                )
            adopting = row.source == Source.OUTSIDE.value
            if adopting:
                row.source, row.adopted_by, row.reason = Source.ADOPTED.value, actor.label(), command.reason
            row.acknowledged_by, row.acknowledged_reason = actor.label(), command.reason
            kind = TimelineKind.ADOPTED if adopting else TimelineKind.ACKNOWLEDGED
            store.timeline(
                session,
                machine_id=row.machine_id,
                device_name=row.device_name,
                at=now,
                kind=kind,
                actor=actor.label(),
                text=command.reason,
            )
            audit(
                session,
                f"containment.{kind.value}",
                actor,
                surface=origin.surface,
                channel_id=origin.channel_id,
                request_id=row.request_id,
                devices=[row.machine_id],
                outcome=kind.value,
                text=command.reason,
                containment_id=row.id,
            )
        if not adopting:
            return Reply(text=f"{row.device_name} stays isolated on purpose (no more reminders): {command.reason}")
        return Reply(text=f"{row.device_name} is in the register now, adopted by {actor.label()}: {command.reason}")


def _same_name(stored: str, typed: str) -> bool:
    stored, typed = stored.lower(), typed.lower()
    return stored == typed or stored.startswith(typed + ".")
