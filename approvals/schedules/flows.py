"""Schedules in chat: ``schedule tag|list|remove|run``, and the parts the other modules of this folder play.

A schedule is created (and removed) through a request with verb ``schedule``: the card shows the tag, the
query, the cadence, --sync and a preview of what the query returns now. The request carries no device
snapshot (the devices are whatever the query finds at each run), and its verb's effect is
``Effect.ACTIVATES_SCHEDULE`` (``approvals/verbs.py``): the job engine never takes it. Once approved,
``activation.py`` makes the schedule active (or removes it) and closes the request; ``runs.py`` runs one
occurrence; ``scheduled.py`` is the loop that claims occurrences across replicas.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.commands.models import (
    ScheduleCommand,
    ScheduleCreateCommand,
    ScheduleListCommand,
    ScheduleRemoveCommand,
    ScheduleRunCommand,
)
from approvals.identity import Actor, Origin
from approvals.requests.models import RequestRecord
from approvals.requests.proposer import Proposer
from approvals.resolution.flows import Resolution
from approvals.schedules import messaging, tagging
from approvals.schedules import service as store
from approvals.schedules.activation import Activation
from approvals.schedules.models import RunState, Schedule, ScheduleRun
from approvals.schedules.runs import ScheduleRuns
from approvals.verbs import ScheduleOp, Verb
from approvals.views import Reply

log = logging.getLogger(__name__)


class ScheduleFlows:
    def __init__(self, proposer: Proposer, *, on_queued: Callable[[], None]) -> None:
        """``on_queued``: a run was queued (``schedule run N``); wakes the scheduler before its next tick."""
        self.proposer = proposer
        self.db, self.client, self.policy, self.clock = proposer.db, proposer.client, proposer.policy, proposer.clock
        self._on_queued = on_queued
        self.activation = Activation(self.db, notify=proposer.notify, clock=self.clock)
        self.runs = ScheduleRuns(self.db, self.client, self.policy, notify=proposer.notify, clock=self.clock)

    # -- chat commands ---------------------------------------------------------------------------------
    async def handle(self, actor: Actor, origin: Origin, command: ScheduleCommand) -> Reply:
        if isinstance(command, ScheduleListCommand):
            return await self._list()
        refusal = self.proposer.refusal(actor, origin, Verb.SCHEDULE)
        if refusal is not None:
            return refusal
        if isinstance(command, ScheduleCreateCommand):
            return await self._create(actor, origin, command)
        if isinstance(command, ScheduleRemoveCommand):
            return await self._remove(actor, origin, command)
        return await self._run_now(actor, command)

    async def _list(self) -> Reply:
        async with self.db.sessions() as session:
            rows = await store.listed(session)
        if not rows:
            return Reply(
                text='No schedules. Create one with: schedule tag "TAG" query:"…" every fri 06:00 --reason "…"'
            )
        return Reply(text="\n".join(["Schedules (times UTC):", *(messaging.list_line(s, st) for s, st in rows)]))

    async def _create(self, actor: Actor, origin: Origin, command: ScheduleCreateCommand) -> Reply:
        preview = await tagging.plan(  # a ScheduleQueryError is one sentence in chat (ChatOps.handle)
            self.client,
            self.policy,
            tag=command.tag_value,
            kql=command.query,
            sync=command.sync,
            include_protected=False,
        )
        cap = self.policy.max_devices(Verb.SCHEDULE)
        if preview.changes > cap:
            return Reply(text="Refused: " + messaging.over_cap(preview.changes, cap) + " Narrow the query.", error=True)
        now = self.clock()
        cadence = command.cadence
        params = {
            "op": ScheduleOp.CREATE,
            "tag_value": command.tag_value,
            "kql": command.query,
            "cadence": cadence.spec(),
            "cadence_text": cadence.describe(),
            "sync": command.sync,
        }
        lines = messaging.card_lines(
            preview,
            tag=command.tag_value,
            sync=command.sync,
            cadence_text=cadence.describe(),
            first_run=cadence.next_after(now),
        )
        async with self.db.transaction() as session:
            record = await self._insert(
                session,
                actor,
                origin,
                params,
                command.reason,
                command.query,
                lines,
                devices=preview.found,
                resolution=Resolution(exclusions=messaging.protected_rows(preview)),
            )
            schedule = Schedule(
                request_id=record.id,
                tag=command.tag_value,
                kql=command.query,
                cadence=cadence.spec(),
                sync=command.sync,
                include_protected=False,
                created_by=actor.key,
                created_by_label=actor.label(),
                active=False,
                origin_surface=origin.surface,
                origin_channel=origin.channel_id,
                origin_context=origin.context,
                created_at=now,
            )
            session.add(schedule)
            await session.flush()
            record.params = {**params, "schedule_id": schedule.id}
        return await self.proposer.created(
            record.id,
            f"Request #{record.id} created: schedule #{schedule.id}, tag '{command.tag_value}' "
            f"{cadence.describe()} on what the query finds ({preview.found} device(s) now); it needs "
            f"{record.required_approvals} approval(s) by someone other than you.",
        )

    async def _insert(
        self,
        session: AsyncSession,
        actor: Actor,
        origin: Origin,
        params: dict[str, Any],
        reason: str,
        kql: str,
        lines: list[str],
        *,
        devices: int = 0,
        resolution: Resolution | None = None,
    ) -> RequestRecord:
        """A ``schedule`` request whose target is the query as typed."""
        return await self.proposer.insert(
            session,
            actor,
            origin,
            verb=Verb.SCHEDULE,
            params=params,
            reason=reason,
            target_text=f'query:"{kql}"',
            lines=lines,
            devices=devices,
            resolution=resolution,
        )

    async def _remove(self, actor: Actor, origin: Origin, command: ScheduleRemoveCommand) -> Reply:
        async with self.db.sessions() as session:
            schedule = await store.get_schedule(session, command.schedule_id)
        if schedule is None or not schedule.active:
            return Reply(text=f"There is no active schedule #{command.schedule_id}; see schedule list.", error=True)
        params = {
            "op": ScheduleOp.REMOVE,
            "schedule_id": schedule.id,
            "tag_value": schedule.tag,
            "kql": schedule.kql,
            "cadence": schedule.cadence,
            "cadence_text": messaging.describe(schedule.cadence),
            "sync": schedule.sync,
        }
        lines = [
            f"Removes schedule #{schedule.id} (request #{schedule.request_id}): tag '{schedule.tag}' "
            f"{messaging.describe(schedule.cadence)}{' --sync' if schedule.sync else ''}.",
            f"Devices keep the tag '{schedule.tag}'; untag them separately if needed.",
        ]
        async with self.db.transaction() as session:
            record = await self._insert(session, actor, origin, params, command.reason, schedule.kql, lines)
        return await self.proposer.created(
            record.id,
            f"Request #{record.id} created: remove schedule #{schedule.id}; it needs "
            f"{record.required_approvals} approval(s) by someone other than you.",
        )

    async def _run_now(self, actor: Actor, command: ScheduleRunCommand) -> Reply:
        now = self.clock()
        async with self.db.transaction() as session:
            schedule = await store.get_schedule(session, command.schedule_id, for_update=self.db.is_postgres)
            if schedule is None or not schedule.active:
                return Reply(text=f"There is no active schedule #{command.schedule_id}; see schedule list.", error=True)
            if await store.open_run(session, schedule.id) is not None:
                return Reply(
                    text=f"Schedule #{schedule.id} is already running; its report goes to request "
                    f"#{schedule.request_id}'s thread.",
                    error=True,
                )
            session.add(
                ScheduleRun(
                    schedule_id=schedule.id,
                    due_at=now,
                    kind="manual",
                    state=RunState.QUEUED.value,
                    requested_by=actor.label(),
                    attempts=0,
                    errors=[],
                )
            )
            audit(
                session,
                "schedule.run_requested",
                actor,
                request_id=schedule.request_id,
                verb=Verb.SCHEDULE,
                text=command.reason,
                schedule_id=schedule.id,
            )
        self._on_queued()
        return Reply(
            text=f"Schedule #{schedule.id} runs now; its report goes to the thread of request #{schedule.request_id}."
        )
