"""The worker: claims jobs, submits them through the rate-limited client, polls actions to a final state.

Crash safety: a job is ``submitting`` from the moment it is claimed until its MDE action id is stored.
If the worker dies in between, another worker (or this one after a restart) takes the job over once the
old worker's heartbeat is stale, and first looks in MDE for an action carrying this request's marker:
if one exists it is adopted, so a device is never actioned twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import random
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select

from approvals.audit.service import audit
from approvals.db import Clock, Database, utcnow
from approvals.execution import service as jobs
from approvals.execution.actions import MARKER, comment_for, marker, submit_device_action
from approvals.execution.adoption import find_own_actions
from approvals.execution.cancelling import NOT_CANCELLED, Canceller
from approvals.execution.indicators import run as indicator_job
from approvals.execution.models import Job, JobKind, JobState
from approvals.identity import SYSTEM
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.requests.models import DeviceState, RequestRecord
from approvals.requests.service import progress_for
from approvals.requests.states import RequestState, transition
from approvals.verbs import ACTIONS, Family, Verb
from mde.client import SEND_GATE, MdeClient
from mde.errors import ActionAlreadyPending, MdeError, NotFound, SubmissionWithdrawn
from mde.models import ActionStatus, MachineAction

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


@dataclass
class _Result:
    """What happened to one claimed job: an action to record, a final outcome, or a retry time."""

    job: Job
    record: RequestRecord | None
    action: MachineAction | None = None
    outcome: DeviceState | None = None
    error: str | None = None
    retry_at: datetime | None = None
    #: a line for the request's thread (an indicator job says what MDE now holds)
    note: str | None = None


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
        on_tick: Callable[[], Any] | None = None,
        on_final: jobs.OnFinal | None = None,
    ) -> None:
        self.db = db
        self.client = client
        self.config = config or WorkerConfig()
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.limiter = limiter
        self.clock = clock
        self._on_tick = on_tick
        #: run in the transaction that stores settled jobs (bot/engine.py: the containment register)
        self.on_final = on_final
        self._wake = asyncio.Event()
        self._started_at = self.clock()
        #: set when another process started under this worker's identity: this one stops claiming
        self.superseded = False
        self._tasks: list[asyncio.Task[None]] = []
        self._progress_sent: dict[int, tuple[int, int]] = {}
        self._progress_at: dict[int, float] = {}
        #: recent action durations (for ETAs); bounded, a long-running worker must not grow
        self._action_seconds: collections.deque[float] = collections.deque(maxlen=200)
        #: cancelled requests (id -> when learned): their submissions are withdrawn after the limiter's grant
        self._withdrawn: dict[int, float] = {}
        self._cancel_wake = asyncio.Event()
        self.canceller = Canceller(
            db,
            client,
            owner=self.owner,
            concurrency=self.config.concurrency,
            stale_s=self.config.stale_s,
            retry_s=self.config.retry_base_s,
            clock=clock,
            settled=self.settle,
            on_final=on_final,
        )

    # -- lifecycle -------------------------------------------------------------------------------------
    def wake(self) -> None:
        """New work was stored (approval, canary release): do not wait for the idle timer."""
        self._wake.set()

    def withdraw(self, request_id: int) -> None:
        """A cancel is starting: from now on no submission of this request leaves this process."""
        self._withdrawn[request_id] = asyncio.get_running_loop().time()

    def restore(self, request_id: int) -> None:
        """The cancel was refused (not allowed, already final): submissions go on."""
        self._withdrawn.pop(request_id, None)

    def wake_cancels(self) -> None:
        self._cancel_wake.set()

    async def start(self) -> None:
        self._started_at = self.clock()
        async with self.db.transaction() as session:
            handed = await jobs.begin_incarnation(session, self.owner, now=self._started_at)
        if handed:
            log.warning("worker %s restarted: adopting %d job(s) its previous run had claimed", self.owner, handed)
        loops = [self._submitter(i) for i in range(max(1, self.config.concurrency // self.config.batch_size))]
        loops += [self._poller(), self._housekeeping(), self._heartbeats(), self._cancels()]
        self._tasks = [asyncio.create_task(loop) for loop in loops]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    def mean_action_seconds(self) -> float | None:
        recent = list(self._action_seconds)
        return sum(recent) / len(recent) if recent else None

    # -- loops -----------------------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        async with self.db.transaction() as session:
            await jobs.heartbeat(session, self.owner, now=self.clock())

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            if await self._guard(self._fenced):
                return
            await self._guard(self._heartbeat)

    async def _fenced(self) -> bool:
        """Another process took this identity (a restart while this one still ran): stop every loop at once."""
        async with self.db.sessions() as session:
            current = await jobs.is_current_incarnation(session, self.owner, self._started_at)
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
            results = await asyncio.gather(*(self._attempt(job, records.get(job.request_id), known) for job in batch))
            await self._until_done(functools.partial(self._store, list(results)), "storing results")

    async def _until_done(self, step: Callable[[], Awaitable[T]], what: str) -> T:
        """Retry a database step of a claimed batch until it succeeds; safe because each step is one
        transaction, and ``_store`` skips jobs this worker no longer owns."""
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
                self.owner,
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

    async def _attempt(
        self, job: Job, record: RequestRecord | None, known: dict[int, MachineAction | None] | None = None
    ) -> _Result:
        """One job against MDE; never raises: every outcome becomes a ``_Result`` to store. ``known``: what one
        listing already said about jobs that may have their action (``adoption.find_own_actions``)."""
        if record is None or record.state == RequestState.CANCELLED.value:
            return _Result(job, record, outcome=DeviceState.CANCELLED, error="request cancelled before submission")
        try:
            if job.kind == JobKind.INDICATOR.value:
                note = await indicator_job(self.client, record)
                return _Result(job, record, outcome=DeviceState.SUCCEEDED, note=note)
            if job.kind == JobKind.TAG_CHUNK.value:
                params = record.params or {}
                tag_action = ACTIONS[record.verb].tag_action
                if tag_action is None:
                    raise ValueError(f"{record.verb} has no bulk tag call")
                await self.client.add_or_remove_tag_for_multiple_machines(
                    str(params.get("tag_value", "")), tag_action, list(job.machine_ids)
                )
                return _Result(job, record, outcome=DeviceState.SUCCEEDED)
            machine_id = job.machine_ids[0]
            action = None
            if known is not None and job.id in known:
                action = known[job.id]
            elif job.attempts > 1 or job.error:
                action = await self._find_own_action(record, machine_id)
            if action is None:
                comment = comment_for(record.id, record.reason, record.requester_label)
                SEND_GATE.set(functools.partial(self._may_send, record.id))
                try:
                    action = await submit_device_action(
                        self.client, record.verb, machine_id, comment, record.params or {}
                    )
                except ActionAlreadyPending:
                    action = await self._find_own_action(record, machine_id)
                    if action is None:
                        error = await self._race_lost(record, machine_id)
                        return _Result(job, record, outcome=DeviceState.SKIPPED, error=error)
            return _Result(job, record, action=action)
        except SubmissionWithdrawn:  # cancelled meanwhile; the request's stored state decides in _store
            return _Result(job, record, error="withdrawn: the request is being cancelled", retry_at=self.clock())
        except MdeError as exc:
            return self._failure(job, record, exc)
        except Exception as exc:  # a bug or a transport oddity: keep the job, try again later
            log.exception("job %s failed unexpectedly", job.id)
            return _Result(
                job,
                record,
                error=f"{type(exc).__name__}: {exc}",
                retry_at=self.clock() + timedelta(seconds=self.config.retry_base_s),
            )

    def _failure(self, job: Job, record: RequestRecord, exc: MdeError) -> _Result:
        if not exc.retryable or job.attempts >= self.config.max_attempts:
            return _Result(job, record, outcome=DeviceState.FAILED, error=str(exc))
        delay = getattr(exc, "retry_after", None) or min(
            self.config.retry_max_s, self.config.retry_base_s * 2 ** (job.attempts - 1)
        )
        delay *= 1 + random.random() * 0.2
        return _Result(job, record, error=str(exc), retry_at=self.clock() + timedelta(seconds=delay))

    def _learn_withdrawn(self, cancelled: set[int]) -> None:
        """Cancels committed by another replica; a request is forgotten once summarized (and a minute old,
        so a cancel still committing in this process is not forgotten early)."""
        now = asyncio.get_running_loop().time()
        for request_id in cancelled:
            self._withdrawn.setdefault(request_id, now)
        for request_id, since in list(self._withdrawn.items()):
            if request_id not in cancelled and now - since > 60:
                del self._withdrawn[request_id]

    def _may_send(self, request_id: int) -> bool:
        return request_id not in self._withdrawn

    async def _race_lost(self, record: RequestRecord, machine_id: str) -> str:
        """Another request (or person) got there first: say who, instead of reporting a failure."""
        actions = await self.client.list_machine_actions(machine_id=machine_id, type=ACTIONS[record.verb].action_type)
        other = next((a for a in actions if not a.status.is_final), None) or next(
            (a for a in actions if a.status == ActionStatus.SUCCEEDED), None
        )
        found = MARKER.search(other.requestor_comment or "") if other is not None else None
        if other is None:
            return "another action of this kind is already pending on the device; nothing was submitted"
        by = f"#{found.group(1)}" if found else f"{other.requestor or 'someone else'} (not through this bot)"
        done = other.status == ActionStatus.SUCCEEDED
        if record.verb == "isolate":
            return f"already isolated by {by}" if done else f"already being isolated by {by} (MDE action pending)"
        return f"the same action from {by} is already {'done' if done else 'pending'}; nothing was submitted"

    async def _find_own_action(self, record: RequestRecord, machine_id: str) -> MachineAction | None:
        """After a crash or an ambiguous failure: did this request already create the action?"""
        wanted = ACTIONS[record.verb].action_type
        tag = marker(record.id)
        actions = await self.client.list_machine_actions(machine_id=machine_id, type=wanted)
        for action in actions:
            if tag in (action.requestor_comment or "") and action.status != ActionStatus.CANCELLED:
                return action
        return None

    async def _store(self, results: list[_Result]) -> None:
        now = self.clock()
        late_cancel: list[int] = []
        async with self.db.transaction() as session:
            # writing first takes SQLite's write lock, so nothing commits between the reads below and our writes
            await jobs.heartbeat(session, self.owner, now=now)
            live = await jobs.lock_owned(
                session, [r.job.id for r in results], self.owner, JobState.SUBMITTING, is_postgres=self.db.is_postgres
            )
            # the request may have been cancelled while these calls were in flight: read its state now (on
            # PostgreSQL with a share lock, which waits for a cancel that is committing)
            query = select(RequestRecord.id, RequestRecord.state).where(
                RequestRecord.id.in_({r.job.request_id for r in results})
            )
            if self.db.is_postgres:
                query = query.with_for_update(read=True)
            states = dict((await session.execute(query)).all())
            submitted, finals, retries = [], [], []
            stopped: list[tuple[Job, DeviceState, str | None]] = []
            for result in results:
                if result.job.id not in live:
                    if result.action is not None:
                        log.warning(
                            "job %s was taken over; the adopter finds action %s", result.job.id, result.action.id
                        )
                    continue
                if result.action is not None:
                    submitted.append((result.job, result.action.id, DeviceState.of(result.action.status)))
                    audit(
                        session,
                        "action.submitted",
                        SYSTEM,
                        request_id=result.job.request_id,
                        verb=result.record.verb if result.record else None,
                        devices=list(result.job.machine_ids),
                        action_ids=[result.action.id],
                        outcome=result.action.status.value,
                    )
                    if states.get(result.job.request_id) == RequestState.CANCELLED.value:
                        late_cancel.append(result.job.id)
                elif states.get(result.job.request_id) == RequestState.CANCELLED.value and result.outcome in (
                    None,
                    DeviceState.CANCELLED,
                ):
                    stopped.append((result.job, DeviceState.CANCELLED, jobs.BEFORE_SUBMISSION))
                elif result.outcome is not None:
                    finals.append((result.job, result.outcome, result.error))
                    if result.note:
                        emit(session, result.job.request_id, EventKind.NOTE, text=result.note)
                        audit(
                            session,
                            "indicator.applied",
                            SYSTEM,
                            request_id=result.job.request_id,
                            verb=result.record.verb if result.record else None,
                            outcome=result.outcome,
                            text=result.note,
                        )
                else:
                    retries.append((result.job, result.retry_at or now, result.error or "retry"))
            await jobs.store_submitted(session, submitted, now)
            await jobs.store_final(session, finals, now, self.on_final)
            await jobs.store_final(session, stopped, now, self.on_final, announce=False)
            await jobs.store_retries(session, retries)
            await jobs.mark_cancelling(session, late_cancel, now=now)
        if late_cancel:
            self.wake_cancels()

    async def _cancels(self) -> None:
        """Cancel the actions of cancelled requests as soon as a cancel command stores them."""
        while True:
            self._cancel_wake.clear()
            settled = await self._guard(self.canceller.run_once)
            if not settled:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cancel_wake.wait(), self.config.housekeeping_s)

    async def _poller(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_interval_s)
            await self._guard(self.poll_once)

    async def poll_once(self) -> int:
        """Fetch every submitted action's status with as few list calls as possible; returns how many settled."""
        async with self.db.transaction() as session:
            pending = await jobs.submitted_jobs(
                session, self.owner, now=self.clock(), stale=timedelta(seconds=self.config.stale_s)
            )
        if not pending:
            return 0
        oldest = min(j.submitted_at or self.clock() for j in pending)
        listed = await self.client.list_machine_actions(created_after=oldest - timedelta(minutes=5))
        by_id = {a.id: a for a in listed}
        for job in pending:
            if job.action_id and job.action_id not in by_id:
                with contextlib.suppress(NotFound):
                    by_id[job.action_id] = await self.client.get_machine_action(job.action_id)
        now = self.clock()
        finals: list[tuple[Job, DeviceState, str | None]] = []
        statuses: list[tuple[Job, DeviceState]] = []
        for job in pending:
            action = by_id.get(job.action_id or "")
            if action is None:
                continue
            age = (now - (job.submitted_at or now)).total_seconds()
            if action.status.is_final or age > self.config.action_timeout_s:
                outcome = DeviceState.of(action.status) if action.status.is_final else DeviceState.TIMED_OUT
                error = None if outcome is DeviceState.SUCCEEDED else _action_error(action, outcome)
                if job.error and job.error.startswith(NOT_CANCELLED):  # the summary says why, and how it ended
                    error = f"{job.error}; MDE then reported {outcome.value}"
                finals.append((job, outcome, error))
                self._action_seconds.append(age)
            elif action.status.value != job.mde_status:
                statuses.append((job, DeviceState.of(action.status)))
        if not finals and not statuses:
            return 0
        results = await self._results(
            [(job, by_id[job.action_id or ""]) for job, o, _e in finals if o is DeviceState.SUCCEEDED]
        )
        async with self.db.transaction() as session:
            live = await jobs.lock_owned(
                session, [j.id for j in pending], self.owner, JobState.SUBMITTED, is_postgres=self.db.is_postgres
            )
            finals = [f for f in finals if f[0].id in live]
            statuses = [s for s in statuses if s[0].id in live]
            await jobs.store_final(session, finals, now, self.on_final)
            await jobs.store_status(session, statuses, now)
            for job, verb, line in results:
                if job.id in live:
                    emit(session, job.request_id, EventKind.NOTE, text=line)
                    audit(
                        session,
                        "action.result",
                        SYSTEM,
                        request_id=job.request_id,
                        verb=verb,
                        devices=list(job.machine_ids),
                        action_ids=[job.action_id] if job.action_id else [],
                        text=without_secrets(line),
                    )
        settled = len(finals)
        changed = {job.request_id for job, *_ in finals} | {job.request_id for job, _s in statuses}
        if changed:
            await self.settle(changed)
        return settled

    async def _results(self, succeeded: list[tuple[Job, MachineAction]]) -> list[tuple[Job, Verb, str]]:
        """What succeeded actions hand back (a verb's ``result``: collect-file's download link), as thread lines."""
        if not succeeded:
            return []
        async with self.db.sessions() as session:
            verbs = dict(
                (
                    await session.execute(
                        select(RequestRecord.id, RequestRecord.verb).where(
                            RequestRecord.id.in_({job.request_id for job, _a in succeeded})
                        )
                    )
                ).all()
            )
        out = []
        for job, action in succeeded:
            verb = verbs.get(job.request_id)
            spec = ACTIONS.get(verb) if verb is not None else None
            if verb is None or spec is None or spec.result is None:
                continue
            try:
                line = await spec.result(self.client, action)
            except MdeError as exc:
                line = (
                    f"{spec.label} succeeded on {action.computer_dns_name or action.machine_id}, but its result could "
                    f"not be fetched ({exc}); status on request #{job.request_id} tries again."
                )
            out.append((job, verb, line))
        return out

    async def settle(self, request_ids: set[int] | None = None) -> None:
        """Release canaries, close finished requests, publish progress; learn cancels made elsewhere."""
        async with self.db.sessions() as session:
            ids = set(request_ids or ()) | set(await jobs.active_request_ids(session))
            self._learn_withdrawn(await jobs.cancelled_request_ids(session))
        for request_id in sorted(ids):
            async with self.db.transaction() as session:
                if await jobs.release_canary(session, request_id, now=self.clock()):
                    self.wake()
                final = await jobs.finalize_if_done(session, request_id, now=self.clock())
                if final is None:
                    await self._maybe_progress(session, request_id)
                else:
                    self._progress_sent.pop(request_id, None)

    async def _maybe_progress(self, session: Any, request_id: int) -> None:
        view = await progress_for(session, request_id)
        key = (view.submitted, view.done)
        now = asyncio.get_running_loop().time()
        if self._progress_sent.get(request_id) == key:
            return
        if now - self._progress_at.get(request_id, 0.0) < self.config.progress_interval_s:
            return
        self._progress_sent[request_id], self._progress_at[request_id] = key, now
        emit(
            session,
            request_id,
            EventKind.PROGRESS,
            submitted=view.submitted,
            done=view.done,
            total=view.total,
            failed=view.failed,
        )

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.config.housekeeping_s)
            await self._guard(self.settle)
            if self._on_tick is not None:
                await self._guard(self._on_tick)


def without_secrets(text: str) -> str:
    """A download link's query string is its signature: the audit keeps where, never the key."""
    return _QUERY.sub(r"\1", text)


_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")


def _action_error(action: MachineAction, outcome: DeviceState) -> str:
    if outcome is DeviceState.TIMED_OUT:
        return "MDE timed out the action: the device did not come online in time; issue it again"
    if outcome is DeviceState.CANCELLED:
        return f"cancelled{' by ' + action.cancellation_requestor if action.cancellation_requestor else ''}"
    return f"MDE reported the action as {outcome}"


__all__ = ["Worker", "WorkerConfig"]
