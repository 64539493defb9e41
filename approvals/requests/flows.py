"""Multi-step request flows: create, decide, cancel, expire. Each runs in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.db import Clock, Database, utcnow
from approvals.errors import Verdict
from approvals.execution.service import cancel_unsubmitted, enqueue_jobs
from approvals.identity import Actor, Origin
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.policy import Policy
from approvals.requests import service
from approvals.requests.models import Decision, RequestRecord
from approvals.requests.states import RequestState, transition
from approvals.resolution.flows import Resolution
from approvals.verbs import Verb


def announce_created(
    session: AsyncSession, record: RequestRecord, actor: Actor, origin: Origin, resolution: Resolution
) -> None:
    """In the creating transaction: the event that posts the card, and the audit row."""
    emit(session, record.id, EventKind.CREATED)
    audit(
        session,
        "request.created",
        actor,
        request_id=record.id,
        verb=record.verb,
        channel_id=origin.channel_id,
        surface=origin.surface,
        devices=[m.id for m in resolution.devices],
        text=record.reason,
        target=record.target_text,
        params=record.params,
        excluded=[{"name": e.name, "kind": e.kind, "reason": e.reason} for e in resolution.exclusions],
    )


class RequestFlows:
    def __init__(self, db: Database, policy: Policy, clock: Clock = utcnow) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock

    async def create(
        self,
        *,
        actor: Actor,
        origin: Origin,
        verb: Verb,
        params: dict[str, Any],
        reason: str | None,
        target_text: str,
        resolution: Resolution,
        canary: int | None,
        incident_id: str | None = None,
    ) -> RequestRecord:
        async with self.db.transaction() as session:
            return await self.create_in(
                session,
                actor=actor,
                origin=origin,
                verb=verb,
                params=params,
                reason=reason,
                target_text=target_text,
                resolution=resolution,
                canary=canary,
                incident_id=incident_id,
            )

    async def create_in(
        self,
        session: AsyncSession,
        *,
        actor: Actor,
        origin: Origin,
        verb: Verb,
        params: dict[str, Any],
        reason: str | None,
        target_text: str,
        resolution: Resolution,
        canary: int | None,
        incident_id: str | None = None,
    ) -> RequestRecord:
        """``create`` in the caller's transaction (a proposal that must commit with what claimed it)."""
        now = self.clock()
        count = len(resolution.devices)
        warnings = sorted({p.reason for p in resolution.protection.values() if p.level == "warn" and p.reason})
        warnings = resolution.caveats + warnings
        record = await service.insert_request(
            session,
            actor=actor,
            origin=origin,
            verb=verb,
            params=params,
            reason=reason,
            target_text=target_text,
            resolution=resolution,
            required_approvals=self.policy.required_approvals(verb, count),
            created_at=now,
            expires_at=now + self.policy.expiry_for(verb),
            canary=canary,
            incident_id=incident_id,
            warnings=warnings,
        )
        announce_created(session, record, actor, origin, resolution)
        return record

    async def _lock(self, session: AsyncSession, request_id: int) -> RequestRecord | None:
        """Take the request's row lock first (PostgreSQL row lock, SQLite write lock), then read it."""
        await session.execute(
            update(RequestRecord)
            .where(RequestRecord.id == request_id)
            .values(updated_at=self.clock())
            .execution_options(synchronize_session=False)
        )
        return await service.get_request(session, request_id)

    async def _expire_if_due(self, session: AsyncSession, record: RequestRecord) -> bool:
        if record.state == RequestState.PENDING and record.expires_at and record.expires_at <= self.clock():
            if await transition(session, record.id, RequestState.EXPIRED, now=self.clock()):
                emit(session, record.id, EventKind.STATE, state=RequestState.EXPIRED.value)
                audit(session, "request.expired", _system(), request_id=record.id, verb=record.verb)
            return True
        return False

    async def decide(
        self, actor: Actor, request_id: int, *, approve: bool, reason: str | None, break_glass: bool
    ) -> Verdict:
        async with self.db.transaction() as session:
            record = await self._lock(session, request_id)
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
            moved = await transition(
                session,
                request_id,
                RequestState.APPROVED,
                now=self.clock(),
                approved_at=self.clock(),
                break_glass_by=record.break_glass_by,
            )
            if not moved:
                return Verdict(False, f"Request #{request_id} was decided by someone else a moment ago.")
            include_protected = record.break_glass_by is not None
            await enqueue_jobs(session, record, include_protected=include_protected, now=self.clock())
            emit(session, request_id, EventKind.STATE, state=RequestState.APPROVED.value, by=actor.label())
            audit(
                session,
                "request.approved",
                actor,
                request_id=request_id,
                verb=record.verb,
                outcome="approved",
                break_glass=include_protected,
            )
            return Verdict(True, f"Request #{request_id} approved; execution is starting.", request_id)

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
                record.verb == "unisolate" and bool((record.params or {}).get("release_preapproved"))
            ),
        )

    async def _approve_unattended(
        self, request_id: int, actor: Actor, why: str, *, allowed: Callable[[RequestRecord], bool]
    ) -> Verdict:
        """Approve without a person, audited as such. Protected devices are never included (break glass
        needs a person)."""
        async with self.db.transaction() as session:
            record = await self._lock(session, request_id)
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
            moved = await transition(
                session, request_id, RequestState.APPROVED, now=self.clock(), approved_at=self.clock()
            )
            if not moved:
                return Verdict(False, f"Request #{request_id} was decided by someone else a moment ago.")
            await enqueue_jobs(session, record, include_protected=False, now=self.clock())
            emit(session, request_id, EventKind.STATE, state=RequestState.APPROVED.value, by=actor.label())
            audit(
                session,
                "request.auto_approved",
                actor,
                request_id=request_id,
                verb=record.verb,
                outcome="approved",
                text=why,
            )
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

    async def cancel(self, actor: Actor, request_id: int, reason: str | None) -> Verdict:
        """Cancel a request: nothing more is submitted, and its submitted actions go to the workers to cancel
        in MDE (newest first). No MDE call here: the command answers at once."""
        async with self.db.transaction() as session:
            record = await self._lock(session, request_id)
            if record is None:
                return Verdict(False, f"There is no request #{request_id}.")
            is_requester = actor.key == record.requester_key
            may = (
                is_requester
                or self.policy.can_approve(
                    actor,
                    verb=record.verb,
                    requester_key="",
                    requester_email=None,
                    surface=record.origin_surface,
                    channel_id=record.origin_channel,
                    already_approved_by=(),
                    touches_protected=False,
                    break_glass=False,
                ).allowed
            )
            if not may:
                return Verdict(False, "Only the requester or an approver for this action can cancel it.")
            if RequestState(record.state).is_final:
                label = RequestState(record.state).label.lower()
                return Verdict(False, f"Request #{request_id} has already finished ({label}).")
            if not await transition(session, request_id, RequestState.CANCELLED, now=self.clock(), outcome_note=reason):
                return Verdict(False, f"Request #{request_id} could not be cancelled in its current state.")
            stopped, to_cancel = await cancel_unsubmitted(session, request_id, now=self.clock())
            emit(session, request_id, EventKind.STATE, state=RequestState.CANCELLED.value, by=actor.label())
            text = cancel_sentence(stopped, to_cancel)
            emit(session, request_id, EventKind.NOTE, text=text)
            audit(
                session,
                "request.cancelled",
                actor,
                request_id=request_id,
                verb=record.verb,
                text=reason,
                stopped=stopped,
                to_cancel=to_cancel,
            )
        return Verdict(True, f"Request #{request_id} cancelled. {text}", request_id)

    async def expire_due(self) -> int:
        """Move every pending request past its expiry to expired; returns how many."""
        from sqlalchemy import select

        now = self.clock()
        async with self.db.transaction() as session:
            ids = list(
                await session.scalars(
                    select(RequestRecord.id).where(
                        RequestRecord.state == RequestState.PENDING.value, RequestRecord.expires_at <= now
                    )
                )
            )
            moved = 0
            for request_id in ids:
                if await transition(session, request_id, RequestState.EXPIRED, now=now):
                    emit(session, request_id, EventKind.STATE, state=RequestState.EXPIRED.value)
                    audit(session, "request.expired", _system(), request_id=request_id)
                    moved += 1
        return moved


def cancel_sentence(stopped: int, to_cancel: int) -> str:
    parts = [f"No more submissions: {stopped} device(s) not yet submitted were stopped."]
    if to_cancel:
        parts.append(
            f"Cancelling {to_cancel} submitted MDE action(s) in the background, newest first; the thread "
            "reports what really happened to each."
        )
    return " ".join(parts)


def _system() -> Actor:
    from approvals.identity import SYSTEM

    return SYSTEM
