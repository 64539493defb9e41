"""Teams sender -> Actor: Entra object id from the activity, UPN and e-mail from the Bot Connector roster.

The activity's ``from`` carries the Entra object id (``aadObjectId``) but not the UPN; one roster call
(``GET /v3/conversations/{id}/members/{user}``) gives it, cached for a few minutes per user.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.core.connector import ConnectorClientBase
from microsoft_agents.hosting.core.connector.teams import TeamsConnectorClient

from approvals.identity import Actor
from bot.teams.graph import GraphGroups

log = logging.getLogger(__name__)
TTL_S = 300.0


class TeamsDirectory:
    def __init__(self, ttl_s: float = TTL_S, groups: GraphGroups | None = None) -> None:
        self._ttl = ttl_s
        self._users: dict[str, tuple[float, Actor]] = {}
        self._groups = groups

    async def actor(self, context: TurnContext) -> Actor:
        sender = context.activity.from_property
        user_id = (sender.aad_object_id or sender.id) if sender else ""
        cached = self._users.get(user_id)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        name = (sender.name if sender else None) or user_id
        email: str | None = None
        connector = context.services.get(ConnectorClientBase)  # type: ignore[type-abstract]
        conversation = context.activity.conversation
        if connector is not None and conversation is not None and sender is not None and sender.id:
            try:
                if isinstance(connector, TeamsConnectorClient):
                    member: Any = await connector.get_conversation_member(conversation.id, sender.id)
                else:
                    member = await connector.conversations.get_conversation_member(conversation.id, sender.id)
                extra = member.model_dump(by_alias=True, exclude_none=True)
                email = extra.get("userPrincipalName") or extra.get("email")
                name = extra.get("name") or name
            except Exception as exc:  # the roster is a nicety: without it the actor is the object id
                log.warning("Teams roster lookup failed: %s", type(exc).__name__)
        groups = await self._groups.groups_of(user_id) if self._groups is not None else frozenset()
        actor = Actor(platform="teams", user_id=user_id, display_name=name, email=email, groups=groups)
        self._users[user_id] = (time.monotonic(), actor)
        return actor
