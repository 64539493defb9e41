"""The limiter: exact sliding-window math with a fake clock, and zero 429s against the simulator."""

from __future__ import annotations

import asyncio

import pytest

from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.ratelimit import Grant, RateLimiter
from mde.simulator import Simulator, SimulatorConfig
from tests.support.simulator import calls


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Answered(RateLimiter):
    """Completes every call the moment it is granted, as an instant MDE would."""

    async def acquire(self, family: str) -> Grant:  # type: ignore[override]
        grant = await super().acquire(family)
        await self.complete(grant)
        return grant


def limiter(clock: FakeClock, **kw: object) -> RateLimiter:
    return Answered(clock=clock, sleep=clock.sleep, margin_s=0.0, **kw)  # type: ignore[arg-type]


async def test_minute_window_grants_100_then_waits_for_the_oldest() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    for _ in range(100):
        assert (await lim.acquire("machine_actions")).waited == 0.0
    grant = await lim.acquire("machine_actions")
    assert grant.waited == pytest.approx(60.0)


async def test_hour_window_caps_at_1500() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    for _ in range(1500):
        await lim.acquire("machine_actions")
    assert clock.now - 1000.0 == pytest.approx(14 * 60.0)  # 15 minute-windows of 100
    start = clock.now
    await lim.acquire("machine_actions")
    assert clock.now == pytest.approx(1000.0 + 3600.0)  # the first grant must leave the hour
    assert clock.now > start


async def test_families_have_separate_budgets_and_hunting_is_45() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    for _ in range(45):
        await lim.acquire("advanced_queries")
    for _ in range(100):
        await lim.acquire("machines_read")
    assert clock.slept == []
    await lim.acquire("advanced_queries")
    assert clock.slept == [pytest.approx(60.0)]


async def test_time_scale_divides_the_windows() -> None:
    clock = FakeClock()
    lim = limiter(clock, time_scale=60)
    for _ in range(101):
        await lim.acquire("machine_tags")
    assert clock.slept == [pytest.approx(1.0)]


async def test_estimate_matches_what_acquire_does() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    for _ in range(30):
        await lim.acquire("machine_actions")
    estimate = lim.estimate_wait("machine_actions", 250)
    start = clock.now
    for _ in range(250):
        await lim.acquire("machine_actions")
    assert clock.now - start == pytest.approx(estimate)


async def test_a_slow_answer_moves_its_grant_later() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    first = await RateLimiter.acquire(lim, "machine_actions")
    clock.now += 0.5  # its answer took half a second: MDE may have counted it that late
    await lim.complete(first)
    clock.now += 0.5
    for _ in range(99):
        await lim.acquire("machine_actions")
    await lim.acquire("machine_actions")
    assert clock.now == pytest.approx(1000.0 + 0.5 + 60.0)  # not 1060: the window runs from the answer


async def test_calls_in_flight_hold_their_slot_until_answered() -> None:
    clock = FakeClock()
    lim = RateLimiter(clock=clock, sleep=clock.sleep, margin_s=0.0, minute_limit=2)
    first = await lim.acquire("machine_actions")
    await lim.acquire("machine_actions")
    waiter = asyncio.ensure_future(lim.acquire("machine_actions"))
    for _ in range(50):
        await asyncio.sleep(0)
    assert not waiter.done()  # both calls are still in flight: no third call, however long ago they began
    clock.now += 120
    await lim.complete(first)
    grant = await waiter
    assert grant.at >= first.at + 120 + 60


async def test_penalize_pauses_every_caller_of_the_family() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    lim.penalize("machine_actions", 5.0)
    await lim.acquire("machine_actions")
    assert clock.slept == [pytest.approx(5.0)]
    await lim.acquire("machines_read")
    assert clock.slept == [pytest.approx(5.0)]


async def test_a_burst_of_300_isolations_sees_no_429() -> None:
    config = SimulatorConfig(devices=400, time_scale=60, action_pending_s=600)
    async with Simulator(config) as sim:
        async with MdeClient(sim.url, StaticTokenProvider("sim-token"), limiter=RateLimiter(time_scale=60)) as client:
            ids = [
                m["id"]
                for m in sim.tenant.machines.values()
                if m["osPlatform"].startswith("Windows") and m["onboardingStatus"] == "onboarded"
            ][:300]
            assert len(ids) == 300
            await asyncio.gather(*(client.isolate(i, comment="burst") for i in ids))
        statuses = [c.status for c in calls(sim, "machine_actions")]
        assert statuses.count(201) == 300 and 429 not in statuses
        assert sim.sent_429 == 0


async def test_429_retry_after_is_honoured() -> None:
    config = SimulatorConfig(devices=30, time_scale=60)
    async with Simulator(config) as sim:
        sim.config.burst_429 = 2
        async with MdeClient(sim.url, StaticTokenProvider("sim-token"), limiter=RateLimiter(time_scale=60)) as client:
            assert await client.list_machines()
        log = calls(sim)
        assert [c.status for c in log] == [429, 429, 200]
        retry_after = 1.0 / 60
        assert log[1].time - log[0].time >= retry_after * 0.9
        assert log[2].time - log[1].time >= retry_after * 0.9


async def test_a_priority_caller_is_served_before_the_ordinary_callers_already_waiting() -> None:
    """Cancels go ahead of the other queued calls of their family (issue 13 part 3)."""
    frozen = FakeClock()

    async def retry_soon(_seconds: float) -> None:  # time stands still until the test moves it
        await asyncio.sleep(0)

    limiter = RateLimiter(minute_limit=1, margin_s=0.0, clock=frozen, sleep=retry_soon)
    await limiter.complete(await limiter.acquire("f"))
    order: list[str] = []

    async def call(name: str, priority: bool) -> None:
        await limiter.acquire("f", priority=priority)
        order.append(name)

    tasks = [asyncio.create_task(call(f"isolate-{i}", False)) for i in range(3)]
    for _ in range(3):
        await asyncio.sleep(0)  # the ordinary callers are queued first
    tasks.append(asyncio.create_task(call("cancel", True)))
    await asyncio.sleep(0)
    frozen.now += 60  # the window frees one slot while all four wait
    while not order:
        await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == ["cancel"]
