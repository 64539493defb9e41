"""The small rule-per-device tenant (tests/support/resolution.py) served by the simulator, and the real client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mde.client import MdeClient
from mde.simulator import Simulator, SimulatorConfig
from tests.support.resolution import PENDING, machines


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """Actions finish at once, except on the device whose isolation stays pending."""
    config = SimulatorConfig(devices=0, action_pending_s=0, action_in_progress_s=0, stuck_machines=frozenset({PENDING}))
    async with Simulator(config) as simulator:
        for machine in machines():
            simulator.tenant.add(machine)
        yield simulator


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[MdeClient]:
    async with sim.connect() as mde:
        yield mde
