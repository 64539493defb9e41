"""Slack acknowledgement latency while a 1,000-device isolation runs.

    python benchmarks/slack_ack.py [--commands 200] [--concurrency 20] [--devices 1000]

Sends signed ``/mde`` slash commands (help, status, previews) over HTTP to the real bolt app on the
project's aiohttp server, while the worker isolates ``--devices`` devices against the simulator, and prints
one JSON line: p50_ms, p99_ms, max_ms of the HTTP acknowledgement, and whether the run was still executing.
Target: p99 < 300 ms. Everything is on loopback; Slack's Web API is the local mock, and the simulator runs
in its own process, as MDE would be elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from approvals.db import Database
from approvals.execution.flows import WorkerConfig
from approvals.identity import Origin
from approvals.models import create_all
from approvals.policy import Policy
from approvals.requests.models import RequestRecord
from benchmarks.common import BENCH_TAG, ROOT, SimProcess, emit
from bot.console.repl import console_actor
from bot.engine import Engine
from bot.server import build_app, start_site
from bot.slack.surface import SlackSurface
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.ratelimit import RateLimiter
from tests.support.mock_slack import MockSlack

SECRET = "bench-secret"
COMMANDS = ["help", "status", f'devices tag:"{BENCH_TAG}"', "help isolate", "history"]
if os.environ.get("SLACK_ACK_MIX") == "help":
    COMMANDS = ["help", "help isolate"]


def signed(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument(
        "--split", action="store_true", help="PostgreSQL, with the worker in its own process (the production layout)"
    )
    args = parser.parse_args()
    if args.split:
        from tests.support.databases import postgres_url

        async with postgres_url() as url:
            await run(args, url)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            await run(args, f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")


async def run(args: argparse.Namespace, db_url: str) -> None:

    slack = MockSlack()
    await slack.start()
    sim = SimProcess(args.devices, args.time_scale)
    await sim.__aenter__()
    limiter = RateLimiter(time_scale=args.time_scale)
    client = MdeClient(sim.url, StaticTokenProvider("sim-token"), limiter=limiter)
    policy = Policy.from_dict(
        {"defaults": {"requesters": ["*"], "approvers": ["console:bob"], "thresholds": [], "max_devices": 100000}}
    )
    worker_proc = None
    if True:
        db = Database(db_url)
        await create_all(db)
        surfaces: list[SlackSurface] = []

        def make(chatops):  # type: ignore[no-untyped-def]
            surfaces.append(
                SlackSurface(chatops, bot_token="xoxb-bench", signing_secret=SECRET, api_url=slack.url + "/api/")
            )
            return surfaces

        engine = Engine.build(
            db=db,
            client=client,
            policy=policy,
            make_surfaces=make,
            limiter=limiter,
            worker_config=WorkerConfig(concurrency=100, batch_size=50, poll_interval_s=5 / args.time_scale),
        )
        await engine.start()
        runner, port = await start_site(build_app(db, surfaces), "127.0.0.1", 0)
        reply = await engine.chatops.handle(
            console_actor("alice"), Origin("console", "bench"), f'isolate tag:"{BENCH_TAG}" --reason bench'
        )
        assert reply.request is not None, reply.text
        await engine.chatops.decide(console_actor("bob"), reply.request.id, approve=True)

        load = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.slack_load",
            f"http://127.0.0.1:{port}/slack/events",
            SECRET,
            str(args.commands),
            str(args.concurrency),
            f"{slack.url}/response",
            *COMMANDS,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await load.communicate()
        latencies: list[float] = json.loads(out)
        async with db.sessions() as session:
            record = await session.get(RequestRecord, reply.request.id)
            state = record.state if record else "?"
        if worker_proc is not None:
            worker_proc.terminate()
            await worker_proc.wait()
        await engine.stop()
        await runner.cleanup()
        await client.aclose()
        await db.dispose()
    await sim.__aexit__()
    await slack.stop()
    latencies.sort()
    if os.environ.get("SLACK_ACK_DEBUG"):
        import collections

        print(collections.Counter(c.method for c in slack.calls), file=sys.stderr)
    emit(
        {
            "commands": args.commands,
            "concurrency": args.concurrency,
            "devices": args.devices,
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
            "max_ms": round(latencies[-1], 1),
            "run_state_during": state,
            "layout": "web and worker processes, PostgreSQL" if args.split else "one process, SQLite",
        }
    )


if __name__ == "__main__":
    asyncio.run(main())
