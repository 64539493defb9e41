"""One run of a schedule: query, plan, bulk-tag, then store, audit and report the result in one transaction.

Each run reports one NOTE line on the creating request, so it lands in that card's thread, on the surface
and channel where the schedule was requested.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update

from approvals.audit.service import audit
from approvals.db import Clock, Database, utcnow
from approvals.errors import ScheduleQueryError
from approvals.identity import SYSTEM
from approvals.messages import describe_mde_error
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.policy import Policy
from approvals.schedules import messaging, tagging
from approvals.schedules import service as store
from approvals.schedules.models import RunState, Schedule, ScheduleRun
from approvals.verbs import Verb
from mde.client import MdeClient
from mde.errors import MdeError

log = logging.getLogger(__name__)


class ScheduleRuns:
    def __init__(
        self, db: Database, client: MdeClient, policy: Policy, *, notify: Callable[[], None], clock: Clock = utcnow
    ) -> None:
        self.db = db
        self.client = client
        self.policy = policy
        self.clock = clock
        self._notify = notify

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
                    state, note = RunState.REFUSED, "did nothing: " + messaging.over_cap(plan.changes, cap)
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
