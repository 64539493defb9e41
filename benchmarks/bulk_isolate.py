"""Bulk isolation by tag: ours (approvals engine + rate-limited client) against a Logic App-style for-each.

    python benchmarks/bulk_isolate.py --n 1000            # both modes
    python benchmarks/bulk_isolate.py --n 3000 --mode ours  # crosses the hourly limit

Prints one JSON line per mode, last: n, makespan_s (first submission to last action final), min_possible_s (what
MDE's documented 100/min and 1,500/h allow, plus one action's duration), ratio, http_429, duplicate_actions,
outcomes_recorded. Everything runs on loopback against the simulator at the given time scale.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from approvals.identity import Origin
from approvals.requests import service as requests
from approvals.requests.models import RequestRecord
from benchmarks.common import BENCH_TAG, bench_engine, emit, min_possible_s, tagged_simulator
from bot.console.repl import console_actor


async def run_ours(n: int, time_scale: float, db_url: str | None = None) -> dict[str, Any]:
    sim = tagged_simulator(n, time_scale)
    await sim.start()
    async with bench_engine(sim.url, time_scale, db_url) as engine:
        db = engine.db
        origin = Origin("console", "bench")
        reply = await engine.chatops.handle(
            console_actor("alice"), origin, f'isolate tag:"{BENCH_TAG}" --reason "benchmark"'
        )
        assert reply.request is not None, reply.text
        request_id = reply.request.id
        sim.request_log.clear()
        decision = await engine.chatops.decide(console_actor("bob"), request_id, approve=True)
        assert not decision.error, decision.text
        while True:
            async with db.sessions() as session:
                record = await session.get(RequestRecord, request_id)
                assert record is not None
                if record.summarized_at is not None:
                    break
            await asyncio.sleep(0.05)
        async with db.sessions() as session:  # every device: a view holds only the first rows
            devices = await requests.devices_for(session, request_id)
        finals = [sim.tenant.actions[d.action_id].finished_mono() for d in devices if d.action_id]
        first = min(e.time for e in sim.request_log if e.family == "machine_actions")
        makespan = max(f for f in finals if f is not None) - first
        recorded = sum(1 for d in devices if d.state in ("Succeeded", "Failed", "TimeOut"))
    stats = sim.stats()
    await sim.stop()
    return _result("ours", n, time_scale, makespan, stats, recorded)


async def run_baseline(n: int, time_scale: float) -> dict[str, Any]:
    """A Logic App for-each: 20 in parallel, no limiter; default retry policy of 4 exponential retries
    (intervals scaled by 7.5 s, capped between 5 s and 45 s, Retry-After not consulted), then give up."""
    sim = tagged_simulator(n, time_scale)
    await sim.start()
    headers = {"Authorization": "Bearer sim-token"}
    async with httpx.AsyncClient(base_url=sim.url, headers=headers, timeout=60) as http:
        flt = f"machineTags/any(tag: tag eq '{BENCH_TAG}')"
        ids = [m["id"] for m in (await http.get("/api/machines", params={"$filter": flt})).json()["value"]]
        sim.request_log.clear()
        start = time.monotonic()
        gate = asyncio.Semaphore(20)
        submitted: dict[str, str] = {}

        async def isolate(machine_id: str) -> None:
            async with gate:
                for attempt in range(5):
                    response = await http.post(
                        f"/api/machines/{machine_id}/isolate", json={"Comment": "baseline", "IsolationType": "Full"}
                    )
                    if response.status_code == 201:
                        submitted[machine_id] = response.json()["id"]
                        return
                    if response.status_code not in (429, 500, 502, 503, 504) or attempt == 4:
                        return
                    interval = min(45.0, max(5.0, 7.5 * 2**attempt * random.uniform(0.8, 1.2)))
                    await asyncio.sleep(interval / time_scale)

        await asyncio.gather(*(isolate(i) for i in ids))
        pending = set(submitted.values())
        while pending:
            await asyncio.sleep(5 / time_scale)
            listed = await http.get("/api/machineactions", params={"$top": 10000})
            if listed.status_code != 200:
                continue
            for action in listed.json()["value"]:
                if action["id"] in pending and action["status"] in ("Succeeded", "Failed", "TimeOut", "Cancelled"):
                    pending.discard(action["id"])
        finals = [sim.tenant.actions[a].finished_mono() for a in submitted.values()]
        first = min((e.time for e in sim.request_log if e.family == "machine_actions"), default=start)
        makespan = (max(f for f in finals if f is not None) - first) if finals else float("nan")
    stats = sim.stats()
    await sim.stop()
    return _result("baseline", n, time_scale, makespan, stats, len(submitted))


def _result(
    mode: str, n: int, time_scale: float, makespan: float, stats: dict[str, Any], recorded: int
) -> dict[str, Any]:
    floor = min_possible_s(n, time_scale)
    return {
        "mode": mode,
        "n": n,
        "time_scale": time_scale,
        "makespan_s": round(makespan, 3),
        "min_possible_s": round(floor, 3),
        "ratio": round(makespan / floor, 4),
        "http_429": stats["http_429"],
        "duplicate_actions": stats["duplicate_actions"],
        "outcomes_recorded": recorded,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--mode", choices=["ours", "baseline", "both"], default="both")
    parser.add_argument("--database", help="PostgreSQL server URL: ours runs in a new database there (default: SQLite)")
    args = parser.parse_args()
    results = []
    if args.mode in ("baseline", "both"):
        results.append(await run_baseline(args.n, args.time_scale))
    if args.mode in ("ours", "both"):
        results.append(await run_ours(args.n, args.time_scale, args.database))
    for result in results:
        emit(result)


if __name__ == "__main__":
    asyncio.run(main())
