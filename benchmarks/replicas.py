"""Several replicas, one MDE budget: bulk isolation by tag with the work split across worker processes.

    python benchmarks/replicas.py [--n 3000] [--replicas 3] [--time-scale 60]

A fresh PostgreSQL database (migrated with Alembic), the simulator in its own process, and ``--replicas``
worker processes that claim jobs from the one queue and take every MDE call from the shared budget
(``PostgresBackend`` on the same database). This process files the request and approves it. Prints one JSON
line: ratio (first submission to last action final, over the minimum MDE's documented 100/min and 1,500/h
allow), http_429, duplicate_actions, lost (devices without a recorded outcome), and each replica's share.
``--backend memory`` gives each replica its own budget instead (the problem this fixes: expect 429s);
``--timeline`` adds, on stderr, when each hundred isolations went out and how long calls held their slot.
Set TEST_PG_HOST / TEST_PG_PORT to use a PostgreSQL server other than 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from approvals.db import Database
from approvals.execution.flows import Worker
from approvals.execution.models import Job
from approvals.identity import Origin
from approvals.migrate import upgrade_async
from approvals.policy import Policy
from approvals.requests.models import RequestDevice, RequestRecord
from approvals.service import ChatOps
from benchmarks.common import BENCH_POLICY, BENCH_TAG, ROOT, SimProcess, bench_worker_config, emit, min_possible_s
from bot.console.repl import console_actor
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.limiter_backends.base import LimiterBackend
from mde.limiter_backends.from_url import limiter_backend_from_url
from mde.limiter_backends.postgres import PostgresBackend
from mde.ratelimit import RateLimiter

FINAL_STATES = ("Succeeded", "Failed", "TimeOut", "Cancelled")


def shared_limiter(backend: LimiterBackend, time_scale: float) -> RateLimiter:
    return RateLimiter(time_scale=time_scale, backend=backend, clock=backend.clock)


async def replica(db_url: str, sim_url: str, owner: str, time_scale: float, limiter_url: str) -> None:
    """One worker process: ``python -m benchmarks.replicas --worker DB_URL SIM_URL OWNER TIME_SCALE LIMITER_URL``."""
    db = Database(db_url)
    backend = limiter_backend_from_url(limiter_url)
    limiter = shared_limiter(backend, time_scale)
    client = MdeClient(sim_url, StaticTokenProvider("sim-token"), limiter=limiter)
    worker = Worker(
        db,
        client,
        owner=owner,
        limiter=limiter,
        config=bench_worker_config(time_scale),
    )
    await worker.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def print_timeline(sim_url: str) -> None:
    """To stderr: for each hundred isolations, when the first was accepted and how long the hundred took."""
    import httpx

    async with httpx.AsyncClient(timeout=60) as http:
        log = (await http.get(sim_url + "/_sim/requests")).json()
    times = sorted(e["time"] for e in log if e["family"] == "machine_actions" and e["status"] == 201)
    rows = [
        (round(times[i] - times[0], 3), round(times[min(i + 99, len(times) - 1)] - times[i], 3))
        for i in range(0, len(times), 100)
    ]
    print("first of each hundred, spread:", rows, file=sys.stderr)


async def print_latency(backend: PostgresBackend) -> None:
    """To stderr: how long isolation calls held their slot (grant to answer), from the shared table."""
    from sqlalchemy import text

    query = "SELECT answered_at - granted_at FROM rate_limit_grants WHERE family = 'machine_actions'"
    async with backend.engine.connect() as conn:
        held = sorted(float(h) for (h,) in await conn.execute(text(query)) if h is not None)
    if held:
        quantiles = [round(held[int(q * (len(held) - 1))], 4) for q in (0.5, 0.9, 0.99)]
        print("grant to answer p50/p90/p99 (s):", quantiles, file=sys.stderr)


async def run(
    n: int, replicas: int, time_scale: float, backend_kind: str = "postgres", timeline: bool = False
) -> dict[str, Any]:
    from tests.support.databases import postgres_url

    async with postgres_url() as url, SimProcess(n, time_scale) as sim:
        await upgrade_async(url)
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "benchmarks.replicas",
                "--worker",
                url,
                sim.url,
                f"replica-{i}",
                str(time_scale),
                url if backend_kind == "postgres" else "memory://",
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
            for i in range(replicas)
        ]
        db = Database(url)
        backend = PostgresBackend(url)
        client = MdeClient(sim.url, StaticTokenProvider("sim-token"), limiter=shared_limiter(backend, time_scale))
        try:
            for proc in workers:
                assert proc.stdout is not None
                line = await proc.stdout.readline()
                assert line.strip() == b"ready", line
            chatops = ChatOps(db, client, Policy.from_dict(BENCH_POLICY))
            reply = await chatops.handle(
                console_actor("alice"), Origin("console", "bench"), f'isolate tag:"{BENCH_TAG}" --reason "benchmark"'
            )
            assert reply.request is not None, reply.text
            request_id = reply.request.id
            decision = await chatops.decide(console_actor("bob"), request_id, approve=True)
            assert not decision.error, decision.text
            started = time.monotonic()
            while True:
                async with db.sessions() as session:
                    record = await session.get(RequestRecord, request_id)
                    assert record is not None
                    if record.summarized_at is not None:
                        break
                assert time.monotonic() - started < 20 * min_possible_s(n, time_scale), "the run did not finish"
                await asyncio.sleep(0.05)
            stats = await sim.stats()
            if timeline:
                await print_timeline(sim.url)
                await print_latency(backend)
            async with db.sessions() as session:
                recorded = await session.scalar(
                    select(func.count())
                    .select_from(RequestDevice)
                    .where(RequestDevice.request_id == request_id, RequestDevice.state.in_(FINAL_STATES))
                )
                rows = await session.execute(select(Job.owner, func.count()).group_by(Job.owner).order_by(Job.owner))
                per_replica = {str(owner): int(count) for owner, count in rows}
        finally:
            for proc in workers:
                proc.terminate()
                await proc.wait()
            await client.aclose()
            await backend.aclose()
            await db.dispose()
    makespan = stats["last_final_mono"] - stats["first_action_mono"]
    floor = min_possible_s(n, time_scale)
    return {
        "n": n,
        "replicas": replicas,
        "backend": backend_kind,
        "time_scale": time_scale,
        "makespan_s": round(makespan, 3),
        "min_possible_s": round(floor, 3),
        "ratio": round(makespan / floor, 4),
        "http_429": stats["http_429"],
        "duplicate_actions": stats["duplicate_actions"],
        "actions": stats["actions"],
        "lost": n - int(recorded or 0),
        "jobs_per_replica": per_replica,
    }


async def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        db_url, sim_url, owner, time_scale, limiter_url = sys.argv[2:7]
        await replica(db_url, sim_url, owner, float(time_scale), limiter_url)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument(
        "--backend",
        choices=["postgres", "memory"],
        default="postgres",
        help="memory: each replica keeps its own budget (the problem this fixes: expect 429s)",
    )
    parser.add_argument("--timeline", action="store_true", help="print when each hundred isolations went out")
    args = parser.parse_args()
    emit(await run(args.n, args.replicas, args.time_scale, args.backend, args.timeline))


if __name__ == "__main__":
    asyncio.run(main())
