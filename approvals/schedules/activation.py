"""Approval to active: an approved ``schedule`` request activates (or removes) its schedule and closes.

Nothing is called in MDE at approval: the first run is the next occurrence, or ``schedule run N``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.db import Clock, Database, utcnow
from approvals.identity import SYSTEM
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.requests.models import RequestRecord
from approvals.requests.states import RequestState, transition
from approvals.schedules import messaging
from approvals.schedules import service as store
from approvals.schedules.models import RunState, ScheduleRun
from approvals.verbs import ScheduleOp, Verb

log = logging.getLogger(__name__)


class Activation:
    def __init__(self, db: Database, *, notify: Callable[[], None], clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        self._notify = notify

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
