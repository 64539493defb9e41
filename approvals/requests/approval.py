"""Deciding on a request: a person's approve or reject, and the unattended approvals (a notification rule the
policy lets act alone, a time-boxed isolation's pre-approved release).

What happens on approval is here, once, for all of them: the decision row, the state ``approved``, its event
and audit, in one transaction that writes nothing per device, so the click answers at once whatever the size
(issue 18); then, after the commit, ``on_approved`` (wired in ``approvals/service.py``: wake a worker, which
creates the jobs in the background, and activate a schedule request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.db import Clock, Database, utcnow
from approvals.errors import Verdict
from approvals.identity import SYSTEM, Actor
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.policy import Policy
from approvals.requests import service
from approvals.requests.models import Decision, RequestRecord
from approvals.requests.states import RequestState, transition
from approvals.verbs import Verb

#: after an approval committed, with the request's id
OnApproved = Callable[[int], Awaitable[None]]


class ApprovalFlows:
    def __init__(
        self, db: Database, policy: Policy, clock: Clock = utcnow, *, on_approved: OnApproved | None = None
    ) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        self._on_approved = on_approved

    async def _expire_if_due(self, session: AsyncSession, record: RequestRecord) -> bool:
        if record.state == RequestState.PENDING and record.expires_at and record.expires_at <= self.clock():
            if await transition(session, record.id, RequestState.EXPIRED, now=self.clock()):
                emit(session, record.id, EventKind.STATE, state=RequestState.EXPIRED.value)
                audit(session, "request.expired", SYSTEM, request_id=record.id, verb=record.verb)
            return True
        return False

    async def decide(
        self, actor: Actor, request_id: int, *, approve: bool, reason: str | None, break_glass: bool
    ) -> Verdict:
        async with self.db.transaction() as session:
            record = await service.lock_request(session, request_id=request_id, now=self.clock())
            if record is None:
                return Verdict(False, f"There is no request #{request_id}.")
            if await self._expire_if_due(session, record):
                return Verdict(False, f"Request #{request_id} expired before it was approved; ask again.")
            if record.state != RequestState.PENDING:
                label = RequestState(record.state).label.lower()
                return Verdict(False, f"Request #{request_id} is no longer waiting for approval ({label}).")
            decisions = await service.decisions_for(session, request_id)
            refusal = self._refusal(actor, record, decisions, approve, reason, break_glass)
            if refusal:
                audit(
                    session,
                    "decision.refused",
                    actor,
                    request_id=request_id,
                    verb=record.verb,
                    outcome="refused",
                    text=refusal,
                )
                return Verdict(False, refusal, request_id)
            try:
                async with session.begin_nested():
                    session.add(
                        Decision(
                            request_id=request_id,
                            actor_key=actor.key,
                            actor_label=actor.label(),
                            actor_email=actor.email,
                            approve=approve,
                            reason=reason,
                            break_glass=break_glass,
                            at=self.clock(),
                        )
                    )
            except IntegrityError:
                return Verdict(False, f"You already decided on request #{request_id}.", request_id)
            audit(
                session,
                "request.approved_by" if approve else "request.rejected_by",
                actor,
                request_id=request_id,
                verb=record.verb,
                text=reason,
                break_glass=break_glass,
            )
            if not approve:
                await transition(session, request_id, RequestState.REJECTED, now=self.clock(), outcome_note=reason)
                emit(session, request_id, EventKind.STATE, state=RequestState.REJECTED.value, by=actor.label())
                return Verdict(True, f"You rejected request #{request_id}.", request_id)
            approvals = sum(1 for d in decisions if d.approve) + 1
            if break_glass:
                record.break_glass_by = actor.key
            if approvals < record.required_approvals:
                emit(session, request_id, EventKind.DECISION, by=actor.label(), approvals=approvals)
                return Verdict(
                    True,
                    f"Approval recorded ({approvals} of {record.required_approvals}) for request #{request_id}.",
                    request_id,
                )
            moved = await self._approve(
                session, record, actor, include_protected=record.break_glass_by is not None, event="request.approved"
            )
            if not moved:
                return Verdict(False, f"Request #{request_id} was decided by someone else a moment ago.")
        await self._approved(request_id)
        follows = "execution is starting" if record.verb.runs_jobs else "the schedule change is applied"
        return Verdict(True, f"Request #{request_id} approved; {follows}.", request_id)

    async def _approve(
        self,
        session: AsyncSession,
        record: RequestRecord,
        actor: Actor,
        *,
        include_protected: bool,
        event: str,
        text: str | None = None,
    ) -> bool:
        """The approval itself: state ``approved``, its event and audit. Nothing per device: the click answers at
        once whatever the size, and a worker creates the jobs after the commit (``execution.preparing``)."""
        now = self.clock()
        values: dict[str, Any] = {"break_glass_by": record.break_glass_by} if include_protected else {}
        if not await transition(session, record.id, RequestState.APPROVED, now=now, approved_at=now, **values):
            return False
        emit(session, record.id, EventKind.STATE, state=RequestState.APPROVED.value, by=actor.label())
        extra: dict[str, Any] = {"break_glass": include_protected} if text is None else {"text": text}
        audit(session, event, actor, request_id=record.id, verb=record.verb, outcome="approved", **extra)
        return True

    async def _approved(self, request_id: int) -> None:
        """After the commit: what follows an approval (the jobs, a schedule's activation) is told once, here."""
        if self._on_approved is not None:
            await self._on_approved(request_id)

    async def auto_approve(self, request_id: int, rule: str) -> Verdict:
        """Approve on behalf of a notification rule, only if the policy lists it in ``auto_rules``.

        Protected devices are never included (break glass needs a person).
        """
        actor = Actor(platform="system", user_id=f"rule:{rule}", display_name=f"rule {rule} (auto)")
        return await self._approve_unattended(
            request_id,
            actor,
            "auto_rules in the policy",
            allowed=lambda record: self.policy.allows_auto(rule, record.verb),
        )

    async def approve_preapproved_release(self, request_id: int) -> Verdict:
        """A time-boxed isolation's release at its end, pre-approved when the isolation was requested
        (policy ``containment.release: auto_at_end``); only a release the bot proposed carries the mark."""
        actor = Actor(platform="system", user_id="timed-release", display_name="timed release (pre-approved)")
        return await self._approve_unattended(
            request_id,
            actor,
            "pre-approved at request time (containment.release: auto_at_end)",
            allowed=lambda record: (
                record.verb == Verb.UNISOLATE and bool((record.params or {}).get("release_preapproved"))
            ),
        )

    async def _approve_unattended(
        self, request_id: int, actor: Actor, why: str, *, allowed: Callable[[RequestRecord], bool]
    ) -> Verdict:
        """Approve without a person, audited as such. Protected devices are never included (break glass
        needs a person)."""
        async with self.db.transaction() as session:
            record = await service.lock_request(session, request_id=request_id, now=self.clock())
            if record is None or record.state != RequestState.PENDING:
                return Verdict(False, f"Request #{request_id} is not waiting for approval.")
            if not allowed(record):
                return Verdict(False, f"The policy does not let {actor.label()} {record.verb} without approval.")
            session.add(
                Decision(
                    request_id=request_id,
                    actor_key=f"auto:{actor.user_id}",
                    actor_label=actor.label(),
                    approve=True,
                    reason=why,
                    at=self.clock(),
                )
            )
            moved = await self._approve(
                session, record, actor, include_protected=False, event="request.auto_approved", text=why
            )
            if not moved:
                return Verdict(False, f"Request #{request_id} was decided by someone else a moment ago.")
        await self._approved(request_id)
        return Verdict(True, f"Request #{request_id} approved by {actor.label()}.", request_id)

    def _refusal(
        self,
        actor: Actor,
        record: RequestRecord,
        decisions: list[Decision],
        approve: bool,
        reason: str | None,
        break_glass: bool,
    ) -> str | None:
        if any(d.actor_key == actor.key for d in decisions):
            return f"You already decided on request #{record.id}."
        if not approve and not (reason and reason.strip()):
            return "A rejection needs a reason."
        if break_glass:
            if not (reason and reason.strip()):
                return "A break-glass approval needs a reason."
            if not self.policy.can_break_glass(actor):
                return "You do not hold the break-glass role, so you cannot approve protected devices."
        prior = {d.actor_key for d in decisions if d.approve}
        prior |= {f"email:{d.actor_email.lower()}" for d in decisions if d.approve and d.actor_email}
        decision = self.policy.can_approve(
            actor,
            verb=record.verb,
            requester_key=record.requester_key,
            requester_email=record.requester_email,
            surface=record.origin_surface,
            channel_id=record.origin_channel,
            already_approved_by=prior,
            touches_protected=record.touches_protected and approve,
            break_glass=break_glass,
        )
        if not decision.allowed:
            if not approve and actor.key == record.requester_key:
                return f"{decision.reason} To withdraw your own request, use: cancel {record.id}"
            return decision.reason
        return None
