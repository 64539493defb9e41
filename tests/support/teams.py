"""Teams over HTTP as the Bot Framework sends it: activities with signed tokens into the real Teams surface on the
project's web server, a local Bot Connector capturing replies and card updates; the policy the Teams tests run under."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from approvals.policy import Policy
from bot.server import build_app, start_site
from bot.teams.surface import TeamsSurface
from tests.support.mock_connector import MockConnector, Sent
from tests.support.stack import Stack

POLICY = Policy.from_dict(
    {
        "defaults": {
            "requesters": ["email:alice@contoso.com", "email:bob@contoso.com"],
            "approvers": ["email:bob@contoso.com", "email:carol@contoso.com", "email:alice@contoso.com"],
        }
    }
)


@dataclass
class TeamsRig:
    stack: Stack
    connector: MockConnector
    url: str
    http: httpx.AsyncClient

    async def post(self, activity: dict[str, Any], token: str | None = "valid") -> httpx.Response:
        headers = {}
        if token == "valid":
            headers["Authorization"] = f"Bearer {self.connector.token()}"
        elif token is not None:
            headers["Authorization"] = token
        return await self.http.post(self.url + "/api/messages", json=activity, headers=headers)

    async def card_for_new_request(self) -> tuple[int, Sent]:
        return await self.connector.new_request_card()


@asynccontextmanager
async def connector_rig() -> AsyncIterator[TeamsRig]:
    """The stack with the real Teams surface, served on loopback (what the ``rig`` fixtures yield)."""
    connector = MockConnector()
    await connector.start()
    surfaces: list[TeamsSurface] = []

    def make(chatops):  # type: ignore[no-untyped-def]
        surfaces.append(connector.surface(chatops))
        return surfaces

    async with Stack.start(make_surfaces=make, policy=POLICY) as stack:
        app = build_app(stack.db, surfaces)
        runner, port = await start_site(app, "127.0.0.1", 0)
        async with httpx.AsyncClient(timeout=15) as http:
            yield TeamsRig(stack, connector, f"http://127.0.0.1:{port}", http)
        await runner.cleanup()
    await connector.stop()
