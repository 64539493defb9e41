"""Microsoft Graph security API: advanced hunting, where MDE's own hunting API moved.

``POST {graph}/v1.0/security/runHuntingQuery`` with ``{"Query": …, "Timespan": …}``, application permission
``ThreatHunting.Read.All``, a token for ``{graph}/.default``; the answer is a ``huntingQueryResults``
(GR:api/security-security-runhuntingquery.md, GR:resources/security-huntingqueryresults.md). Its calls
spend their own budget (family ``graph_hunting``) and use their own token.
"""

from __future__ import annotations

from typing import Any

from mde.auth import TokenProvider
from mde.client import ApiClient
from mde.models import HuntingResult

RUN_HUNTING_QUERY = "/v1.0/security/runHuntingQuery"
#: "If a single request runs for more than three minutes, it times out" (GR:resources/security-api-overview.md)
HUNTING_TIMEOUT_S = 200.0


class GraphClient(ApiClient):
    def __init__(
        self, base_url: str, token_provider: TokenProvider, *, timeout: float = HUNTING_TIMEOUT_S, **kw: Any
    ) -> None:
        super().__init__(base_url, token_provider, timeout=timeout, **kw)

    async def run_hunting_query(self, query: str, *, timespan: str | None = None) -> HuntingResult:
        """``timespan``: ISO 8601 (``P7D``, ``start/end``…); Graph's default is the last 30 days."""
        body: dict[str, str] = {"Query": query}
        if timespan:
            body["Timespan"] = timespan
        data = await self._json("POST", RUN_HUNTING_QUERY, "graph_hunting", json=body)
        return HuntingResult.from_api(data or {})
