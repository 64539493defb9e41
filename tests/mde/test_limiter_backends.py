"""Every backend is a whole ``LimiterBackend``: the limiter calls pause, aclose and clock on any of them."""

from __future__ import annotations

import asyncio
import time

import pytest

from mde.limiter_backends.base import LimiterBackend
from mde.limiter_backends.memory import MemoryBackend
from mde.limiter_backends.postgres import PostgresBackend
from mde.limiter_backends.redis import RedisBackend
from mde.ratelimit import RateLimiter

MEMBERS = ("clock", "try_acquire", "complete", "grants", "pause", "aclose")


@pytest.mark.parametrize("backend", [MemoryBackend, PostgresBackend, RedisBackend])
def test_each_backend_has_every_member_of_the_protocol(backend: type) -> None:
    declared = set(LimiterBackend.__annotations__) | {name for name in vars(LimiterBackend) if not name.startswith("_")}
    assert declared == set(MEMBERS)
    for name in MEMBERS:
        assert callable(getattr(backend, name)), name


class Recording(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.paused: list[tuple[str, float]] = []

    async def pause(self, family: str, until: float) -> None:
        self.paused.append((family, until))


async def test_a_429_hands_the_pause_to_the_backend() -> None:
    backend = Recording()
    limiter = RateLimiter(backend=backend, clock=backend.clock)
    before = time.monotonic()
    limiter.penalize("machine_actions", 2.0)
    await asyncio.sleep(0)
    [(family, until)] = backend.paused
    assert family == "machine_actions" and before + 2.0 <= until <= time.monotonic() + 2.0


async def test_the_memory_backend_pauses_only_its_own_limiter() -> None:
    backend = MemoryBackend()
    limiter = RateLimiter(backend=backend, clock=backend.clock)
    limiter.penalize("machine_actions", 1.0)
    await asyncio.sleep(0)
    assert limiter.estimate_wait("machine_actions", 1) > 0.5
    assert limiter.estimate_wait("machine_tags", 1) == 0.0
    await backend.aclose()
