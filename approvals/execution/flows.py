"""The worker: claims jobs, submits them through the rate-limited client, polls actions to a final state.

Crash safety: a job is ``submitting`` from the moment it is claimed until its MDE action id is stored.
If the worker dies in between, another worker (or this one after a restart) takes the job over once the
old worker's heartbeat is stale, and first looks in MDE for an action carrying this request's marker:
if one exists it is adopted, so a device is never actioned twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from approvals.db import Database, utcnow
from approvals.execution import service as jobs
from approvals.execution.actions import (
    ACTION_TYPES,
    FAMILY,
    TAG_VERBS,
    comment_for,
    marker,
    submit_device_action,
)
from approvals.execution.models import Job, JobKind
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.requests.models import RequestRecord
from approvals.requests.service import progress_for
from approvals.requests.states import RequestState, transition
from mde.client import MdeClient
from mde.errors import ActionAlreadyPending, MdeError, NotFound
from mde.models import ActionStatus, MachineAction

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass
class WorkerConfig:
    concurrency: int = 16
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
        on_tick: Callable[[], Any] | None = None,
    ) -> None:
        self.db = db
        self.client = client
        self.config = config or WorkerConfig()
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.limiter = limiter
        self.clock = clock
        self._on_tick = on_tick
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._progress_sent: dict[int, tuple[int, int]] = {}
        self._progress_at: dict[int, float] = {}
        self._action_seconds: list[float] = []

    # -- lifecycle -------------------------------------------------------------------------------------
    def wake(self) -> None:
        """New work was stored (approval, canary release): do not wait for the idle timer."""
        self._wake.set()

    async def start(self) -> None:
        await self._heartbeat()
        loops = [self._submitter(i) for i in range(self.config.concurrency)]
        loops += [self._poller(), self._housekeeping(), self._heartbeats()]
        self._tasks = [asyncio.create_task(loop) for loop in loops]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    def mean_action_seconds(self) -> float | None:
        recent = self._action_seconds[-200:]
        return sum(recent) / len(recent) if recent else None

    # -- loops -----------------------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        async with self.db.transaction() as session:
            await jobs.heartbeat(session, self.owner, now=self.clock())

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            await self._guard(self._heartbeat)

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
        wait = float(self.limiter.estimate_wait("machine_actions", 1))
        if wait > 0.01:
            await asyncio.sleep(min(wait, 5.0))

    async def _submitter(self, index: int) -> None:
        while True:
            await self._capacity_wait()
            claimed = await self._guard(self._claim_one)
            if not claimed:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.idle_wait_s * (1 + random.random()))
                continue
            job: Job = claimed
            await self._guard(functools.partial(self._process, job))

    async def _claim_one(self) -> Job | None:
        async with self.db.transaction() as session:
            claimed = await jobs.claim_jobs(
                session,
                self.owner,
                limit=1,
                now=self.clock(),
                stale=timedelta(seconds=self.config.stale_s),
                is_postgres=self.db.is_postgres,
            )
            if not claimed:
                return None
            job = claimed[0]
            if await transition(session, job.request_id, RequestState.EXECUTING, now=self.clock()):
                emit(session, job.request_id, EventKind.STATE, state=RequestState.EXECUTING.value)
            return job

    async def _request(self, request_id: int) -> RequestRecord | None:
        async with self.db.sessions() as session:
            return await session.get(RequestRecord, request_id)

    async def _process(self, job: Job) -> None:
        record = await self._request(job.request_id)
        if record is None:
            return
        if record.state == RequestState.CANCELLED.value:
            async with self.db.transaction() as session:
                fresh = await session.get(Job, job.id)
                if fresh is not None:
                    await jobs.record_final(
                        session,
                        fresh,
                        outcome="Cancelled",
                        now=self.clock(),
                        error="request cancelled before submission",
                    )
            return
        if job.kind == JobKind.TAG_CHUNK.value:
            await self._process_tags(job, record)
        else:
            await self._process_device(job, record)

    async def _process_tags(self, job: Job, record: RequestRecord) -> None:
        params = record.params or {}
        try:
            await self.client.add_or_remove_tag_for_multiple_machines(
                str(params.get("tag_value", "")), TAG_VERBS[record.verb], list(job.machine_ids)
            )
        except MdeError as exc:
            await self._failed_attempt(job, exc)
            return
        async with self.db.transaction() as session:
            fresh = await session.get(Job, job.id)
            if fresh is not None:
                await jobs.record_final(session, fresh, outcome="Succeeded", now=self.clock())

    async def _find_own_action(self, record: RequestRecord, machine_id: str) -> MachineAction | None:
        """After a crash or an ambiguous failure: did this request already create the action?"""
        wanted = ACTION_TYPES[record.verb]
        tag = marker(record.id)
        actions = await self.client.list_machine_actions(machine_id=machine_id, type=wanted)
        for action in actions:
            if tag in (action.requestor_comment or "") and action.status != ActionStatus.CANCELLED:
                return action
        return None

    async def _process_device(self, job: Job, record: RequestRecord) -> None:
        machine_id = job.machine_ids[0]
        try:
            action = None
            if job.attempts > 1 or job.error:
                action = await self._find_own_action(record, machine_id)
            if action is None:
                comment = comment_for(record.id, record.reason, record.requester_label)
                try:
                    action = await submit_device_action(
                        self.client, record.verb, machine_id, comment, record.params or {}
                    )
                except ActionAlreadyPending:
                    action = await self._find_own_action(record, machine_id)
                    if action is None:
                        await self._final(
                            job,
                            "Failed",
                            "another action of this kind is already pending on the "
                            "device (not from this request); nothing was submitted",
                        )
                        return
        except MdeError as exc:
            await self._failed_attempt(job, exc)
            return
        async with self.db.transaction() as session:
            stored = await jobs.record_submitted(
                session, job.id, self.owner, action_id=action.id, status=action.status.value, now=self.clock()
            )
            if stored is not None:
                from approvals.audit.service import audit
                from approvals.identity import SYSTEM

                audit(
                    session,
                    "action.submitted",
                    SYSTEM,
                    request_id=record.id,
                    verb=record.verb,
                    devices=[machine_id],
                    action_ids=[action.id],
                    outcome=action.status.value,
                )
        if stored is None:
            log.warning("job %s was taken over while submitting; the adopter will find action %s", job.id, action.id)
            return
        latest = await self._request(record.id)
        if latest is not None and latest.state == RequestState.CANCELLED.value:
            await self._cancel_actions([action.id], "request cancelled")

    async def _final(self, job: Job, outcome: str, error: str | None) -> None:
        async with self.db.transaction() as session:
            fresh = await session.get(Job, job.id)
            if fresh is not None:
                await jobs.record_final(session, fresh, outcome=outcome, now=self.clock(), error=error)

    async def _failed_attempt(self, job: Job, exc: MdeError) -> None:
        if not exc.retryable or job.attempts >= self.config.max_attempts:
            await self._final(job, "Failed", str(exc))
            return
        delay = getattr(exc, "retry_after", None) or min(
            self.config.retry_max_s, self.config.retry_base_s * 2 ** (job.attempts - 1)
        )
        delay *= 1 + random.random() * 0.2
        async with self.db.transaction() as session:
            fresh = await session.get(Job, job.id)
            if fresh is not None:
                await jobs.requeue(session, fresh, at=self.clock() + timedelta(seconds=delay), error=str(exc))

    async def _cancel_actions(self, action_ids: list[str], comment: str) -> int:
        cancelled = 0
        for action_id in action_ids:
            try:
                await self.client.cancel_machine_action(action_id, comment=comment)
                cancelled += 1
            except MdeError as exc:
                log.info("could not cancel action %s: %s", action_id, exc)
        return cancelled

    async def cancel_actions(self, action_ids: list[str], comment: str) -> int:
        return await self._cancel_actions(action_ids, comment)

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
        settled = 0
        changed: set[int] = set()
        for job in pending:
            action = by_id.get(job.action_id or "")
            if action is None:
                try:
                    action = await self.client.get_machine_action(job.action_id or "")
                except NotFound:
                    continue
            age = (self.clock() - (job.submitted_at or self.clock())).total_seconds()
            if action.status.is_final or age > self.config.action_timeout_s:
                outcome = action.status.value if action.status.is_final else "TimeOut"
                error = None if outcome == "Succeeded" else _action_error(action, outcome)
                async with self.db.transaction() as session:
                    fresh = await session.get(Job, job.id)
                    if fresh is not None and fresh.state == "submitted":
                        await jobs.record_final(session, fresh, outcome=outcome, now=self.clock(), error=error)
                        settled += 1
                        changed.add(job.request_id)
                        self._action_seconds.append(age)
            elif action.status.value != job.mde_status:
                async with self.db.transaction() as session:
                    fresh = await session.get(Job, job.id)
                    if fresh is not None and fresh.state == "submitted":
                        fresh.mde_status = action.status.value
                        await jobs.set_devices(session, fresh, state=action.status.value, now=self.clock())
                        changed.add(job.request_id)
        if changed:
            await self.settle(changed)
        return settled

    async def settle(self, request_ids: set[int] | None = None) -> None:
        """Release canaries, close finished requests, publish progress."""
        async with self.db.sessions() as session:
            ids = set(request_ids or ()) | set(await jobs.active_request_ids(session))
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


def _action_error(action: MachineAction, outcome: str) -> str:
    if outcome == "TimeOut":
        return "MDE timed out the action: the device did not come online in time; issue it again"
    if outcome == "Cancelled":
        return f"cancelled{' by ' + action.cancellation_requestor if action.cancellation_requestor else ''}"
    return f"MDE reported the action as {outcome}"


__all__ = ["FAMILY", "Worker", "WorkerConfig"]
