"""``ChatOps``: the one entry point every surface calls.

A surface turns a platform payload into ``handle(actor, origin, text)`` or ``decide(...)`` and renders
the ``Reply``; request cards, their updates and the thread are driven by the stored event feed
(``bot.delivery``), so nothing here knows which chat platform is on the other side.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from approvals.commands.grammar import parse
from approvals.commands.help import help_text as grammar_help
from approvals.commands.models import (
    ActionCommand,
    AdoptCommand,
    CancelCommand,
    Command,
    DecisionCommand,
    DevicesCommand,
    DoctorCommand,
    HelpCommand,
    HistoryCommand,
    IndicatorCommand,
    IndicatorListCommand,
    IsolatedCommand,
    ScheduleCommand,
    StatusCommand,
    TargetKind,
)
from approvals.containment.flows import ContainmentFlows
from approvals.containment.timebox import time_box_params
from approvals.db import Clock, Database, utcnow
from approvals.errors import ResolutionError, UserError
from approvals.execution.cancels import cancel_unsubmitted
from approvals.execution.flows import Worker
from approvals.identity import Actor, Origin
from approvals.incidents import service as incident_store
from approvals.indicators.flows import IndicatorFlows
from approvals.messages import describe_mde_error
from approvals.policy import Policy
from approvals.reads import RequestReads
from approvals.requests.approval import ApprovalFlows
from approvals.requests.flows import RequestFlows
from approvals.requests.labels import action_label
from approvals.requests.proposer import Proposer
from approvals.resolution.flows import Resolution, Resolver
from approvals.schedules.flows import ScheduleFlows
from approvals.text import preview
from approvals.verbs import ACTIONS, Verb
from approvals.views import DeviceRow, Reply, RequestView
from mde.client import MdeClient
from mde.errors import MdeError

log = logging.getLogger(__name__)


class ChatOps:
    def __init__(
        self,
        db: Database,
        client: MdeClient,
        policy: Policy,
        *,
        worker: Worker | None = None,
        limiter: Any = None,
        on_schedule_queued: Callable[[], None] | None = None,
        clock: Clock = utcnow,
        doctor: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        """``on_schedule_queued`` wakes this process's scheduler on ``schedule run N`` (none: a later tick)."""
        self.db = db
        self.client = client
        self.policy = policy
        #: woken by approvals and cancels; None in a process without one (the workers elsewhere find the work)
        self.worker = worker
        self.clock = clock
        self.flows = RequestFlows(db, policy, clock, stop_jobs=cancel_unsubmitted)
        self.approvals = ApprovalFlows(db, policy, clock, on_approved=self._approved)
        self.resolver = Resolver(client, policy, incidents=self._incident_devices)
        self._listeners: list[Callable[[], None]] = []
        self.containment = ContainmentFlows(db, self.resolver, policy, clock)
        self.reads = RequestReads(db, client, self.containment, worker=worker, limiter=limiter)
        proposer = Proposer(db, client, policy, view=self.view, notify=self.notify, flows=self.flows, clock=clock)
        self.schedules = ScheduleFlows(proposer, on_queued=on_schedule_queued or _next_tick)
        self.indicators = IndicatorFlows(proposer)
        self.doctor = doctor  # the deployment checks for the admin-only ``doctor`` command

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Called (synchronously, cheaply) whenever new events were stored, to wake delivery loops."""
        self._listeners.append(listener)

    def notify(self) -> None:
        for listener in self._listeners:
            listener()

    # -- inbound -----------------------------------------------------------------------------------------
    async def handle(self, actor: Actor, origin: Origin, text: str) -> Reply:
        try:
            return await self._dispatch(actor, origin, parse(text), text)
        except UserError as exc:  # parse, resolution, schedule query: one sentence, no traceback
            return Reply(text=exc.message, error=True)
        except MdeError as exc:
            return Reply(text=describe_mde_error(exc), error=True)

    async def _dispatch(self, actor: Actor, origin: Origin, command: Command, text: str) -> Reply:
        if isinstance(command, HelpCommand):
            return Reply(text=self.help_text(command.topic, prefix=_prefix(origin.surface)))
        if isinstance(command, DevicesCommand):
            resolution = await self.resolver.resolve(command.targets, verb=Verb.DEVICES)
            return Reply(text=preview(resolution, title="Matches"))
        if isinstance(command, ActionCommand):
            return await self._request(actor, origin, command)
        if isinstance(command, DecisionCommand):
            return await self.decide(actor, command.request_id, approve=command.approve, reason=command.reason)
        if isinstance(command, StatusCommand):
            return await self.reads.status(command.request_id, origin)
        if isinstance(command, CancelCommand):
            return await self.cancel(actor, command.request_id, command.reason)
        if isinstance(command, HistoryCommand):
            return await self.reads.history(command)
        if isinstance(command, ScheduleCommand):
            return await self.schedules.handle(actor, origin, command)
        if isinstance(command, DoctorCommand):
            return await self._doctor(actor)
        if isinstance(command, IndicatorCommand | IndicatorListCommand):
            return await self.indicators.handle(actor, origin, command)
        if isinstance(command, IsolatedCommand):
            return await self.containment.isolated(command)
        if isinstance(command, AdoptCommand):
            return await self.containment.adopt(actor, origin, command)
        return Reply(text="That command is not supported here.", error=True)

    async def _doctor(self, actor: Actor) -> Reply:
        if not self.policy.is_admin(actor):
            return Reply(
                text=f"doctor is for admins; you are {actor.key}. An operator lists admins under admins: in the "
                "policy.",
                error=True,
            )
        if self.doctor is None:
            return Reply(text="doctor is not available in this process; run mde-chatops doctor.", error=True)
        return Reply(text=await self.doctor())

    async def _request(self, actor: Actor, origin: Origin, command: ActionCommand) -> Reply:
        verb = command.verb
        allowed = self.policy.can_request(actor, verb, surface=origin.surface, channel_id=origin.channel_id)
        if not allowed.allowed:
            return Reply(text=allowed.reason, error=True)
        if command.release_at is not None and command.release_at <= self.clock():
            return Reply(
                text="--until is in the past; give a later UTC time, e.g. --until 2026-12-03T18:00Z.", error=True
            )
        resolution = await self.resolver.resolve(
            command.targets, verb=verb, isolation_type=command.isolation_type, active_only=command.active_only
        )
        params = _params(command)
        if params.get("planned_release") and self.policy.model.containment.release == "auto_at_end":
            params["release_preapproved"] = True
        label = action_label(verb, params)
        if not resolution.devices:
            return Reply(
                text=preview(resolution, title=f"Nothing to do for {label}: no device is left after exclusions"),
                error=True,
            )
        cap = self.policy.max_devices(verb)
        over_cap = (
            f"The target matches {len(resolution.devices)} devices; the cap for {verb} is {cap}. "
            f"Narrow the target, or ask an admin to raise actions.{verb}.max_devices in the policy."
            if len(resolution.devices) > cap
            else None
        )
        target_text = " ".join(str(t) for t in command.targets)
        if command.dry_run:
            needed = self.policy.required_approvals(verb, len(resolution.devices))
            verdict = f"\nIt would be refused: {over_cap}" if over_cap else f"\nIt would need {needed} approval(s)."
            return Reply(text=preview(resolution, title=f"Dry run, nothing requested. {label} would cover") + verdict)
        if over_cap:
            return Reply(text=over_cap, error=True)
        record = await self.flows.create(
            actor=actor,
            origin=origin,
            verb=verb,
            params=params,
            reason=command.reason,
            target_text=target_text,
            resolution=resolution,
            canary=command.canary,
            incident_id=await self._incident_of(command),
        )
        self.notify()
        view = await self.view(record.id)
        return Reply(
            text=(
                f"Request #{record.id} created: {label} on {len(resolution.devices)} device(s); "
                f"it needs {record.required_approvals} approval(s) by someone other than you."
            ),
            ephemeral=True,
            request=view,
        )

    async def _incident_devices(self, key: str) -> tuple[list[str], list[str]]:
        """``incident:KEY`` targets: the device ids and DNS names the stored incident names."""
        try:
            async with self.db.sessions() as session:
                found = await incident_store.devices_of(session, key)
        except incident_store.AmbiguousIncident as exc:
            raise ResolutionError(str(exc)) from None
        if found is None:
            raise ResolutionError(f"No incident {key} has been received (POST /api/incidents).")
        return found

    async def _incident_of(self, command: ActionCommand) -> str | None:
        """A request made with ``incident:`` targets belongs to that incident (its war-room thread)."""
        for target in command.targets:
            if target.kind is TargetKind.INCIDENT:
                try:
                    async with self.db.sessions() as session:
                        record = await incident_store.find(session, target.value)
                except incident_store.AmbiguousIncident:
                    record = None  # resolution already refused it with the list of workspaces
                if record is not None:
                    return str(record.id)
        return None

    async def create_request(
        self,
        actor: Actor,
        origin: Origin,
        command: ActionCommand,
        resolution: Resolution,
        *,
        incident_id: str | None = None,
        extra_params: dict[str, Any] | None = None,
    ) -> int:
        """For flows that resolved devices themselves (incident notifications)."""
        record = await self.flows.create(
            actor=actor,
            origin=origin,
            verb=command.verb,
            params={**_params(command), **(extra_params or {})},
            reason=command.reason,
            target_text=" ".join(str(t) for t in command.targets),
            resolution=resolution,
            canary=command.canary,
            incident_id=incident_id,
        )
        self.notify()
        return record.id

    async def remember_conversation(self, origin: Origin) -> None:
        """Keep what a surface needs to post to this conversation later (incident notifications)."""
        async with self.db.transaction() as session:
            await incident_store.remember_conversation(session, origin.surface, origin.channel_id, origin.context)

    async def isolated_for_incident(self, incident_id: int) -> list[str]:
        return await self.containment.isolated_for_incident(incident_id)

    async def auto_approve(self, request_id: int, rule: str) -> Reply:
        """A notification rule the policy lets act alone (``auto_rules``): approved without a person."""
        outcome = await self.approvals.auto_approve(request_id, rule)
        if outcome.allowed:
            self.notify()
        return Reply(text=outcome.reason, error=not outcome.allowed)

    async def decide(
        self,
        actor: Actor,
        request_id: int,
        *,
        approve: bool,
        reason: str | None = None,
        break_glass: bool = False,
    ) -> Reply:
        outcome = await self.approvals.decide(
            actor, request_id, approve=approve, reason=reason, break_glass=break_glass
        )
        if outcome.allowed:
            self.notify()
        view = await self.view(request_id) if outcome.request_id else None
        return Reply(text=outcome.reason, error=not outcome.allowed, request=view)

    async def _approved(self, request_id: int) -> None:
        """After every approval (``on_approved``): a worker creates the jobs; a schedule is active at once."""
        if self.worker is not None:
            self.worker.wake()
        await self.schedules.activation.settle_approved(request_id)

    async def cancel(self, actor: Actor, request_id: int, reason: str | None) -> Reply:
        """Answers at once: the worker cancels the submitted actions in MDE (house rule: no MDE call here)."""
        if self.worker is not None:
            self.worker.withdraw(request_id)  # before the transaction: nothing waiting for budget goes out
        outcome = await self.flows.cancel(actor, request_id, reason)
        if self.worker is not None:
            if outcome.allowed:
                self.worker.wake_cancels()
            else:
                self.worker.restore(request_id)
        if outcome.allowed:
            self.notify()
        return Reply(text=outcome.reason, error=not outcome.allowed, ephemeral=not outcome.allowed)

    # -- reads (``approvals/reads.py``) -------------------------------------------------------------------
    async def view(self, request_id: int) -> RequestView:
        return await self.reads.view(request_id)

    async def lives_in(self, request_id: int, surface: str, channel_id: str) -> bool:
        return await self.reads.lives_in(request_id, surface, channel_id)

    async def results_csv(self, request_id: int) -> str:
        return await self.reads.results_csv(request_id)

    async def device_rows(self, request_id: int, *, limit: int) -> list[DeviceRow]:
        return await self.reads.device_rows(request_id, limit=limit)

    def help_text(self, topic: str | None, *, prefix: str) -> str:
        return grammar_help(topic, prefix=prefix)


def _params(command: ActionCommand) -> dict[str, Any]:
    return {**ACTIONS[command.verb].params_of(command), **time_box_params(command)}


def _prefix(surface: str) -> str:
    return {"slack": "/mde", "teams": "@mde"}.get(surface, "")


def _next_tick() -> None:
    """No scheduler in this process to wake: a queued run waits for the next tick of one elsewhere."""
