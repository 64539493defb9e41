"""The fault tests' chat platforms: the real Teams and Slack surfaces served over HTTP (helpers: support/faults)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.slack import SlackRig, slack_rig
from tests.support.teams import TeamsRig, connector_rig


@pytest.fixture
async def teams() -> AsyncIterator[TeamsRig]:
    """The real Teams surface on the project's web server, its Bot Connector a local mock (as in tests/bot/teams)."""
    async with connector_rig() as rig:
        yield rig


@pytest.fixture
async def slack() -> AsyncIterator[SlackRig]:
    """The real Slack surface (bolt) on the project's web server, Slack's Web API a local mock."""
    async with slack_rig() as rig:
        yield rig
