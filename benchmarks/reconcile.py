"""Reconciliation of a 10,000-device tenant against MDE's read budget.

    python benchmarks/reconcile.py                       # 10,000 devices, 2,000 in the register, 6 hours
    python benchmarks/reconcile.py --hours 24 --burst 25000

Simulated hours pass on the reconciler's clock (a run every ``--interval`` seconds, default 900); between
runs, people isolate and release devices in the portal (``--per-hour`` actions, half of them on devices the
register holds, so drift is found). Each run's calls to ``GET /api/machineactions`` are counted in the
simulator's request log. Prints one JSON line per scenario: calls per simulated hour (the worst hour), the
share of the documented 1,500 calls/hour budget of that endpoint family, actions read, drift found, and
whether any per-device call was made. ``--burst`` adds one interval with that many actions (paging).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from approvals.containment import service as store
from approvals.containment.models import Source
from approvals.db import Database, utcnow
from approvals.models import create_all
from approvals.policy import Policy
from approvals.service import ChatOps
from benchmarks.common import emit
from bot.containment_reconcile import ReconcileConfig, Reconciler
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.ratelimit import RateLimiter
from mde.simulator import Simulator, SimulatorConfig
from mde.simulator.portal import PORTAL_ACTIONS, portal_action

HOURLY_BUDGET = 1500  # GET /api/machineactions: 100/min and 1,500/h (DD:get-machineactions-collection.md)


def portal_actions(
    sim: Simulator, machines: list[dict[str, Any]], count: int, rng: random.Random, when: datetime
) -> None:
    """``count`` isolations and releases made in the portal (what ``POST /_sim/portal`` does, in bulk), dated
    in the simulated interval that ends at ``when`` (the simulated hours pass in seconds)."""
    for _ in range(count):
        machine = rng.choice(machines)
        action = portal_action(machine, {"action": rng.choice(list(PORTAL_ACTIONS)), "requestor": "soc@contoso.com"})
        action.created_wall = when - timedelta(seconds=rng.uniform(1, 800))
        sim.tenant.actions[action.id] = action


async def scenario(args: argparse.Namespace, *, burst: int = 0) -> dict[str, Any]:
    sim = Simulator(SimulatorConfig(devices=args.devices, time_scale=1.0))
    await sim.start()
    client = MdeClient(sim.url, StaticTokenProvider("sim-token"), limiter=RateLimiter())
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await create_all(db)
        machines = list(sim.tenant.machines.values())
        held = machines[: args.register]
        now = utcnow()
        async with db.transaction() as session:
            for machine in held:
                item = store.Isolation(
                    machine_id=machine["id"],
                    device_name=machine["computerDnsName"],
                    isolation_type="Full",
                    source=Source.BOT,
                    requested_by="alice",
                    at=now - timedelta(days=1),
                )
                await store.open_isolation(session, item, now)
        chatops = ChatOps(db, client, Policy.demo())
        clock = {"now": now}
        reconciler = Reconciler(
            db, chatops, owner="bench", config=ReconcileConfig(interval_s=args.interval), clock=lambda: clock["now"]
        )
        runs_per_hour = int(3600 // args.interval)
        per_run = max(1, args.per_hour // runs_per_hour)
        calls: list[int] = []
        actions = drift = 0
        per_device = False
        started = time.perf_counter()
        for run in range(args.hours * runs_per_hour):
            when = clock["now"]
            portal_actions(sim, held, per_run // 2, rng, when)
            portal_actions(sim, machines, per_run - per_run // 2, rng, when)
            if burst and run == runs_per_hour:
                portal_actions(sim, machines, burst, rng, when)
            before = len(sim.request_log)
            report = await reconciler.run_once()
            assert report is not None, "a due run must run"
            logged = sim.request_log[before:]
            calls.append(sum(1 for e in logged if e.path.endswith("/api/machineactions")))
            per_device |= any("/machines/" in e.path or "machineId" in e.query.get("$filter", "") for e in logged)
            actions += report.actions
            drift += len(report.released_outside) + len(report.isolated_outside)
            clock["now"] += timedelta(seconds=args.interval)
        await client.aclose()
        await sim.stop()
        await db.dispose()
    hourly = [sum(calls[h : h + runs_per_hour]) for h in range(0, len(calls), runs_per_hour)]
    worst = max(hourly)
    return {
        "scenario": f"burst of {burst} actions in one interval" if burst else "steady",
        "devices": args.devices,
        "register": args.register,
        "portal_actions_per_hour": args.per_hour,
        "interval_s": args.interval,
        "simulated_hours": args.hours,
        "runs": len(calls),
        "calls_total": sum(calls),
        "calls_per_hour_worst": worst,
        "budget_share_pct": round(100.0 * worst / HOURLY_BUDGET, 3),
        "within_2pct": 100.0 * worst / HOURLY_BUDGET <= 2.0,
        "actions_read": actions,
        "drift_found": drift,
        "per_device_calls": per_device,
        "wall_s": round(time.perf_counter() - started, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--register", type=int, default=2_000, help="devices the register holds isolated")
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--interval", type=float, default=900.0)
    parser.add_argument("--per-hour", type=int, default=400, help="portal isolations and releases per hour")
    parser.add_argument("--burst", type=int, default=25_000)
    args = parser.parse_args()
    emit(await scenario(args))
    if args.burst:
        emit(await scenario(args, burst=args.burst))


if __name__ == "__main__":
    asyncio.run(main())
