"""Schedules end to end: the chat commands, approval to active, and the scheduler loop that runs them.

A schedule is created (and removed) through a request with verb ``schedule``: the card shows the tag, the
query, the cadence, --sync and a preview of what the query returns now. The request carries no device
snapshot (the devices are whatever the query finds at each run), so the job engine has nothing to do for
it; ``summarized_at`` is set at creation so the engine never summarizes it either. Once approved,
``settle_approved`` makes the schedule active (or removes it) and closes the request as succeeded; nothing
is called in MDE at approval: the first run is the next occurrence, or ``schedule run N``.

Each run reports one NOTE line on the creating request, so it lands in that card's thread, on the
surface and channel where the schedule was requested.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.commands.models import (
    ScheduleCommand,
    ScheduleCreateCommand,
    ScheduleListCommand,
    ScheduleRemoveCommand,
    ScheduleRunCommand,
)
from approvals.db import Clock, Database, utcnow
from approvals.errors import ScheduleQueryError
from approvals.identity import SYSTEM, Actor, Origin
from approvals.messages import describe_mde_error
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.policy import Policy
from approvals.requests.flows import announce_created
from approvals.requests.models import RequestRecord
from approvals.requests.service import insert_request
from approvals.requests.states import RequestState, transition
from approvals.resolution.flows import Resolution
from approvals.schedules import messaging, tagging
from approvals.schedules import service as store
from approvals.schedules.models import RunState, Schedule, ScheduleRun
from approvals.verbs import ScheduleOp, Verb
from approvals.views import ExclusionRow, Reply, RequestView
from mde.client import MdeClient
from mde.errors import MdeError

log = logging.getLogger(__name__)


class ScheduleFlows:
    def __init__(
        self,
        db: Database,
        client: MdeClient,
        policy: Policy,
        *,
        view: Callable[[int], Awaitable[RequestView]],
        notify: Callable[[], None],
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.client = client
        self.policy = policy
        self.clock = clock
        self._view = view
        self._notify = notify
        #: set by the scheduler: a run was queued (``schedule run N``), do not wait for the next tick
        self.on_queued: Callable[[], None] | None = None

    # -- chat commands ---------------------------------------------------------------------------------
    async def handle(self, actor: Actor, origin: Origin, command: ScheduleCommand) -> Reply:
        if isinstance(command, ScheduleListCommand):
            return await self._list()
        allowed = self.policy.can_request(actor, Verb.SCHEDULE, surface=origin.surface, channel_id=origin.channel_id)
        if not allowed.allowed:
            return Reply(text=allowed.reason, error=True)
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
            return Reply(text="Refused: " + _over_cap(preview.changes, cap) + " Narrow the query.", error=True)
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
            record = await self._insert_request(
                session,
                actor,
                origin,
                params,
                command.reason,
                command.query,
                lines,
                devices=preview.found,
                exclusions=messaging.protected_rows(preview),
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
        self._notify()
        return Reply(
            text=(
                f"Request #{record.id} created: schedule #{schedule.id}, tag '{command.tag_value}' "
                f"{cadence.describe()} on what the query finds ({preview.found} device(s) now); it needs "
                f"{record.required_approvals} approval(s) by someone other than you."
            ),
            ephemeral=True,
            request=await self._view(record.id),
        )

    async def _insert_request(
        self,
        session: AsyncSession,
        actor: Actor,
        origin: Origin,
        params: dict[str, Any],
        reason: str,
        kql: str,
        lines: list[str],
        *,
        devices: int,
        exclusions: list[ExclusionRow] | None = None,
    ) -> RequestRecord:
        now = self.clock()
        target = f'query:"{kql}"'
        record = await insert_request(
            session,
            actor=actor,
            origin=origin,
            verb=Verb.SCHEDULE,
            params=params,
            reason=reason,
            target_text=target,
            resolution=Resolution(exclusions=exclusions or []),
            required_approvals=self.policy.required_approvals(Verb.SCHEDULE, devices),
            created_at=now,
            expires_at=now + self.policy.expiry_for(Verb.SCHEDULE),
            canary=None,
            warnings=lines,
        )
        record.summarized_at = now  # no device jobs: the job engine must not summarize (fail) it
        announce_created(session, record, actor, origin, Resolution(exclusions=exclusions or []))
        return record

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
            record = await self._insert_request(
                session, actor, origin, params, command.reason, schedule.kql, lines, devices=0
            )
        self._notify()
        return Reply(
            text=(
                f"Request #{record.id} created: remove schedule #{schedule.id}; it needs "
                f"{record.required_approvals} approval(s) by someone other than you."
            ),
            ephemeral=True,
            request=await self._view(record.id),
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
        if self.on_queued is not None:
            self.on_queued()
        return Reply(
            text=f"Schedule #{schedule.id} runs now; its report goes to the thread of request #{schedule.request_id}."
        )

    # -- approval -> active ----------------------------------------------------------------------------
    async def settle_approved(self, request_id: int | None = None) -> int:
        """Activate (or remove) the schedules of approved ``schedule`` requests; returns how many."""
        async with self.db.sessions() as session:
            query = select(RequestRecord.id).where(
                RequestRecord.verb == Verb.SCHEDULE, RequestRecord.state == RequestState.APPROVED.value
            )
            if request_id is not None:
                query = query.where(RequestRecord.id == request_id)
            ids = list(await session.scalars(query))
        settled = 0
        for rid in ids:
            settled += await self._settle(rid)
        if settled:
            self._notify()
        return settled

    async def _settle(self, request_id: int) -> bool:
        now = self.clock()
        async with self.db.transaction() as session:
            if not await transition(session, request_id, RequestState.EXECUTING, now=now):
                return False  # another replica settled it
            record = await session.get(RequestRecord, request_id)
            assert record is not None
            params = record.params or {}
            op = ScheduleOp(params.get("op", ScheduleOp.CREATE))
            if op is ScheduleOp.REMOVE:
                ok, note = await self._deactivate(session, record, now)
            else:
                ok, note = await self._activate(session, record, now)
            final = RequestState.SUCCEEDED if ok else RequestState.FAILED
            await transition(session, request_id, final, now=now, outcome_note=note)
            emit(session, request_id, EventKind.STATE, state=final.value)
            emit(session, request_id, EventKind.NOTE, text=note)
            audit(
                session,
                "schedule.removed" if op is ScheduleOp.REMOVE else "schedule.activated",
                SYSTEM,
                request_id=request_id,
                verb=Verb.SCHEDULE,
                outcome=final.value,
                text=note,
                schedule_id=params.get("schedule_id"),
            )
        return True

    async def _activate(self, session: AsyncSession, record: RequestRecord, now: datetime) -> tuple[bool, str]:
        schedule = await store.schedule_of_request(session, record.id)
        if schedule is None:
            return False, "This request has no schedule row; nothing was activated."
        first = store.cadence_of(schedule).next_after(now)
        schedule.active, schedule.activated_at, schedule.next_run_at = True, now, first
        schedule.include_protected = record.break_glass_by is not None
        return True, (
            f"Schedule #{schedule.id} is active: tag '{schedule.tag}' {messaging.describe(schedule.cadence)}; "
            f"first run {messaging.when(first)}. Each run reports here. Run it now with: schedule run {schedule.id}"
        )

    async def _deactivate(self, session: AsyncSession, record: RequestRecord, now: datetime) -> tuple[bool, str]:
        schedule_id = int((record.params or {}).get("schedule_id") or 0)
        schedule = await store.get_schedule(session, schedule_id, for_update=self.db.is_postgres)
        if schedule is None or not schedule.active:
            return False, f"Schedule #{schedule_id} was already removed; nothing changed."
        schedule.active, schedule.removed_at, schedule.next_run_at = False, now, None
        await session.execute(
            update(ScheduleRun)
            .where(ScheduleRun.schedule_id == schedule.id, ScheduleRun.state == RunState.QUEUED.value)
            .values(state=RunState.REFUSED.value, note="the schedule was removed", finished_at=now)
            .execution_options(synchronize_session=False)
        )
        note = f"Schedule #{schedule.id} removed by request #{record.id}; it will not run again."
        emit(session, schedule.request_id, EventKind.NOTE, text=note)
        return True, note

    # -- runs ------------------------------------------------------------------------------------------
    async def claim(self, owner: str, *, stale: timedelta) -> list[ScheduleRun]:
        now = self.clock()
        async with self.db.transaction() as session:
            runs = await store.claim_due(session, owner, now=now, is_postgres=self.db.is_postgres)
            runs += await store.claim_queued(session, owner, now=now, stale=stale, is_postgres=self.db.is_postgres)
        return runs

    async def execute(self, run: ScheduleRun, owner: str) -> None:
        """One run: query, plan, bulk-tag, then store the result, audit it and report it, in one transaction."""
        async with self.db.sessions() as session:
            schedule = await session.get(Schedule, run.schedule_id)
            if schedule is None or not await store.holds(session, run.id, owner):
                return  # taken over by another scheduler after this one stalled
        plan: tagging.Plan | None = None
        applied = tagging.Applied()
        note: str | None = None
        if not schedule.active:
            state, note = RunState.REFUSED, "did nothing: the schedule was removed."
        else:
            try:
                plan = await tagging.plan(
                    self.client,
                    self.policy,
                    tag=schedule.tag,
                    kql=schedule.kql,
                    sync=schedule.sync,
                    include_protected=schedule.include_protected,
                )
            except ScheduleQueryError as exc:
                state, note = RunState.FAILED, f"failed: {exc}"
            except MdeError as exc:
                state, note = RunState.FAILED, f"failed: {describe_mde_error(exc)}"
            else:
                cap = self.policy.max_devices(Verb.SCHEDULE)
                if plan.changes > cap:
                    state, note = RunState.REFUSED, "did nothing: " + _over_cap(plan.changes, cap)
                else:
                    applied = await tagging.apply(self.client, schedule.tag, plan)
                    nothing_done = applied.errors and not (applied.added or applied.removed)
                    state = RunState.FAILED if nothing_done else RunState.SUCCEEDED
        await self._record(run, schedule, owner, state, plan, applied, note)

    async def _record(
        self,
        run: ScheduleRun,
        schedule: Schedule,
        owner: str,
        state: RunState,
        plan: tagging.Plan | None,
        applied: tagging.Applied,
        note: str | None,
    ) -> None:
        now = self.clock()
        result = messaging.result_dict(
            plan, added=applied.added, removed=applied.removed, errors=applied.errors, state=state.value
        )
        result["note"] = note
        async with self.db.transaction() as session:
            stored = await store.finish_run(
                session,
                run,
                owner,
                now=now,
                state=state.value,
                found=result["found"],
                added=applied.added,
                already_tagged=result["already_tagged"],
                removed=applied.removed,
                skipped=result["skipped"],
                errors=applied.errors,
                note=note,
            )
            if not stored:
                log.warning("schedule run %s was taken over by another scheduler; its result is not stored", run.id)
                return
            await session.execute(
                update(Schedule)
                .where(Schedule.id == schedule.id)
                .values(last_run_at=now, last_result={**result, "due_at": run.due_at.isoformat(), "run_id": run.id})
                .execution_options(synchronize_session=False)
            )
            line = messaging.run_line(schedule.id, result, manual_by=run.requested_by if run.kind == "manual" else None)
            emit(session, schedule.request_id, EventKind.NOTE, text=line)
            audit(
                session,
                "schedule.run",
                SYSTEM,
                request_id=schedule.request_id,
                verb=Verb.SCHEDULE,
                devices=[m.id for m in (plan.to_add + plan.to_remove)] if plan and state is RunState.SUCCEEDED else [],
                outcome=state.value,
                text=line,
                schedule_id=schedule.id,
                run_id=run.id,
                due_at=run.due_at.isoformat(),
                kind=run.kind,
                counts={k: result[k] for k in ("found", "added", "already_tagged", "removed", "skipped", "unknown")},
                errors=applied.errors,
            )
        self._notify()


def _over_cap(changes: int, cap: int) -> str:
    return (
        f"it would change the tag on {changes} devices and the cap for schedule is {cap} "
        "(actions.schedule.max_devices, or actions.tag.max_devices, in the policy)."
    )


@dataclass
class SchedulerConfig:
    #: how often a replica looks for due occurrences (a cheap indexed SELECT)
    tick_s: float = 5.0
    #: a run claimed longer ago than this by a scheduler that never finished it is run again (crash)
    stale_s: float = 900.0


class Scheduler:
    """The loop: settle approved schedule requests, claim due and queued runs, execute them one by one."""

    def __init__(
        self, flows: ScheduleFlows, *, owner: str | None = None, config: SchedulerConfig | None = None
    ) -> None:
        self.flows = flows
        self.owner = owner or f"scheduler-{uuid.uuid4().hex[:12]}"
        self.config = config or SchedulerConfig()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        flows.on_queued = self.wake

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def tick(self) -> int:
        """One round; returns how many runs this scheduler executed (tests call it directly)."""
        await self.flows.settle_approved()
        runs = await self.flows.claim(self.owner, stale=timedelta(seconds=self.config.stale_s))
        for run in runs:
            try:
                await self.flows.execute(run, self.owner)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: the run stays claimed and is retried once its claim is stale
                log.exception("schedule run %s failed unexpectedly", run.id)
        return len(runs)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.tick_s)
