"""Entra group membership of a Teams user, from Microsoft Graph, so policies can name ``entra-group:<id>``.

Off by default: it needs the bot's app registration to hold the application permission
``GroupMember.Read.All`` (admin consent). The bot's own token is used (scope ``https://graph.microsoft.com/.default``).
A failure to read membership means *no groups* for that lookup: fewer rights, never more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)
GRAPH_URL = "https://graph.microsoft.com"
MAX_PAGES = 20  # 999 groups a page: a user in more than 19,980 groups is not a SOC analyst

TokenSource = Callable[[], Awaitable[str]]


class GraphGroups:
    def __init__(self, token: TokenSource, *, base_url: str = GRAPH_URL, timeout_s: float = 10.0) -> None:
        self._token = token
        self._base = base_url.rstrip("/")
        self._timeout = timeout_s

    async def groups_of(self, object_id: str) -> frozenset[str]:
        """Ids of every group the user is in, directly or through nested groups."""
        if not object_id:
            return frozenset()
        url: str | None = (
            f"{self._base}/v1.0/users/{quote(object_id, safe='')}/transitiveMemberOf/microsoft.graph.group"
            "?$select=id&$top=999"
        )
        found: set[str] = set()
        try:
            headers = {"Authorization": f"Bearer {await self._token()}"}
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                for _ in range(MAX_PAGES):
                    if url is None:
                        break
                    response = await http.get(url, headers=headers)
                    response.raise_for_status()
                    page = response.json()
                    found.update(str(g["id"]) for g in page.get("value", []) if isinstance(g, dict) and "id" in g)
                    next_link = page.get("@odata.nextLink")
                    url = next_link if isinstance(next_link, str) and next_link.startswith(self._base) else None
        except Exception as exc:  # fail closed: no groups, so no group-granted rights
            log.warning("Graph group lookup failed (%s); the user gets no group rights this time", type(exc).__name__)
            return frozenset()
        return frozenset(found)
