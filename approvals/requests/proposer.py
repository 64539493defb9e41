"""What the flows share whose chat command proposes a request without a device snapshot (schedules, indicators).

Both are built with the same things and file their request the same way: the requester's right to ask,
the policy's approvals and expiry for the verb, the card's lines stored as its warnings, the CREATED event
and the audit row in the same transaction, then delivery woken and the card handed back in the reply.
``ChatOps`` builds one ``Proposer`` and passes it to each, so that way is written once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approvals.db import Clock, Database, utcnow
from approvals.identity import Actor, Origin
from approvals.policy import Policy
from approvals.requests.flows import RequestFlows
from approvals.requests.models import RequestRecord
from approvals.resolution.flows import Resolution
from approvals.verbs import Verb
from approvals.views import Reply, RequestView
from mde.client import MdeClient


@dataclass(frozen=True, slots=True)
class Proposer:
    db: Database
    client: MdeClient
    policy: Policy
    #: the card of a stored request, as a reply carries it (``ChatOps.view``)
    view: Callable[[int], Awaitable[RequestView]] = field(repr=False)
    #: new events were stored: wake the delivery loops (``ChatOps.notify``)
    notify: Callable[[], None] = field(repr=False)
    #: stores and announces the request (``ChatOps.flows``), as for a request with devices
    flows: RequestFlows = field(repr=False)
    clock: Clock = utcnow

    def refusal(self, actor: Actor, origin: Origin, verb: Verb) -> Reply | None:
        """Why ``actor`` may not ask for ``verb`` here (the policy's requesters and channels), or None."""
        allowed = self.policy.can_request(actor, verb, surface=origin.surface, channel_id=origin.channel_id)
        return None if allowed.allowed else Reply(text=allowed.reason, error=True)

    async def insert(
        self,
        session: AsyncSession,
        actor: Actor,
        origin: Origin,
        *,
        verb: Verb,
        params: dict[str, Any],
        reason: str | None,
        target_text: str,
        lines: list[str],
        devices: int = 0,
        resolution: Resolution | None = None,
    ) -> RequestRecord:
        """Store the pending request and announce it, in the caller's transaction (``RequestFlows.create_in``);
        ``devices`` sets the policy's approval thresholds (what the preview found now)."""
        return await self.flows.create_in(
            session,
            actor=actor,
            origin=origin,
            verb=verb,
            params=params,
            reason=reason,
            target_text=target_text,
            resolution=resolution or Resolution(),
            canary=None,
            warnings=lines,
            devices=devices,
        )

    async def created(self, request_id: int, text: str) -> Reply:
        """After the commit: wake delivery (it posts the card in the channel) and answer the requester."""
        self.notify()
        return Reply(text=text, ephemeral=True, request=await self.view(request_id))
