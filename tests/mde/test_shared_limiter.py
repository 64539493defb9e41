"""Shared rate-limit backends: replicas on one PostgreSQL database (or one Redis) share one MDE budget.

The window checks look at when each call "reached MDE" (stamped right after its grant, before its answer),
exactly as MDE counts; two limiters that did not share would put twice the limit in a window (the control).
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from approvals.migrate import upgrade_async
from mde.limiter_backends.base import IN_FLIGHT_RECHECK_S, LimiterBackend
from mde.limiter_backends.from_url import default_limiter_url, limiter_backend_from_url
from mde.limiter_backends.memory import MemoryBackend
from mde.limiter_backends.postgres import PostgresBackend
from mde.limiter_backends.redis import RedisBackend
from mde.ratelimit import RateLimiter
from tests.support.databases import postgres_url

ROOT = Path(__file__).parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"
FAMILY = "machine_actions"
LIMIT, SCALE = 10, 120  # 10 calls per 0.5 s window
WINDOW = 60.0 / SCALE

MakeBackend = Callable[..., LimiterBackend]


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with postgres_url() as url:
        await upgrade_async(url, "0002")  # the table comes from migration 0002, as in production
        yield url


@pytest.fixture(params=["postgres", "redis"])
async def make_backend(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[MakeBackend]:
    """Backend instances for separate "replicas" (each its own engine or connection), on one shared store."""
    made: list[LimiterBackend] = []
    prefix = f"test-limiter:{uuid.uuid4().hex[:8]}"
    family_rows = f"test_{uuid.uuid4().hex[:8]}"  # PostgreSQL: a family of our own keeps tests apart

    def make(**kw: Any) -> LimiterBackend:
        backend: LimiterBackend
        if request.param == "postgres":
            backend = PostgresBackend(pg_url, **kw)
        else:
            backend = RedisBackend(REDIS_URL, prefix=prefix, **kw)
        made.append(backend)
        return backend

    make.family = family_rows  # type: ignore[attr-defined]
    yield make
    for backend in made:
        await backend.aclose()
    if request.param == "redis":
        import redis.asyncio as aioredis

        client = aioredis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of times in any (t - window, t]: what MDE's sliding window would see."""
    times = sorted(times)
    most, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - window:
            first += 1
        most = max(most, last - first + 1)
    return most


async def _calls(limiter: RateLimiter, n: int, family: str = FAMILY) -> list[float]:
    """``n`` concurrent calls through ``limiter``; returns when each reached "MDE"."""
    arrivals: list[float] = []

    async def one() -> None:
        grant = await limiter.acquire(family)
        arrivals.append(time.time())
        await asyncio.sleep(random.uniform(0, 0.01))  # the call's round trip
        await limiter.complete(grant)

    await asyncio.gather(*(one() for _ in range(n)))
    return arrivals


def _limiter(backend: LimiterBackend) -> RateLimiter:
    return RateLimiter(time_scale=SCALE, minute_limit=LIMIT, backend=backend, clock=backend.clock)


async def test_two_replicas_never_exceed_a_window_together(make_backend: MakeBackend) -> None:
    a, b = _limiter(make_backend()), _limiter(make_backend())
    family = make_backend.family  # type: ignore[attr-defined]
    start = time.time()
    got_a, got_b = await asyncio.gather(_calls(a, 20, family), _calls(b, 20, family))
    assert len(got_a) == len(got_b) == 20
    assert most_in_any_window(got_a + got_b, WINDOW) <= LIMIT
    assert time.time() - start >= 3 * WINDOW  # 40 calls need four windows: the budget really was shared


async def test_a_429_to_one_replica_pauses_every_replica(make_backend: MakeBackend) -> None:
    family = make_backend.family  # type: ignore[attr-defined]
    a, b = _limiter(make_backend()), _limiter(make_backend())
    paused_at = time.time()
    a.penalize(family, 0.6)  # MDE answered 429 with Retry-After to replica a
    await asyncio.gather(*a._sharing)
    other = make_backend()  # a third replica, asked at one instant: the family waits, other families do not
    now, windows = time.time(), a.windows(family)
    assert await other.try_acquire(family, windows, now) > 0.5
    assert await other.try_acquire(family + "x", windows, now) == 0.0
    grant = await b.acquire(family)
    await b.complete(grant)
    # replica b waited out a's pause instead of drawing its own 429: measured from the pause, not from when b
    # asked (on a loaded machine the checks above take part of the 0.6 s)
    assert time.time() - paused_at >= 0.58


async def test_control_two_unshared_limiters_do_exceed() -> None:
    """The window check above can fail: two per-process budgets put twice the limit in a window."""
    a, b = _limiter(MemoryBackend()), _limiter(MemoryBackend())
    got_a, got_b = await asyncio.gather(_calls(a, 20), _calls(b, 20))
    assert most_in_any_window(got_a + got_b, WINDOW) == 2 * LIMIT


async def test_a_crashed_in_flight_grant_expires(make_backend: MakeBackend) -> None:
    family, windows, t = make_backend.family, [(1, 100.0)], time.time()  # type: ignore[attr-defined]
    crashed = make_backend(in_flight_ttl_s=30.0)
    assert await crashed.try_acquire(family, windows, t) == 0.0
    await crashed.aclose()  # the replica dies with its call in flight: no complete() ever comes
    survivor = make_backend(in_flight_ttl_s=30.0)
    assert await survivor.try_acquire(family, windows, t + 1) == pytest.approx(IN_FLIGHT_RECHECK_S)
    assert await survivor.try_acquire(family, windows, t + 29) == pytest.approx(IN_FLIGHT_RECHECK_S)
    # expired: counted as answered when it was granted, so it leaves the window at t + 100, not never
    assert await survivor.try_acquire(family, windows, t + 31) == pytest.approx(69.0, abs=0.05)
    assert await survivor.try_acquire(family, windows, t + 100.1) == 0.0


