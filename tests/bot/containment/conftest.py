"""Both chat platforms served over HTTP, for the containment commands that must work the same on each."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.slack import SlackRig
from tests.support.slack import slack_rig as serve_slack
from tests.support.teams import TeamsRig, connector_rig


@pytest.fixture
async def slack_rig() -> AsyncIterator[SlackRig]:
    async with serve_slack() as rig:
        yield rig


@pytest.fixture
async def teams_rig() -> AsyncIterator[TeamsRig]:
    async with connector_rig() as rig:
        yield rig
