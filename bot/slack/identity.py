"""Slack user id -> Actor, with e-mail (users.info) and user-group membership, cached for a few minutes."""

from __future__ import annotations

import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from approvals.identity import Actor

TTL_S = 300.0


class SlackDirectory:
    def __init__(self, client: AsyncWebClient, ttl_s: float = TTL_S) -> None:
        self._client = client
        self._ttl = ttl_s
        self._users: dict[str, tuple[float, Actor]] = {}
        self._groups: tuple[float, dict[str, set[str]]] | None = None

    async def _group_members(self) -> dict[str, set[str]]:
        if self._groups is None or time.monotonic() - self._groups[0] > self._ttl:
            members: dict[str, set[str]] = {}
            try:
                response = await self._client.usergroups_list(include_users=True)
                for group in response.get("usergroups") or []:
                    members[str(group["id"])] = set(group.get("users") or [])
            except SlackApiError:
                members = {}  # without usergroups:read, group principals simply match nobody
            self._groups = (time.monotonic(), members)
        return self._groups[1]

    async def actor(self, user_id: str, fallback_name: str = "") -> Actor:
        cached = self._users.get(user_id)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        name, email = fallback_name or user_id, None
        try:
            info: Any = await self._client.users_info(user=user_id)
            user = info.get("user") or {}
            profile = user.get("profile") or {}
            name = profile.get("display_name") or user.get("real_name") or user.get("name") or name
            email = profile.get("email")
        except SlackApiError:
            pass  # without users:read.email the actor is still identified by user id
        groups = frozenset(g for g, users in (await self._group_members()).items() if user_id in users)
        actor = Actor(platform="slack", user_id=user_id, display_name=name, email=email, groups=groups)
        self._users[user_id] = (time.monotonic(), actor)
        return actor
