"""``mde-chatops simulator``: run the simulator as a standalone server (for the bot, benchmarks, demos)."""

from __future__ import annotations

import argparse
import asyncio

from mde.simulator.config import SimulatorConfig
from mde.simulator.server import Simulator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-scale", type=float, default=1.0, help="divide every time constant by this")
    parser.add_argument("--token", default="sim-token", help="the bearer token to accept")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    parser.add_argument("--slow-action-rate", type=float, default=0.0)
    parser.add_argument("--burst-429", type=int, default=0)
    parser.add_argument(
        "--legacy-hunting",
        action="store_true",
        help="serve MDE's retired /api/advancedqueries/run (default: 410 Gone, like a retired API)",
    )


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        devices=args.devices,
        seed=args.seed,
        time_scale=args.time_scale,
        token=args.token,
        error_rate=args.error_rate,
        latency_s=args.latency,
        slow_action_rate=args.slow_action_rate,
        burst_429=args.burst_429,
        legacy_hunting=args.legacy_hunting,
    )


async def serve(args: argparse.Namespace) -> None:
    sim = Simulator(config_from_args(args))
    url = await sim.start(args.host, args.port)
    print(f"MDE simulator at {url} · token {sim.config.token} · {len(sim.tenant.machines)} devices", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
