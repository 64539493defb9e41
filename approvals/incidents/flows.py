"""An incident arrives: store it (or apply the update), route it by the rules, propose actions.

Order matters for "nothing lost, nothing twice": the incident, its feed events and its threads commit in
one transaction; proposals are made after, each idempotent (a request remembers the rule that proposed it),
and a rule is marked applied only once its proposal exists. A sender that retries after a crash (Logic
Apps retry on 5xx) re-applies only what did not finish.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select

from approvals.commands.models import ActionCommand, Target, TargetKind, Verb
from approvals.db import Database
from approvals.errors import ResolutionError
from approvals.identity import Actor, Origin
from approvals.incidents import service
from approvals.incidents.models import IncidentRecord
from approvals.incidents.payloads import IncidentData
from approvals.incidents.rules import Proposal, Rule, RuleSet
from approvals.policy import Policy
from approvals.requests.models import RequestRecord
from approvals.resolution.flows import Resolution, Resolver
from approvals.views import Reply
from mde.errors import MdeError

log = logging.getLogger(__name__)

ISOLATION = {"full": "Full", "selective": "Selective", "unmanaged": "UnManagedDevice"}


class Requests(Protocol):
    """What an incident needs of the request side (``approvals.service.ChatOps`` provides it): passed in,
    not imported, because the facade imports this package."""

    resolver: Resolver
    policy: Policy

    def notify(self) -> None: ...

    async def create_request(
        self,
        actor: Actor,
        origin: Origin,
        command: ActionCommand,
        resolution: Resolution,
        *,
        incident_id: str | None = None,
        extra_params: dict[str, Any] | None = None,
    ) -> int: ...

    async def auto_approve(self, request_id: int, rule: str) -> Reply: ...

    async def isolated_for_incident(self, incident_id: int) -> list[str]:
        """Machine ids the containment register holds isolated for the incident (released ones skipped)."""
        ...


def rule_actor(rule: str) -> Actor:
    return Actor(platform="system", user_id=f"rule:{rule}", display_name=f"rule {rule}")


@dataclass
class Received:
    incident_id: int
    created: bool
    changed: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)


def describe_changes(changes: dict[str, tuple[Any, Any]], new_devices: list[dict[str, Any]]) -> str:
    parts = []
    for name in ("status", "severity", "title"):
        if name in changes:
            old, new = changes[name]
            parts.append(f"{name} {old} → {new}")
    if "alerts" in changes:
        parts.extend(describe_alerts(*changes["alerts"]))
    if new_devices:
        names = ", ".join(d.get("dns_name") or d.get("mde_device_id") or "?" for d in new_devices[:10])
        parts.append(f"{len(new_devices)} new device(s): {names}")
    return "; ".join(parts)


def describe_alerts(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """One line per alert that is new or whose own status changed: the thread shows which alerts are resolved
    while the incident itself stays as its own payloads say."""
    before = {a["id"]: a for a in old}
    lines = []
    for alert in new:
        name = f"alert {alert.get('title') or alert['id']}"
        previous = before.get(alert["id"])
        if previous is None:
            lines.append(f"{name} ({alert['severity']}): {alert['status']}")
        elif previous.get("status") != alert["status"]:
            lines.append(f"{name} ({alert['severity']}): {previous.get('status')} → {alert['status']}")
    return lines


class IncidentFlows:
    def __init__(self, db: Database, chatops: Requests, rules: RuleSet) -> None:
        self.db = db
        self.chatops = chatops
        self.rules = rules

    async def receive(self, data: IncidentData, raw: dict[str, Any]) -> Received:
        async with self.db.transaction() as session:
            up = await service.upsert(session, data, raw)
            await session.flush()
            record = up.record
            if up.created:
                service.emit_incident(session, record.id, "opened")
            elif (set(up.changes) - ({"status", "closed"} if up.newly_closed else set())) or up.new_devices:
                service.emit_incident(session, record.id, "updated", text=describe_changes(up.changes, up.new_devices))
            if up.newly_closed:
                service.emit_incident(session, record.id, "closed")
            new_rules = [r for r in self.rules.matching(data) if r.name not in (record.rules or [])]
            for rule in new_rules:
                for target in rule.post:
                    await service.add_thread(
                        session,
                        record.id,
                        surface=target.surface,
                        channel_id=target.channel,
                        rule=rule.name,
                        mention=target.mention,
                    )
            if data.redirect_to:
                await self._follow_redirect(session, record, data.redirect_to)
            elif not data.alert_only:  # no longer redirected: what it isolates is its own again
                record.merged_into = None
            incident_id = record.id
        received = Received(incident_id=incident_id, created=up.created, changed=sorted(up.changes))
        for rule in new_rules:
            if rule.propose is not None and not data.closed:
                request_id = await self._propose(incident_id, rule, rule.propose)
                if request_id is not None:
                    received.requests.append(request_id)
            await self._mark_applied(incident_id, rule.name)
            received.rules.append(rule.name)
        if up.newly_closed:
            request_id = await self._propose_release(incident_id)
            if request_id is not None:
                received.requests.append(request_id)
        self.chatops.notify()
        return received

    async def _follow_redirect(self, session: Any, merged: IncidentRecord, survivor_id: str) -> None:
        """Graph merged this incident into ``survivor_id``: the survivor takes over its devices, applied
        rules and war-room threads (same root message, so the conversation continues there). Nothing is
        released: a merge is not a resolution."""
        survivor = await service.get_by_key(session, merged.source, survivor_id, workspace=merged.workspace)
        if survivor is None:
            survivor = IncidentRecord(
                source=merged.source,
                workspace=merged.workspace,
                external_id=survivor_id,
                title=f"Incident {survivor_id}",
                severity=merged.severity,
                status="active",
                closed=False,
                devices=[],
                rules=[],
                raw={},
                entity_kinds=[],
                tags=[],
            )
            session.add(survivor)
            await session.flush()
        if survivor.id == merged.id:
            return
        newly_merged = merged.merged_into != survivor.id
        merged.merged_into = survivor.id
        survivor.devices = [*survivor.devices, *service.unnamed(survivor.devices, merged.devices)]
        survivor.rules = sorted(set(survivor.rules or []) | set(merged.rules or []))
        for thread in await service.threads_for(session, merged.id):
            await service.add_thread(
                session,
                survivor.id,
                surface=thread.surface,
                channel_id=thread.channel_id,
                rule=thread.rule,
                mention=thread.mention,
                message_id=thread.message_id,
                context=thread.context,
            )
        if newly_merged:  # Graph sends the redirected incident again on every update: say it once
            service.emit_incident(
                session, merged.id, "note", text=f"Merged into incident {survivor_id}; it continues here."
            )

    async def _mark_applied(self, incident_id: int, rule: str) -> None:
        async with self.db.transaction() as session:
            record = await session.get(IncidentRecord, incident_id, with_for_update=True)
            if record is not None and rule not in record.rules:
                record.rules = [*record.rules, rule]

    async def _existing(self, incident_id: int, rule: str) -> int | None:
        async with self.db.sessions() as session:
            rows = await session.scalars(select(RequestRecord).where(RequestRecord.incident_id == str(incident_id)))
            for row in rows:
                if (row.params or {}).get("rule") == rule:
                    return row.id
        return None

    async def _primary(self, incident_id: int, rule: Rule | None) -> Origin | None:
        """Proposals go to the rule's first channel (one request, one card: never two approvals of one thing);
        without a rule, to the incident's first thread."""
        targets = rule.post if rule else []
        async with self.db.sessions() as session:
            if not targets:
                threads = await service.threads_for(session, incident_id)
                if not threads:
                    return None
                first = threads[0]
                surface, channel = first.surface, first.channel_id
            else:
                surface, channel = targets[0].surface, targets[0].channel
            context = await service.conversation_context(session, surface, channel)
        return Origin(surface=surface, channel_id=channel, context=context)

    async def _note(self, incident_id: int, text: str) -> None:
        async with self.db.transaction() as session:
            service.emit_incident(session, incident_id, "note", text=text)

    async def _propose(self, incident_id: int, rule: Rule, proposal: Proposal) -> int | None:
        existing = await self._existing(incident_id, rule.name)
        if existing is not None:
            return existing
        origin = await self._primary(incident_id, rule)
        if origin is None:
            return None
        async with self.db.sessions() as session:
            record = await session.get(IncidentRecord, incident_id)
        assert record is not None
        command = ActionCommand(
            verb=Verb(proposal.action),
            targets=(Target(TargetKind.INCIDENT, f"#{incident_id}"),),
            reason=f"Incident {_label(record)}: {record.title[:200]} (rule {rule.name})",
            isolation_type=ISOLATION[proposal.type],
            tag_value=proposal.tag,
        )
        return await self._create(incident_id, rule.name, command, origin, auto=rule.auto)

    async def _create(
        self, incident_id: int, rule: str, command: ActionCommand, origin: Origin, *, auto: bool = False
    ) -> int | None:
        verb = command.verb
        try:
            resolution = await self.chatops.resolver.resolve(
                command.targets, verb=verb, isolation_type=command.isolation_type
            )
        except ResolutionError as exc:
            await self._note(incident_id, f"Rule {rule} proposes {verb}, but: {exc}")
            return None
        except MdeError as exc:
            await self._note(incident_id, f"Rule {rule} proposes {verb}, but MDE answered: {exc}")
            return None
        if not resolution.devices:
            await self._note(incident_id, f"Rule {rule}: no device is left to {verb} after exclusions.")
            return None
        cap = self.chatops.policy.max_devices(verb)
        if len(resolution.devices) > cap:
            await self._note(
                incident_id, f"Rule {rule}: {len(resolution.devices)} devices exceed the {verb} cap {cap}."
            )
            return None
        request_id = await self.chatops.create_request(
            rule_actor(rule), origin, command, resolution, incident_id=str(incident_id), extra_params={"rule": rule}
        )
        if auto:
            if self.chatops.policy.allows_auto(rule, verb):
                await self.chatops.auto_approve(request_id, rule)
            else:
                await self._note(
                    incident_id, f"Rule {rule} asks to act without approval, but the policy does not allow it."
                )
        return request_id

    async def _isolated_for(self, incident_ids: list[int]) -> list[str]:
        """Machine ids the register holds isolated for any of these incidents, each once. A device has one
        open containment, owned by the incident that isolated it last: one that another open incident
        isolated since is that incident's, and is not listed."""
        isolated: dict[str, None] = {}
        for incident_id in incident_ids:
            isolated.update(dict.fromkeys(await self.chatops.isolated_for_incident(incident_id)))
        return list(isolated)

    async def _propose_release(self, incident_id: int) -> int | None:
        """The incident is closed: propose releasing the devices that were isolated for it, and for every
        incident merged into it (Graph ``redirected``), whose containments it took over with the merge."""
        rule = "release-on-close"
        existing = await self._existing(incident_id, rule)
        if existing is not None:
            return existing
        async with self.db.sessions() as session:
            record = await session.get(IncidentRecord, incident_id)
            merged = await service.merged_into(session, incident_id)
            merged_labels = [_label(r) for i in merged if (r := await session.get(IncidentRecord, i)) is not None]
        isolated = await self._isolated_for([incident_id, *merged])
        if record is None or not isolated:
            return None
        primaries = [r for r in self.rules.rules if r.name in record.rules and r.release_on_close]
        if record.rules and not primaries:
            return None
        origin = await self._primary(incident_id, primaries[0] if primaries else None)
        if origin is None:
            return None
        command = ActionCommand(
            verb=Verb.UNISOLATE,
            targets=tuple(Target(TargetKind.DEVICE, machine_id) for machine_id in isolated),
            reason=f"Incident {_label(record)} closed: release the devices isolated for it"
            + (f" and for the incidents merged into it ({', '.join(merged_labels)})" if merged_labels else ""),
        )
        return await self._create(incident_id, rule, command, origin)


def _label(record: IncidentRecord) -> str:
    where = service.workspace_name(record.workspace)
    return f"{record.external_id} ({where})" if where else record.external_id
