"""Teams over HTTP as the Bot Framework sends it: activities with signed tokens into the real Teams surface on the
project's web server, a local Bot Connector capturing replies and card updates; the policy the Teams tests run under."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from approvals.policy import Policy
from approvals.service import ChatOps
from bot.surfaces.base import ChatSurface
from tests.support.mock_connector import MockConnector, Sent
from tests.support.stack import Stack, served

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

    def make(chatops: ChatOps) -> list[ChatSurface]:
        return [connector.surface(chatops)]

    try:
        async with served(make, policy=POLICY) as (stack, url, http):
            yield TeamsRig(stack, connector, url, http)
    finally:
        await connector.stop()
