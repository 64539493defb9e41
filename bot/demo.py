"""``mde-chatops demo``: the simulator, a fresh SQLite database and a console chat, in one process."""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

from approvals.db import Database
from approvals.execution.flows import WorkerConfig
from approvals.incidents.rules import RuleSet
from approvals.migrate import upgrade_async
from approvals.policy import Policy
from bot.console.repl import CHANNEL, Console, script_from_file, script_lines, stdin_lines
from bot.console.surface import ConsoleSurface
from bot.containment_reconcile import ReconcileConfig
from bot.engine import Engine
from mde.ratelimit import RateLimiter
from mde.simulator import Simulator, SimulatorConfig


def demo_worker_config(time_scale: float) -> WorkerConfig:
    """MDE's polling and retry pace, sped up like the simulator's clock."""
    return WorkerConfig(
        concurrency=8,
        poll_interval_s=max(0.1, 5.0 / time_scale),
        heartbeat_s=1.0,
        stale_s=5.0,
        idle_wait_s=0.2,
        housekeeping_s=0.2,
        progress_interval_s=0.5,
        retry_base_s=max(0.1, 2.0 / time_scale),
    )


def demo_rules() -> RuleSet:
    """The Sentinel automation rule the demo replaces: High and "ransomware" -> propose isolating the hosts."""
    return RuleSet.model_validate(
        {
            "rules": [
                {
                    "name": "ransomware-high",
                    "when": {"severity": ["high", "critical"], "title_contains": ["ransomware"]},
                    "post": [{"surface": "console", "channel": CHANNEL, "mention": "@soc-oncall"}],
                    "propose": {"action": "isolate", "type": "selective"},
                }
            ]
        }
    )


async def run_demo(args: argparse.Namespace) -> int:
    lines = None
    if args.script:
        lines = script_from_file(args.script)
    async with AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mde-chatops-demo-")))
        sim = Simulator(SimulatorConfig(devices=args.devices, time_scale=args.time_scale))
        await sim.start()
        stack.push_async_callback(sim.stop)
        limiter = RateLimiter(time_scale=args.time_scale)
        client = sim.connect(limiter=limiter)
        stack.push_async_callback(client.aclose)
        url = args.database or f"sqlite+aiosqlite:///{tmp / 'demo.db'}"
        await upgrade_async(url)
        db = Database(url)
        stack.push_async_callback(db.dispose)
        surface = ConsoleSurface(sys.stdout, csv_dir=str(tmp))
        engine = Engine.build(
            db=db,
            client=client,
            policy=Policy.demo(),
            make_surfaces=lambda _chatops: [surface],
            limiter=limiter,
            worker_config=demo_worker_config(args.time_scale),
            rules=demo_rules(),
            reconcile=ReconcileConfig(interval_s=3600.0),
        )
        await engine.start()
        stack.push_async_callback(engine.stop)
        print(f"MDE simulator at {sim.url} with {args.devices} devices (time x{args.time_scale:g}); database {url}")
        console = Console(
            engine.chatops,
            engine.delivery,
            sys.stdout,
            user=args.user,
            echo=lines is not None,
            incidents=engine.incidents,
            reconciler=engine.reconciler,
            sim_url=sim.url,
        )
        if lines is not None:
            failures = await console.run(script_lines(lines))
        else:
            failures = await console.run(stdin_lines(), interactive=True)
        print("demo finished" + (f" with {failures} failure(s)" if failures else ""))
        return 1 if failures else 0
    return 0
