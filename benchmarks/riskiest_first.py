"""Riskiest first: how soon every High-risk device of a large isolation is submitted, against name order.

    python benchmarks/riskiest_first.py --n 3000      # both orders; simulator at time scale 60

A 3,000-device isolation is past one hour of MDE's limits (100 a minute, 1,500 an hour), so it runs for
about 74 minutes whatever the order. What the order changes is when the devices most likely to spread the
attack are cut off. ``riskiest`` is the product (devices with an unresolved MDE alert or named by the
incident, then MDE riskScore High, then Medium, then the rest); ``by_name`` is the order before it (the same
request with every device in one class). Prints one JSON line per order: n, alerted (devices with an
unresolved alert in the simulator's seeded tenant), alerted_all_submitted_min, high_risk (devices with
riskScore High), high_all_submitted_min (simulated minutes from the first submission until the last such
device's isolate was accepted), http_429, and the card's order note.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from approvals.identity import Origin
from approvals.requests.models import RequestDevice
from benchmarks.common import BENCH_TAG, bench_engine, emit, tagged_simulator
from bot.console.repl import console_actor


async def run(order: str, n: int, time_scale: float) -> dict[str, Any]:
    sim = tagged_simulator(n, time_scale)
    await sim.start()
    tagged = {m["id"] for m in sim.tenant.machines.values() if BENCH_TAG in m["machineTags"]}
    high = {m for m in tagged if sim.tenant.machines[m]["riskScore"] == "High"}
    alerted = {a["machineId"] for a in sim.tenant.alerts if a["status"] != "Resolved"} & tagged
    async with bench_engine(sim.url, time_scale, None) as engine:
        db = engine.db
        reply = await engine.chatops.handle(
            console_actor("alice"), Origin("console", "bench"), f'isolate tag:"{BENCH_TAG}" --reason "benchmark"'
        )
        assert reply.request is not None, reply.text
        note = reply.request.order_note
        if order == "by_name":  # what the product did before: one class, so name order
            async with db.transaction() as session:
                await session.execute(
                    update(RequestDevice).where(RequestDevice.request_id == reply.request.id).values(priority=30)
                )
        sim.request_log.clear()
        decision = await engine.chatops.decide(console_actor("bob"), reply.request.id, approve=True)
        assert not decision.error, decision.text
        accepted: dict[str, float] = {}
        while not (high | alerted) <= accepted.keys():
            await asyncio.sleep(0.05)
            for entry in sim.request_log:
                if entry.family == "machine_actions" and entry.status == 201 and entry.path.endswith("/isolate"):
                    accepted.setdefault(entry.path.split("/")[-2], entry.time)
        first = min(accepted.values())
        last_high = max(accepted[m] for m in high)
        last_alerted = max((accepted[m] for m in alerted), default=first)
    stats = sim.stats()
    await sim.stop()
    return {
        "order": order,
        "n": n,
        "alerted": len(alerted),
        "alerted_all_submitted_min": round((last_alerted - first) * time_scale / 60, 1),
        "high_risk": len(high),
        "high_all_submitted_min": round((last_high - first) * time_scale / 60, 1),
        "http_429": stats["http_429"],
        "card": note,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--time-scale", type=float, default=60.0)
    args = parser.parse_args()
    for order in ("riskiest", "by_name"):
        emit(await run(order, args.n, args.time_scale))


if __name__ == "__main__":
    asyncio.run(main())
