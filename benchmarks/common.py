"""Shared pieces for benchmarks: a tagged tenant, the minimum time MDE's limits allow, JSON output."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from approvals.db import Database
from approvals.execution.flows import WorkerConfig
from approvals.models import create_all
from approvals.policy import Policy
from bot.engine import Engine
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.ratelimit import RateLimiter
from mde.simulator import Simulator, SimulatorConfig

BENCH_TAG = "Bench Isolation"
#: alice asks, bob approves, no thresholds and no cap in the way of a large request
BENCH_POLICY = {
    "defaults": {"requesters": ["console:alice"], "approvers": ["console:bob"], "thresholds": [], "max_devices": 100000}
}
ROOT = str(Path(__file__).resolve().parents[1])


def tagged_simulator(n: int, time_scale: float, extra: int = 20) -> Simulator:
    """A tenant where exactly ``n`` active, isolatable Windows devices carry ``BENCH_TAG``."""
    sim = Simulator(SimulatorConfig(devices=n + extra, time_scale=time_scale, inactive_rate=0.0))
    tagged = 0
    for machine in sim.tenant.machines.values():
        if (
            tagged < n
            and machine["osPlatform"] in ("Windows10", "Windows11", "WindowsServer2022", "WindowsServer2019")
            and not machine["machineTags"]
        ):
            machine["machineTags"] = [BENCH_TAG]
            tagged += 1
    while tagged < n:  # top up with plain workstations if the OS mix was short
        from mde.simulator.tenant import make_machine

        index = len(sim.tenant.machines)
        sim.tenant.add(make_machine(f"{index:040x}", f"bench-{index:05d}.contoso.local", tags=[BENCH_TAG]))
        tagged += 1
    return sim


def min_possible_s(
    n: int, time_scale: float, *, per_minute: int = 100, per_hour: int = 1500, action_s: float = 15.0
) -> float:
    """When the n-th submission can happen under both sliding windows, plus one action's duration."""
    minute, hour = 60.0 / time_scale, 3600.0 / time_scale
    grants: deque[float] = deque()
    last = 0.0
    times: list[float] = []
    for _ in range(n):
        t = last
        if len(times) >= per_minute:
            t = max(t, times[-per_minute] + minute)
        if len(times) >= per_hour:
            t = max(t, times[-per_hour] + hour)
        times.append(t)
        last = t
    del grants
    return last + action_s / time_scale


def bench_worker_config(time_scale: float) -> WorkerConfig:
    """The worker as the benchmarks run it: MDE's 5 s polling scaled like the simulator's clock."""
    return WorkerConfig(
        concurrency=100,
        batch_size=50,
        poll_interval_s=5.0 / time_scale,
        idle_wait_s=0.05,
        housekeeping_s=0.5,
        progress_interval_s=1.0,
    )


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, sort_keys=True), flush=True)


class SimProcess:
    """The simulator in a child process (``benchmarks/sim_process.py``), reached over loopback HTTP."""

    def __init__(self, n: int, time_scale: float) -> None:
        self.n, self.time_scale = n, time_scale
        self.url = ""
        self._proc: Any = None

    async def __aenter__(self) -> SimProcess:
        import asyncio
        import sys

        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.sim_process",
            str(self.n),
            str(self.time_scale),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        line = await self._proc.stdout.readline()
        self.url = line.decode().strip()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._proc.terminate()
        await self._proc.wait()

    async def stats(self) -> dict[str, Any]:
        import httpx

        async with httpx.AsyncClient() as http:
            return dict((await http.get(self.url + "/_sim/stats")).json())


@asynccontextmanager
async def fresh_database(db_url: str | None, directory: Path) -> AsyncIterator[Database]:
    """A database with today's schema that the benchmark owns: a temporary SQLite file, or, given a PostgreSQL
    URL, a new database on that server, dropped afterwards (the named one is never written to: its schema may be
    older than the code's, and its rows are someone else's)."""
    if db_url is None or not db_url.startswith("postgresql"):
        db = Database(db_url or f"sqlite+aiosqlite:///{directory / 'bench.db'}")
        try:
            await create_all(db)
            yield db
        finally:
            await db.dispose()
        return
    url = make_url(db_url)
    name = f"mdechatops_bench_{uuid.uuid4().hex[:12]}"
    admin = {"host": url.host, "port": url.port, "user": url.username, "password": url.password}

    async def on_server(sql: str) -> None:
        conn = await asyncpg.connect(database=url.database, **admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await on_server(f'CREATE DATABASE "{name}"')
    db = Database(url.set(database=name).render_as_string(hide_password=False))
    try:
        await create_all(db)
        yield db
    finally:
        await db.dispose()
        await on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def bench_engine(sim_url: str, time_scale: float, db_url: str | None = None) -> AsyncIterator[Engine]:
    """The bot's engine as the benchmarks run it: the real client on the simulator, a temporary SQLite file
    unless a database URL is given, the benchmark policy, the worker paced like the simulator's clock."""
    limiter = RateLimiter(time_scale=time_scale)
    client = MdeClient(sim_url, StaticTokenProvider("sim-token"), limiter=limiter)
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database(db_url, Path(tmp)) as db:
            engine = Engine.build(
                db=db,
                client=client,
                policy=Policy.from_dict(BENCH_POLICY),
                make_surfaces=lambda _c: [],
                limiter=limiter,
                worker_config=bench_worker_config(time_scale),
            )
            await engine.start()
            try:
                yield engine
            finally:
                await engine.stop()
                await client.aclose()
