"""Submitting one claimed job to MDE: the verb's call, adopting an action a crashed attempt already created,
and a cancel's withdrawal of submissions still waiting for budget.

Never raises: every outcome becomes a ``Result`` that ``execution.storing`` records in one transaction.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from approvals.db import Clock
from approvals.execution.actions import MARKER, comment_for, marker, submit_device_action
from approvals.execution.indicators import run as indicator_job
from approvals.execution.models import Job, JobKind
from approvals.requests.models import DeviceState, RequestRecord
from approvals.requests.states import RequestState
from approvals.verbs import ACTIONS, Verb
from mde.client import SEND_GATE, MdeClient
from mde.errors import ActionAlreadyPending, MdeError, SubmissionWithdrawn
from mde.models import ActionStatus, MachineAction

log = logging.getLogger(__name__)


@dataclass
class Result:
    """What happened to one claimed job: an action to record, a final outcome, or a retry time."""

    job: Job
    record: RequestRecord | None
    action: MachineAction | None = None
    outcome: DeviceState | None = None
    error: str | None = None
    retry_at: datetime | None = None
    #: a line for the request's thread (an indicator job says what MDE now holds)
    note: str | None = None


class Submitter:
    def __init__(self, client: MdeClient, *, clock: Clock, retry_base_s: float, retry_max_s: float, max_attempts: int):
        self.client = client
        self.clock = clock
        self.retry_base_s, self.retry_max_s, self.max_attempts = retry_base_s, retry_max_s, max_attempts
        #: cancelled requests (id -> when learned): their submissions are withdrawn after the limiter's grant
        self._withdrawn: dict[int, float] = {}

    # -- withdrawal: a cancel stops what waits for budget in this process ------------------------------------
    def withdraw(self, request_id: int) -> None:
        """A cancel is starting: from now on no submission of this request leaves this process."""
        self._withdrawn[request_id] = asyncio.get_running_loop().time()

    def restore(self, request_id: int) -> None:
        """The cancel was refused (not allowed, already final): submissions go on."""
        self._withdrawn.pop(request_id, None)

    def learn_withdrawn(self, cancelled: set[int]) -> None:
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

    # -- one job -------------------------------------------------------------------------------------------
    async def attempt(
        self, job: Job, record: RequestRecord | None, known: dict[int, MachineAction | None] | None = None
    ) -> Result:
        """One job against MDE; never raises. ``known``: what one listing already said about jobs that may have
        their action (``adoption.find_own_actions``)."""
        if record is None or record.state == RequestState.CANCELLED.value:
            return Result(job, record, outcome=DeviceState.CANCELLED, error="request cancelled before submission")
        try:
            return await self._submit(job, record, known or {})
        except SubmissionWithdrawn:  # cancelled meanwhile; the request's stored state decides when storing
            return Result(job, record, error="withdrawn: the request is being cancelled", retry_at=self.clock())
        except MdeError as exc:
            return self._failure(job, record, exc)
        except Exception as exc:  # a bug or a transport oddity: keep the job, try again later
            log.exception("job %s failed unexpectedly", job.id)
            return Result(
                job,
                record,
                error=f"{type(exc).__name__}: {exc}",
                retry_at=self.clock() + timedelta(seconds=self.retry_base_s),
            )

    async def _submit(self, job: Job, record: RequestRecord, known: dict[int, MachineAction | None]) -> Result:
        if job.kind == JobKind.INDICATOR.value:
            note = await indicator_job(self.client, record)
            return Result(job, record, outcome=DeviceState.SUCCEEDED, note=note)
        if job.kind == JobKind.TAG_CHUNK.value:
            params = record.params or {}
            tag_action = ACTIONS[record.verb].tag_action
            if tag_action is None:
                raise ValueError(f"{record.verb} has no bulk tag call")
            await self.client.add_or_remove_tag_for_multiple_machines(
                str(params.get("tag_value", "")), tag_action, list(job.machine_ids)
            )
            return Result(job, record, outcome=DeviceState.SUCCEEDED)
        machine_id = job.machine_ids[0]
        action = None
        if job.id in known:
            action = known[job.id]
        elif job.attempts > 1 or job.error:
            action = await self._find_own_action(record, machine_id)
        if action is None:
            comment = comment_for(record.id, record.reason, record.requester_label)
            SEND_GATE.set(functools.partial(self._may_send, record.id))
            try:
                action = await submit_device_action(self.client, record.verb, machine_id, comment, record.params or {})
            except ActionAlreadyPending:
                action = await self._find_own_action(record, machine_id)
                if action is None:
                    error = await self._race_lost(record, machine_id)
                    return Result(job, record, outcome=DeviceState.SKIPPED, error=error)
        return Result(job, record, action=action)

    def _failure(self, job: Job, record: RequestRecord, exc: MdeError) -> Result:
        if not exc.retryable or job.attempts >= self.max_attempts:
            return Result(job, record, outcome=DeviceState.FAILED, error=str(exc))
        delay = getattr(exc, "retry_after", None) or min(self.retry_max_s, self.retry_base_s * 2 ** (job.attempts - 1))
        delay *= 1 + random.random() * 0.2
        return Result(job, record, error=str(exc), retry_at=self.clock() + timedelta(seconds=delay))

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
        if record.verb == Verb.ISOLATE:
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
