"""The simulator on loopback and the real client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mde.client import MdeClient
from mde.ratelimit import RateLimiter
from mde.retry import RetryPolicy
from mde.simulator import Simulator, SimulatorConfig


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(devices=300, time_scale=60)


@pytest.fixture
async def sim(sim_config: SimulatorConfig) -> AsyncIterator[Simulator]:
    async with Simulator(sim_config) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[MdeClient]:
    limiter = RateLimiter(time_scale=sim.config.time_scale)
    async with sim.connect(limiter=limiter, retry=RetryPolicy(base_s=0.01, cap_s=0.05)) as mde:
        yield mde
