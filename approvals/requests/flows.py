"""Multi-step request flows: create, cancel, expire. Each runs in one transaction; deciding is in
``requests.approval``.

Execution imports requests, never the reverse: what a cancel must stop in execution comes in as ``stop_jobs``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from approvals.audit.service import audit
from approvals.db import Clock, Database, utcnow
from approvals.errors import Verdict
from approvals.identity import Actor, Origin
from approvals.outbox.models import EventKind
from approvals.outbox.service import emit
from approvals.policy import Policy
from approvals.requests import service
from approvals.requests.models import RequestRecord
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


class StopJobs(Protocol):
    """In a cancel's transaction: stop the request's unsubmitted work (``execution.cancels.cancel_unsubmitted``);
    returns (stopped before submission, MDE actions to cancel)."""

    async def __call__(self, session: AsyncSession, *, request_id: int, now: datetime) -> tuple[int, int]: ...


class RequestFlows:
    def __init__(
        self,
        db: Database,
        policy: Policy,
        clock: Clock = utcnow,
        *,
        stop_jobs: StopJobs,
    ) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        self._stop_jobs = stop_jobs

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
        warnings: list[str] | None = None,
        devices: int | None = None,
    ) -> RequestRecord:
        """``create`` in the caller's transaction (a proposal that must commit with what claimed it).
        A request without a device snapshot (``Proposer``) brings its card's lines as ``warnings`` and the
        count its approval thresholds go by as ``devices``; otherwise both come from the resolution."""
        now = self.clock()
        count = len(resolution.devices) if devices is None else devices
        if warnings is None:
            protection = sorted({p.reason for p in resolution.protection.values() if p.level == "warn" and p.reason})
            warnings = resolution.caveats + protection
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

    async def cancel(self, actor: Actor, request_id: int, reason: str | None) -> Verdict:
        """Cancel a request: nothing more is submitted, and its submitted actions go to the workers to cancel
        in MDE (newest first). No MDE call here: the command answers at once."""
        async with self.db.transaction() as session:
            record = await service.lock_request(session, request_id=request_id, now=self.clock())
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
            stopped, to_cancel = await self._stop_jobs(session, request_id=request_id, now=self.clock())
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
