"""The fault tests' chat platforms: the real Teams and Slack surfaces served over HTTP (helpers: support/faults)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from approvals.service import ChatOps
from bot.server import build_app, start_site
from bot.slack.surface import SlackSurface
from bot.surfaces.base import ChatSurface
from bot.teams.surface import TeamsSurface
from tests.support.mock_connector import MockConnector
from tests.support.mock_slack import MockSlack
from tests.support.slack import POLICY as SLACK_POLICY
from tests.support.slack import SECRET as SLACK_SECRET
from tests.support.slack import SlackRig
from tests.support.stack import Stack
from tests.support.teams import POLICY as TEAMS_POLICY
from tests.support.teams import TeamsRig


@pytest.fixture
async def teams() -> AsyncIterator[TeamsRig]:
    """The real Teams surface on the project's web server, its Bot Connector a local mock (as in tests/bot/teams)."""
    connector = MockConnector()
    await connector.start()
    surfaces: list[TeamsSurface] = []

    def make(chatops: ChatOps) -> list[ChatSurface]:
        surface = connector.surface(chatops)
        surfaces.append(surface)
        return [surface]

    try:
        async with Stack.start(make_surfaces=make, policy=TEAMS_POLICY) as stack:
            runner, port = await start_site(build_app(stack.db, surfaces), "127.0.0.1", 0)
            try:
                async with httpx.AsyncClient(timeout=15) as http:
                    yield TeamsRig(stack, connector, f"http://127.0.0.1:{port}", http)
            finally:
                await runner.cleanup()
    finally:
        await connector.stop()


@pytest.fixture
async def slack() -> AsyncIterator[SlackRig]:
    """The real Slack surface (bolt) on the project's web server, Slack's Web API a local mock."""
    mock = MockSlack()
    await mock.start()
    surfaces: list[SlackSurface] = []

    def make(chatops: ChatOps) -> list[ChatSurface]:
        surface = SlackSurface(
            chatops,
            bot_token="xoxb-test",
            signing_secret=SLACK_SECRET,
            api_url=mock.url + "/api/",
            update_interval_s=0.0,
        )
        surfaces.append(surface)
        return [surface]

    try:
        async with Stack.start(make_surfaces=make, policy=SLACK_POLICY) as stack:
            runner, port = await start_site(build_app(stack.db, surfaces), "127.0.0.1", 0)
            try:
                async with httpx.AsyncClient(timeout=15) as http:
                    yield SlackRig(stack, mock, f"http://127.0.0.1:{port}", http)
            finally:
                await runner.cleanup()
    finally:
        await mock.stop()
