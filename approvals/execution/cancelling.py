"""Cancelling a cancelled request's MDE actions: in the worker, newest first, concurrently, ahead of the
other calls of the family, and reporting what really happened to each.

cancel-machine-action.md: ``POST /api/machineactions/{id}/cancel`` cancels an action "that isn't yet in
final state"; 100 calls per minute and 1,500 per hour of its own. Whether MDE also counts cancels against
the actions' budget is not documented, so the client counts them against both (``MdeClient``), and a
429 is waited out (Retry-After) and retried while the card says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.db import Database
from approvals.execution import cancels
from approvals.execution.actions import CLOCK_SKEW, marker
from approvals.execution.models import Job
from approvals.execution.storing import OnFinal, settle_jobs
from approvals.messages import describe_mde_error
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.requests.models import DeviceState, RequestRecord
from mde.client import MdeClient
from mde.errors import BadRequest, MdeError, RateLimited
from mde.models import ActionStatus, MachineAction

log = logging.getLogger(__name__)

#: the device's error text for each way a cancel ends (the summary counts by these)
CANCELLED_IN_MDE = "cancelled in MDE"
NOT_CANCELLED = "could not be cancelled"
FINISHED_FIRST = "had already finished"
#: cancels claimed per round
CANCEL_BATCH = 500


@dataclass
class _Round:
    finals: list[tuple[Job, DeviceState, str | None]] = field(default_factory=list)
    not_cancelled: list[tuple[Job, str]] = field(default_factory=list)
    later: list[tuple[Job, datetime]] = field(default_factory=list)
    refused: list[Job] = field(default_factory=list)
    throttle_noted: set[int] = field(default_factory=set)


class Canceller:
    def __init__(
        self,
        db: Database,
        client: MdeClient,
        *,
        owner: str,
        concurrency: int,
        stale_s: float,
        retry_s: float,
        clock: Callable[[], datetime],
        settled: Callable[[set[int]], Awaitable[None]],
        on_final: OnFinal | None = None,
    ) -> None:
        self.db, self.client, self.owner = db, client, owner
        self.concurrency, self.stale_s, self.retry_s = concurrency, stale_s, retry_s
        self.clock = clock
        self._settled = settled
        self._on_final = on_final

    async def run_once(self) -> int:
        """One round: claim, look, cancel what is still pending, store the truth; returns jobs settled."""
        async with self.db.transaction() as session:
            claimed = await cancels.claim_cancels(
                session,
                owner=self.owner,
                now=self.clock(),
                stale=timedelta(seconds=self.stale_s),
                limit=CANCEL_BATCH,
                is_postgres=self.db.is_postgres,
            )
            comments = await self._comments(session, {j.request_id for j in claimed})
        if not claimed:
            return 0
        current = await self._statuses(claimed)
        work = _Round()
        pending = []
        for job in claimed:
            action = current.get(job.action_id or "")
            if action is not None and action.status.is_final:
                work.finals.append(_finished(job, action))
            else:
                pending.append(job)
        gate = asyncio.Semaphore(self.concurrency)
        await asyncio.gather(*(self._cancel(job, comments[job.request_id], gate, work) for job in pending))
        if work.refused:  # "already in final state": read how it ended
            again = await self._statuses(work.refused)
            for job in work.refused:
                action = again.get(job.action_id or "")
                if action is not None and action.status.is_final:
                    work.finals.append(_finished(job, action))
                else:
                    work.later.append((job, self.clock() + timedelta(seconds=self.retry_s)))
        now = self.clock()
        async with self.db.transaction() as session:
            await settle_jobs(session, work.finals, now=now, on_final=self._on_final, announce=False)
            await cancels.store_not_cancelled(session, items=work.not_cancelled, now=now)
            await cancels.release_cancels(session, items=work.later)
        await self._settled({j.request_id for j in claimed})
        return len(work.finals) + len(work.not_cancelled)

    async def _comments(self, session: AsyncSession, request_ids: set[int]) -> dict[int, str]:
        rows = await session.execute(
            select(RequestRecord.id, RequestRecord.outcome_note).where(RequestRecord.id.in_(request_ids))
        )
        return {rid: f"request cancelled: {note or 'no reason given'} {marker(rid)}" for rid, note in rows.all()}

    async def _statuses(self, claimed: list[Job]) -> dict[str, MachineAction]:
        """Every claimed action's status with one list call (pages of 10,000), not one GET each."""
        oldest = min(j.submitted_at or self.clock() for j in claimed)
        listed = await self.client.list_machine_actions(created_after=oldest - CLOCK_SKEW)
        return {a.id: a for a in listed}

    async def _cancel(self, job: Job, comment: str, gate: asyncio.Semaphore, work: _Round) -> None:
        async with gate:
            while True:
                try:
                    action = await self.client.cancel_machine_action(
                        job.action_id or "", comment=comment, priority=True, retry_throttled=False
                    )
                except RateLimited as exc:
                    wait = exc.retry_after or 1.0
                    await self._waiting(job, wait, work)
                    await asyncio.sleep(wait)  # the client paused the family for as long
                    continue
                except BadRequest:
                    work.refused.append(job)
                except MdeError as exc:
                    if exc.retryable:  # MDE unwell after the client's own retries: another round later
                        work.later.append((job, self.clock() + timedelta(seconds=self.retry_s)))
                    else:
                        work.not_cancelled.append((job, f"{NOT_CANCELLED}: {describe_mde_error(exc)}"))
                else:
                    if action.status is ActionStatus.CANCELLED:
                        work.finals.append((job, DeviceState.CANCELLED, CANCELLED_IN_MDE))
                    else:
                        work.refused.append(job)
                return

    async def _waiting(self, job: Job, wait: float, work: _Round) -> None:
        """The card and thread say a throttled cancel waits, at once (not at the end of the round)."""
        text = f"MDE throttled the cancel (HTTP 429); retrying after its Retry-After of {wait:.0f} s"
        async with self.db.transaction() as session:
            await cancels.store_cancel_waiting(session, job=job, error=text, now=self.clock())
            emit(session, job.request_id, EventKind.PROGRESS, cancel_waiting=True)
            if job.request_id not in work.throttle_noted:
                work.throttle_noted.add(job.request_id)
                emit(session, job.request_id, EventKind.NOTE, text=f"Cancelling: {text}; nothing is dropped.")


def _finished(job: Job, action: MachineAction) -> tuple[Job, DeviceState, str | None]:
    """An action that reached a final state: ours cancelled it, someone else did, or it finished first."""
    status = DeviceState.of(action.status)
    if action.status is ActionStatus.CANCELLED:
        ours = marker(job.request_id) in (action.cancellation_comment or "")
        return job, status, CANCELLED_IN_MDE if ours else f"{FINISHED_FIRST}: cancelled by someone else"
    return job, status, f"{FINISHED_FIRST} ({status.value}) when the cancel came"
