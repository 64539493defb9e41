"""The worker: creates approved requests' jobs, claims them, submits them through the rate-limited client,
polls actions to a final state, settles requests. Each part is its own module; this one runs the loops.

Crash safety: a job is ``submitting`` from the moment it is claimed until its MDE action id is stored.
If the worker dies in between, another worker (or this one after a restart) takes the job over once the
old worker's heartbeat is stale, and first looks in MDE for an action carrying this request's marker:
if one exists it is adopted, so a device is never actioned twice. Jobs are created in the background after
approval (``execution.preparing``), exactly once across replicas and restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select

from approvals.db import Clock, Database, utcnow
from approvals.execution import heartbeats, settle_store
from approvals.execution import service as jobs
from approvals.execution.adoption import find_own_actions
from approvals.execution.cancelling import Canceller
from approvals.execution.models import Job
from approvals.execution.polling import Poller
from approvals.execution.preparing import prepare_approved
from approvals.execution.settling import ProgressReports, finalize_if_done, release_canary
from approvals.execution.storing import OnFinal, store_results
from approvals.execution.submitting import Result, Submitter
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.periodic import Periodic
from approvals.requests.models import RequestRecord
from approvals.requests.states import RequestState, transition
from approvals.verbs import Family
from mde.client import MdeClient

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class WorkerConfig:
    #: jobs in flight at once per worker (the rate limiter, not this, sets the pace)
    concurrency: int = 16
    #: jobs claimed and stored per transaction
    batch_size: int = 8
    poll_interval_s: float = 5.0
    heartbeat_s: float = 5.0
    stale_s: float = 30.0
    idle_wait_s: float = 1.0
    housekeeping_s: float = 1.0
    max_attempts: int = 8
    retry_base_s: float = 2.0
    retry_max_s: float = 300.0
    #: MDE gives up on an offline device after 3 days; report TimeOut ourselves a little later
    action_timeout_s: float = 3 * 86400 + 3600
    progress_interval_s: float = 2.0


class Worker:
    def __init__(
        self,
        db: Database,
        client: MdeClient,
        *,
        config: WorkerConfig | None = None,
        owner: str | None = None,
        limiter: Any = None,
        clock: Clock = utcnow,
        on_tick: Callable[[], Awaitable[Any]] | None = None,
        on_final: OnFinal | None = None,
    ) -> None:
        """``on_tick``: periodic housekeeping run by this worker (expiry, timers); ``on_final``: run in the
        transaction that stores settled jobs (bot/engine.py: the containment register)."""
        self.db = db
        self.client = client
        self.config = config or WorkerConfig()
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.limiter = limiter
        self.clock = clock
        self._on_tick = on_tick
        self._on_final = on_final
        self._wake = asyncio.Event()
        self._started_at = self.clock()
        #: set when another process started under this worker's identity: this one stops claiming
        self.superseded = False
        self._tasks: list[asyncio.Task[None]] = []
        cfg = self.config
        #: the two loops a wake starts at once, else every ``housekeeping_s``: job creation and MDE cancels
        self._preparing = Periodic(self._prepare_round, interval_s=cfg.housekeeping_s, name=f"{self.owner} jobs")
        self._cancelling = Periodic(self._cancel_round, interval_s=cfg.housekeeping_s, name=f"{self.owner} cancels")
        self.progress = ProgressReports(cfg.progress_interval_s)
        self.submitter = Submitter(
            client,
            clock=clock,
            retry_base_s=cfg.retry_base_s,
            retry_max_s=cfg.retry_max_s,
            max_attempts=cfg.max_attempts,
        )
        self.poller = Poller(
            db,
            client,
            owner=self.owner,
            clock=clock,
            stale_s=cfg.stale_s,
            action_timeout_s=cfg.action_timeout_s,
            on_final=on_final,
            settled=self.settle,
        )
        self.canceller = Canceller(
            db,
            client,
            owner=self.owner,
            concurrency=cfg.concurrency,
            stale_s=cfg.stale_s,
            retry_s=cfg.retry_base_s,
            clock=clock,
            settled=self.settle,
            on_final=on_final,
        )

    # -- what the rest of the process tells the worker ---------------------------------------------------
    def wake(self) -> None:
        """New work was stored (an approval, a canary release): create jobs and claim them without waiting
        for the idle timer."""
        self._preparing.wake()
        self._wake.set()

    def withdraw(self, request_id: int) -> None:
        """A cancel is starting: from now on no submission of this request leaves this process."""
        self.submitter.withdraw(request_id)

    def restore(self, request_id: int) -> None:
        """The cancel was refused (not allowed, already final): submissions go on."""
        self.submitter.restore(request_id)

    def wake_cancels(self) -> None:
        self._cancelling.wake()

    def mean_action_seconds(self) -> float | None:
        recent = list(self.poller.action_seconds)
        return sum(recent) / len(recent) if recent else None

    # -- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._started_at = self.clock()
        async with self.db.transaction() as session:
            handed = await heartbeats.begin_incarnation(session, owner=self.owner, now=self._started_at)
        if handed:
            log.warning("worker %s restarted: adopting %d job(s) its previous run had claimed", self.owner, handed)
        loops = [self._submitter(i) for i in range(max(1, self.config.concurrency // self.config.batch_size))]
        loops += [self._poller(), self._housekeeping(), self._heartbeats()]
        self._tasks = [asyncio.create_task(loop) for loop in loops]
        for periodic in (self._preparing, self._cancelling):
            await periodic.start()
            assert periodic.task is not None
            self._tasks.append(periodic.task)  # one list: fencing and ``stop`` end every loop together

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        for periodic in (self._preparing, self._cancelling):
            await periodic.stop()  # already ended: only forgets its task, so ``start`` can run it again

    # -- loops -----------------------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        async with self.db.transaction() as session:
            await heartbeats.heartbeat(session, owner=self.owner, now=self.clock())

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            if await self._guard(self._fenced):
                return
            await self._guard(self._heartbeat)

    async def _fenced(self) -> bool:
        """Another process took this identity (a restart while this one still ran): stop every loop at once."""
        async with self.db.sessions() as session:
            current = await heartbeats.is_current_incarnation(session, owner=self.owner, started_at=self._started_at)
        if current:
            return False
        log.error("worker %s: another process started under this identity; this one stops", self.owner)
        self.superseded = True
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        return True

    async def _guard(self, step: Callable[[], Any]) -> Any:
        """Run one step of a loop; a failure is logged and retried next round, never kills the loop."""
        try:
            return await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker step failed; retrying")
            await asyncio.sleep(1.0)
            return None

    async def _prepare_round(self) -> bool:
        """Create the jobs of approved requests (an approval wakes this round); new jobs wake the submitters."""
        if await self._guard(self.prepare_once):
            self._wake.set()
        return False

    async def prepare_once(self) -> list[int]:
        """One round of job creation; returns the requests whose jobs this worker created (tests call it)."""
        return await prepare_approved(self.db, self.clock, on_piece=self._wake.set)

    async def _capacity_wait(self) -> None:
        if self.limiter is None:
            return
        wait = float(self.limiter.estimate_wait(Family.MACHINE_ACTIONS, 1))
        if wait > 0.01:
            await asyncio.sleep(min(wait, 5.0))

    async def _submitter(self, index: int) -> None:
        """Claim a batch, submit it concurrently (the limiter paces), store every result in one transaction."""
        while True:
            await self._capacity_wait()
            batch = await self._guard(self._claim_batch)
            if not batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.idle_wait_s * (1 + random.random()))
                continue
            # the batch is claimed by this live worker, so nobody else will take it over: a database error (a
            # restart, a failover) is waited out here, never dropped (dropped reads cancelled the batch's devices,
            # dropped stores stranded its jobs in ``submitting`` with their MDE actions already created)
            request_ids = {j.request_id for j in batch}
            records = await self._until_done(functools.partial(self._records, request_ids), "reading requests")
            known = await self._guard(functools.partial(find_own_actions, self.client, batch, records)) or {}
            attempts = (self.submitter.attempt(job, records.get(job.request_id), known) for job in batch)
            results = await asyncio.gather(*attempts)
            await self._until_done(functools.partial(self._store, list(results)), "storing results")

    async def _until_done(self, step: Callable[[], Awaitable[T]], what: str) -> T:
        """Retry a database step of a claimed batch until it succeeds; safe because each step is one
        transaction, and storing skips jobs this worker no longer owns."""
        delay = 0.5
        while True:
            try:
                return await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker: %s failed; retrying in %.1f s", what, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _claim_batch(self) -> list[Job]:
        async with self.db.transaction() as session:
            claimed = await jobs.claim_jobs(
                session,
                owner=self.owner,
                limit=self.config.batch_size,
                now=self.clock(),
                stale=timedelta(seconds=self.config.stale_s),
                is_postgres=self.db.is_postgres,
            )
            for request_id in sorted({j.request_id for j in claimed}):
                if await transition(session, request_id, RequestState.EXECUTING, now=self.clock()):
                    emit(session, request_id, EventKind.STATE, state=RequestState.EXECUTING.value)
            return claimed

    async def _records(self, request_ids: set[int]) -> dict[int, RequestRecord]:
        async with self.db.sessions() as session:
            rows = await session.scalars(select(RequestRecord).where(RequestRecord.id.in_(request_ids)))
            return {r.id: r for r in rows}

    async def _store(self, results: list[Result]) -> None:
        async with self.db.transaction() as session:
            late_cancel = await store_results(
                session,
                results,
                owner=self.owner,
                now=self.clock(),
                is_postgres=self.db.is_postgres,
                on_final=self._on_final,
            )
        if late_cancel:
            self.wake_cancels()

    async def _cancel_round(self) -> bool:
        """Cancel the actions of cancelled requests (a cancel command wakes this round); while a round settles
        jobs, the next one starts at once."""
        return bool(await self._guard(self.canceller.run_once))

    async def _poller(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_interval_s)
            await self._guard(self.poll_once)

    async def poll_once(self) -> int:
        """Fetch every submitted action's status; returns how many settled."""
        return await self.poller.poll_once()

    async def settle(self, request_ids: set[int] | None = None) -> None:
        """Release canaries, close finished requests, publish progress; learn cancels made elsewhere."""
        async with self.db.sessions() as session:
            ids = set(request_ids or ()) | set(await settle_store.active_request_ids(session))
            self.submitter.learn_withdrawn(await settle_store.cancelled_request_ids(session))
        for request_id in sorted(ids):
            async with self.db.transaction() as session:
                if await release_canary(session, request_id=request_id, now=self.clock()):
                    self.wake()
                if await finalize_if_done(session, request_id=request_id, now=self.clock()) is None:
                    await self.progress.maybe_emit(session, request_id)
                else:
                    self.progress.forget(request_id)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.config.housekeeping_s)
            await self._guard(self.settle)
            if self._on_tick is not None:
                await self._guard(self._on_tick)


__all__ = ["Worker", "WorkerConfig"]
