"""Slack over HTTP as Slack sends it: signed slash commands, button clicks and modal submissions into the real
bolt app on the project's web server, Slack's Web API a local mock; the policy the Slack tests run under."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from approvals.policy import Policy
from approvals.service import ChatOps
from bot.slack.enums import BlockId, InputId
from bot.slack.surface import SlackSurface
from bot.surfaces.base import ChatSurface
from tests.support.mock_slack import MockSlack
from tests.support.stack import Stack, served

SECRET = "test-signing-secret"
POLICY = Policy.from_dict(
    {
        "defaults": {
            "requesters": ["slack:UALICE"],
            "approvers": ["slack-group:S0SOC"],
            "thresholds": [{"above": 100, "approvals": 2}],
        }
    }
)


@dataclass
class SlackRig:
    stack: Stack
    slack: MockSlack
    url: str
    http: httpx.AsyncClient

    async def post(self, body: str, *, secret: str = SECRET, age_s: float = 0.0) -> httpx.Response:
        ts = str(int(time.time() - age_s))
        signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
        return await self.http.post(
            self.url + "/slack/events",
            content=body,
            headers={
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )

    def command(self, user: str, text: str) -> str:
        return urlencode(
            {
                "token": "x",
                "team_id": "T1",
                "channel_id": "CSOC",
                "channel_name": "soc",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/mde",
                "text": text,
                "response_url": f"{self.slack.url}/response/1",
                "trigger_id": "trig",
            }
        )

    def click(self, user: str, action_id: str, request_id: int, message_ts: str = "1700000000.000001") -> str:
        payload = {
            "type": "block_actions",
            "team": {"id": "T1"},
            "user": {"id": user, "team_id": "T1"},
            "api_app_id": "A1",
            "token": "x",
            "trigger_id": "trig",
            "channel": {"id": "CSOC"},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": "CSOC"},
            "message": {"ts": message_ts},
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": f"{BlockId.REQUEST}_{request_id}",
                    "value": str(request_id),
                    "type": "button",
                    "action_ts": "1",
                }
            ],
        }
        return urlencode({"payload": json.dumps(payload)})

    def modal(self, user: str, callback_id: str, request_id: int, reason: str) -> str:
        payload = {
            "type": "view_submission",
            "team": {"id": "T1"},
            "user": {"id": user, "team_id": "T1"},
            "api_app_id": "A1",
            "token": "x",
            "trigger_id": "trig",
            "view": {
                "id": "V1",
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": str(request_id),
                "state": {"values": {BlockId.REASON: {InputId.REASON: {"type": "plain_text_input", "value": reason}}}},
            },
        }
        return urlencode({"payload": json.dumps(payload)})


@asynccontextmanager
async def slack_rig() -> AsyncIterator[SlackRig]:
    """The stack with the real Slack surface, served on loopback (what the ``rig`` fixtures yield)."""
    slack = MockSlack()
    await slack.start()

    def make(chatops: ChatOps) -> list[ChatSurface]:
        surface = SlackSurface(
            chatops,
            bot_token="xoxb-test",
            signing_secret=SECRET,
            api_url=slack.url + "/api/",
            update_interval_s=0.0,
        )
        return [surface]

    try:
        async with served(make, policy=POLICY) as (stack, url, http):
            yield SlackRig(stack, slack, url, http)
    finally:
        await slack.stop()
