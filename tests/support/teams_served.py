"""Teams as ``mde-chatops serve`` builds it from settings, attacked from outside: a rig that posts activities with
any token (Teams channel tokens, Entra tokens requested by another app) to a surface whose Bot Connector is local."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from approvals.policy import Policy
from tests.support.mock_connector import TENANT_ID, MockConnector
from tests.support.stack import Stack, served_from_settings

POLICY = Policy.from_dict(
    {
        "defaults": {
            "requesters": ["email:alice@contoso.com", "*"],
            "approvers": ["email:bob@contoso.com", "teams:aad-bob", "*"],
        }
    }
)
OTHER_APP = "99999999-aaaa-bbbb-cccc-000000000001"
ENTRA_V2 = f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"
#: what the Bot Framework's real signing keys are endorsed for: every channel, not only Teams
ALL_CHANNELS = ["msteams", "webchat", "directline", "emulator", "slack", "skype"]


@dataclass
class Rig:
    stack: Stack
    connector: MockConnector
    url: str
    http: httpx.AsyncClient

    async def post(self, activity: dict[str, Any], token: str) -> httpx.Response:
        return await self.http.post(
            self.url + "/api/messages", json=activity, headers={"Authorization": f"Bearer {token}"}
        )

    def entra_token(self, **claims: Any) -> str:
        """An Entra-issued token for the bot's app id, requested by ``OTHER_APP`` (no ``serviceurl``)."""
        claims.setdefault("iss", ENTRA_V2)
        claims.setdefault("azp", OTHER_APP)
        claims.setdefault("tid", TENANT_ID)
        claims.setdefault("ver", "2.0")
        return self.connector.token(serviceurl=None, **claims)

    async def pending_request(self) -> int:
        """A request Alice made through Teams, waiting for an approver."""
        answer = await self.post(
            self.connector.message("alice", "scan device:ws-0005 --reason r"), self.connector.token()
        )
        assert answer.status_code in (200, 201, 202)
        request_id, _sent = await self.connector.new_request_card()
        await self.stack.wait_for_state(request_id, {"pending"})
        return request_id


@asynccontextmanager
async def teams_rig(**settings: Any) -> AsyncIterator[Rig]:
    connector = MockConnector()
    await connector.start()
    connector.endorsements = ALL_CHANNELS
    values = connector.settings(
        # Entra's keys, if the bot were to trust Entra-issued tokens at all
        teams_entra_metadata_url=connector.metadata_url,
        **settings,
    )

    try:
        async with served_from_settings(values, policy=POLICY) as (stack, url, http):
            yield Rig(stack, connector, url, http)
    finally:
        await connector.stop()