async def test_an_answer_moves_the_grant_to_its_answer_time(make_backend: MakeBackend) -> None:
    family, windows, t = make_backend.family, [(1, 10.0)], time.time()  # type: ignore[attr-defined]
    first, second = make_backend(), make_backend()
    assert await first.try_acquire(family, windows, t) == 0.0
    await first.complete(family, t, t + 5)  # slow answer: MDE may have counted it as late as t + 5
    assert await second.try_acquire(family, windows, t + 12) == pytest.approx(3.0, abs=0.05)
    assert await second.try_acquire(family, windows, t + 15.1) == 0.0


async def test_decides_like_the_memory_backend(make_backend: MakeBackend) -> None:
    """A random script of grants and answers: the shared backend grants exactly when MemoryBackend does."""
    rng = random.Random(8)
    family, windows = make_backend.family, [(3, 2.5), (7, 9.5)]  # type: ignore[attr-defined]
    shared, memory = make_backend(), MemoryBackend()
    t0, in_flight = time.time(), []
    for step in range(120):
        now = t0 + step
        if in_flight and rng.random() < 0.5:
            granted = in_flight.pop(rng.randrange(len(in_flight)))
            await shared.complete(family, granted, now)
            await memory.complete(family, granted, now)
            continue
        want = await memory.try_acquire(family, windows, now)
        got = await shared.try_acquire(family, windows, now)
        assert (got == 0.0) == (want == 0.0), (step, got, want)
        assert got <= want + 1e-3, (step, got, want)
        if got == 0.0:
            in_flight.append(now)


async def test_estimates_see_the_other_replicas_grants(make_backend: MakeBackend) -> None:
    family = make_backend.family  # type: ignore[attr-defined]
    busy, idle = _limiter(make_backend()), _limiter(make_backend())
    arrivals = await _calls(busy, LIMIT, family)
    await idle.backend.refresh(family)  # type: ignore[attr-defined]
    wait = idle.estimate_wait(family, 1)
    # busy's oldest grant holds the window at least this much longer (grants count from their answers, later);
    # an unshared budget would say 0 here
    held = min(arrivals) + WINDOW - time.time()
    assert wait > 0 or held <= 0
    assert wait >= held - 0.05


async def test_two_processes_share_the_budget(pg_url: str) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.mde.test_shared_limiter", pg_url, "20"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for child in children:  # both are connected and waiting: start them together
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        runs = [json.loads(child.communicate(timeout=60)[0]) for child in children]
    finally:
        for child in children:
            child.kill()
    arrivals = [t for run in runs for t in run]
    assert len(arrivals) == 40
    assert max(min(run) for run in runs) < min(max(run) for run in runs)  # the two really ran together
    assert most_in_any_window(arrivals, WINDOW) <= LIMIT


async def test_factory_picks_the_backend_from_the_url() -> None:
    assert isinstance(limiter_backend_from_url(None), MemoryBackend)
    assert isinstance(limiter_backend_from_url("memory://"), MemoryBackend)
    for url, kind in (("postgresql://u@127.0.0.1/db", PostgresBackend), ("redis://127.0.0.1:6379/0", RedisBackend)):
        backend = limiter_backend_from_url(url)  # nothing connects until the first call
        assert isinstance(backend, kind)
        assert backend.clock is time.time
        await backend.aclose()
    assert MemoryBackend().clock is time.monotonic
    with pytest.raises(ValueError, match="MDE_LIMITER_URL"):
        limiter_backend_from_url("mysql://127.0.0.1/db")


def test_postgresql_database_is_the_default_shared_budget() -> None:
    assert default_limiter_url(None, "postgresql://u@h/db") == "postgresql://u@h/db"
    assert default_limiter_url(None, "sqlite:///mde-chatops.db") is None
    assert default_limiter_url("redis://h:6379/0", "postgresql://u@h/db") == "redis://h:6379/0"
    assert default_limiter_url("memory://", "postgresql://u@h/db") == "memory://"


async def test_a_shared_backend_refuses_a_monotonic_clock(pg_url: str) -> None:
    backend = PostgresBackend(pg_url)
    try:
        with pytest.raises(ValueError, match=r"backend\.clock"):
            await RateLimiter(backend=backend).acquire(FAMILY)  # default clock: time.monotonic
    finally:
        await backend.aclose()


async def _child(url: str, n: int, wait_for_go: Callable[[], Awaitable[str]]) -> None:
    backend = PostgresBackend(url)
    limiter = _limiter(backend)
    await backend.try_acquire("warm-up", [(1000, 1.0)], time.time())  # connect before the start line
    print("ready", flush=True)
    await wait_for_go()
    arrivals = await _calls(limiter, n)
    await backend.aclose()
    print(json.dumps(arrivals), flush=True)


if __name__ == "__main__":  # one "replica" of test_two_processes_share_the_budget
    asyncio.run(_child(sys.argv[1], int(sys.argv[2]), lambda: asyncio.to_thread(sys.stdin.readline)))
