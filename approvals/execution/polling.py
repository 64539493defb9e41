"""Polling submitted actions to their final state with as few list calls as possible, and handing back what a
succeeded action returns (collect-file's download link) as a thread line."""

from __future__ import annotations

import collections
import contextlib
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select

from approvals.audit.service import audit
from approvals.db import Clock, Database
from approvals.execution import service as jobs
from approvals.execution.actions import CLOCK_SKEW
from approvals.execution.cancelling import NOT_CANCELLED
from approvals.execution.models import Job, JobState
from approvals.execution.storing import OnFinal, settle_jobs
from approvals.identity import SYSTEM
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.requests.models import DeviceState, RequestRecord
from approvals.verbs import ACTIONS, Verb
from mde.client import MdeClient
from mde.errors import MdeError, NotFound
from mde.models import MachineAction


class Poller:
    def __init__(
        self,
        db: Database,
        client: MdeClient,
        *,
        owner: str,
        clock: Clock,
        stale_s: float,
        action_timeout_s: float,
        on_final: OnFinal | None,
        settled: Callable[[set[int]], Awaitable[None]],
    ) -> None:
        self.db, self.client, self.owner, self.clock = db, client, owner, clock
        self.stale_s, self.action_timeout_s = stale_s, action_timeout_s
        self._on_final = on_final
        self._settled = settled
        #: recent action durations (for ETAs); bounded, a long-running worker must not grow
        self.action_seconds: collections.deque[float] = collections.deque(maxlen=200)

    async def poll_once(self) -> int:
        """Fetch every submitted action's status with as few list calls as possible; returns how many settled."""
        async with self.db.transaction() as session:
            pending = await jobs.submitted_jobs(
                session, owner=self.owner, now=self.clock(), stale=timedelta(seconds=self.stale_s)
            )
        if not pending:
            return 0
        by_id = await self._actions(pending)
        now = self.clock()
        finals: list[tuple[Job, DeviceState, str | None]] = []
        statuses: list[tuple[Job, DeviceState]] = []
        for job in pending:
            action = by_id.get(job.action_id or "")
            if action is None:
                continue
            age = (now - (job.submitted_at or now)).total_seconds()
            if action.status.is_final or age > self.action_timeout_s:
                outcome = DeviceState.of(action.status) if action.status.is_final else DeviceState.TIMED_OUT
                error = None if outcome is DeviceState.SUCCEEDED else _action_error(action, outcome)
                if job.error and job.error.startswith(NOT_CANCELLED):  # the summary says why, and how it ended
                    error = f"{job.error}; MDE then reported {outcome.value}"
                finals.append((job, outcome, error))
                self.action_seconds.append(age)
            elif action.status.value != job.mde_status:
                statuses.append((job, DeviceState.of(action.status)))
        if not finals and not statuses:
            return 0
        results = await self._results(
            [(job, by_id[job.action_id or ""]) for job, o, _e in finals if o is DeviceState.SUCCEEDED]
        )
        async with self.db.transaction() as session:
            live = await jobs.lock_owned(
                session,
                job_ids=[j.id for j in pending],
                owner=self.owner,
                state=JobState.SUBMITTED,
                is_postgres=self.db.is_postgres,
            )
            finals = [f for f in finals if f[0].id in live]
            statuses = [s for s in statuses if s[0].id in live]
            await settle_jobs(session, finals, now=now, on_final=self._on_final)
            await jobs.store_status(session, items=statuses, now=now)
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
        changed = {job.request_id for job, *_ in finals} | {job.request_id for job, _s in statuses}
        if changed:
            await self._settled(changed)
        return len(finals)

    async def _actions(self, pending: list[Job]) -> dict[str, MachineAction]:
        """One list call from the oldest submission on; a GET for any the list did not return."""
        oldest = min(j.submitted_at or self.clock() for j in pending)
        listed = await self.client.list_machine_actions(created_after=oldest - CLOCK_SKEW)
        by_id = {a.id: a for a in listed}
        for job in pending:
            if job.action_id and job.action_id not in by_id:
                with contextlib.suppress(NotFound):
                    by_id[job.action_id] = await self.client.get_machine_action(job.action_id)
        return by_id

    async def _results(self, succeeded: list[tuple[Job, MachineAction]]) -> list[tuple[Job, Verb, str]]:
        """What succeeded actions hand back (a verb's ``result``: collect-file's download link), as thread lines."""
        if not succeeded:
            return []
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(RequestRecord.id, RequestRecord.verb).where(
                    RequestRecord.id.in_({job.request_id for job, _a in succeeded})
                )
            )
            verbs = dict(rows.all())
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
