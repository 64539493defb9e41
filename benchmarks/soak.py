"""A scaled soak: mixed chat commands, approvals and incident notifications for a simulated half hour.

    python benchmarks/soak.py [--minutes 30] [--time-scale 60] [--postgres] [--commands-per-minute 40]

Runs the real engine (worker, delivery to a console surface, ChatOps) against the MDE simulator in its own
process, and the incident webhook on the project's web server. Every simulated minute it sends a mix of
``help``, ``status``, ``history`` and ``devices`` previews, requests isolations and releases of single devices
that a second person approves, and posts signed Sentinel incidents to ``POST /api/incidents`` (whose rule
proposes an isolation, also approved). At the end it waits for every request to finish and prints one JSON
line: calls completed, errors, p50/p99 command latency, RSS at start/middle/end, duplicate actions, HTTP 429s.
The default is 30 simulated minutes at time scale 60, i.e. 30 s of real time; ``--minutes 600`` soaks longer.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from approvals.db import Database
from approvals.execution.flows import WorkerConfig
from approvals.identity import Origin
from approvals.incidents.rules import RuleSet
from approvals.models import create_all
from approvals.policy import Policy
from approvals.requests.models import RequestRecord
from benchmarks.common import BENCH_TAG, SimProcess, emit
from bot.console.repl import console_actor
from bot.console.surface import ConsoleSurface
from bot.engine import Engine
from bot.server import build_app, start_site
from bot.webhooks import SIGNATURE_HEADER, IncidentWebhook, sign
from mde import odata
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.ratelimit import RateLimiter
from tests.support.incidents import sentinel_incident

ALICE, BOB = console_actor("alice"), console_actor("bob")
HERE = Origin("console", "soak")
SECRET = "soak-secret"
FINAL = {"succeeded", "partially_failed", "failed", "rejected", "expired", "cancelled"}
RULES = RuleSet.model_validate(
    {
        "rules": [
            {
                "name": "ransomware",
                "when": {"severity": ["high", "critical"]},
                "post": [{"surface": "console", "channel": "soak"}],
                "propose": {"action": "isolate", "type": "selective"},
            }
        ]
    }
)
READS = ["help", "help isolate", "status", "history", f'devices tag:"{BENCH_TAG}"']


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Soak:
    engine: Engine
    http: httpx.AsyncClient
    incidents_url: str
    console: ConsoleSurface
    free: list[str]
    isolated: list[str] = field(default_factory=list)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    requests: dict[int, tuple[str, list[str]]] = field(default_factory=dict)  # id -> (verb, device names)
    finished: dict[int, str] = field(default_factory=dict)
    calls: int = 0
    incidents: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    async def timed(self, kind: str, call: Callable[[], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        try:
            return await call()
        finally:
            self.latencies_ms.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
            self.calls += 1

    async def read(self) -> None:
        text = self.rng.choice(READS)
        reply = await self.timed("read", lambda: self.engine.chatops.handle(ALICE, HERE, text))
        if reply.error:
            self.errors.append(f"{text}: {reply.text[:120]}")

    async def act(self, verb: str) -> None:
        pool = self.free if verb == "isolate" else self.isolated
        if not pool:
            return await self.read()
        name = pool.pop(self.rng.randrange(len(pool)))
        text = f"{verb} device:{name} --reason soak" + (" --type selective" if verb == "isolate" else "")
        reply = await self.timed("request", lambda: self.engine.chatops.handle(ALICE, HERE, text))
        if reply.error or reply.request is None:
            self.errors.append(f"{text}: {reply.text[:120]}")
            return
        await self.approve(reply.request.id, verb, [name])

    async def approve(self, request_id: int, verb: str, names: list[str]) -> None:
        self.requests[request_id] = (verb, names)
        decision = await self.timed("approve", lambda: self.engine.chatops.decide(BOB, request_id, approve=True))
        if decision.error:
            self.errors.append(f"approve #{request_id}: {decision.text[:120]}")

    async def incident(self) -> None:
        if len(self.free) < 2:
            return await self.read()
        names = [self.free.pop(self.rng.randrange(len(self.free))) for _ in range(2)]
        self.incidents += 1
        body = json.dumps(sentinel_incident(number=10_000 + self.incidents, hosts=[(n, None) for n in names])).encode()
        headers = {SIGNATURE_HEADER: sign(SECRET, body), "Content-Type": "application/json"}
        response = await self.timed(
            "incident", lambda: self.http.post(self.incidents_url, content=body, headers=headers)
        )
        if response.status_code != 200:
            self.errors.append(f"incident: HTTP {response.status_code} {response.text[:120]}")
            self.free.extend(names)
            return
        proposed = response.json().get("requests") or []
        if not proposed:
            self.free.extend(names)
        for request_id in proposed:
            await self.approve(int(request_id), "isolate", names)

    async def one(self) -> None:
        roll = self.rng.random()
        if roll < 0.55:
            await self.read()
        elif roll < 0.75:
            await self.act("isolate")
        elif roll < 0.90:
            await self.act("unisolate")
        else:
            await self.incident()

    async def settle(self) -> None:
        """Move devices between the pools as their requests finish."""
        open_ids = [i for i in self.requests if i not in self.finished]
        if not open_ids:
            return
        async with self.engine.db.sessions() as session:
            rows = await session.execute(
                RequestRecord.__table__.select().where(RequestRecord.id.in_(open_ids))  # type: ignore[attr-defined]
            )
            done = {r.id: r.state for r in rows if r.state in FINAL and r.summarized_at is not None}
        for request_id, state in done.items():
            self.finished[request_id] = state
            verb, names = self.requests[request_id]
            if state != "succeeded":
                self.errors.append(f"request #{request_id} ({verb}) ended {state}")
            (self.isolated if (verb == "isolate") == (state == "succeeded") else self.free).extend(names)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="simulated minutes (default 30)")
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--commands-per-minute", type=float, default=40.0, help="per simulated minute")
    parser.add_argument("--concurrency", type=int, default=4, help="operators typing at once")
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--postgres", action="store_true", help="a fresh database on the local PostgreSQL")
    args = parser.parse_args()
    if args.postgres:
        from tests.support.databases import postgres_url

        async with postgres_url() as url:
            await run(args, url)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            await run(args, f"sqlite+aiosqlite:///{Path(tmp) / 'soak.db'}")


async def run(args: argparse.Namespace, db_url: str) -> None:
    scale = args.time_scale
    async with SimProcess(args.devices, scale) as sim:
        limiter = RateLimiter(time_scale=scale)
        client = MdeClient(sim.url, StaticTokenProvider("sim-token"), limiter=limiter)
        db = Database(db_url)
        await create_all(db)
        console = ConsoleSurface(io.StringIO())
        policy = Policy.from_dict({"defaults": {"requesters": ["console:alice"], "approvers": ["console:bob"]}})
        engine = Engine.build(
            db=db,
            client=client,
            policy=policy,
            make_surfaces=lambda _c: [console],
            limiter=limiter,
            rules=RULES,
            delivery_poll_s=0.2,
            worker_config=WorkerConfig(
                poll_interval_s=5 / scale,
                heartbeat_s=1.0,
                stale_s=10.0,
                idle_wait_s=0.2,
                housekeeping_s=0.2,
                progress_interval_s=2.0,
                retry_base_s=2 / scale,
            ),
        )
        await engine.start()
        webhook = IncidentWebhook(db, engine.incidents, secret=SECRET)
        runner, port = await start_site(build_app(db, [webhook]), "127.0.0.1", 0)
        names = sorted(m.computer_dns_name for m in await client.list_machines(filter=odata.tag_eq(BENCH_TAG)))
        async with httpx.AsyncClient(timeout=30) as http:
            soak = Soak(engine, http, f"http://127.0.0.1:{port}/api/incidents", console, free=names)
            figures = await drive(soak, args)
            async with httpx.AsyncClient() as admin:
                stats = (await admin.get(sim.url + "/_sim/stats")).json()
            twice = await _twice(client)
        await runner.cleanup()
        await engine.stop()
        await client.aclose()
        await db.dispose()
    emit(
        {
            **figures,
            "duplicate_actions": twice,
            "actions": stats["actions"],
            "http_429": stats["http_429"],
            **_layout(args),
        }
    )


async def _twice(client: MdeClient) -> int:
    """Actions beyond one per (request, device), read back from MDE by the ``[mde-chatops #N]`` tag.

    The simulator's own ``duplicate_actions`` counts every repeat of a type on a device over its lifetime,
    which a soak that isolates, releases and isolates the same device again legitimately produces.
    """
    seen: dict[tuple[str, str, str], int] = {}
    for action in await client.list_machine_actions():
        match = re.search(r"\[mde-chatops #(\d+)\]", action.requestor_comment or "")
        key = (match.group(1) if match else "?", action.machine_id, action.type)
        seen[key] = seen.get(key, 0) + 1
    return sum(n - 1 for n in seen.values() if n > 1)


def _layout(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "simulated_minutes": args.minutes,
        "time_scale": args.time_scale,
        "database": "postgresql" if args.postgres else "sqlite",
    }


async def drive(soak: Soak, args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    real_s = args.minutes * 60 / args.time_scale
    gap = 60 / args.time_scale / args.commands_per_minute * args.concurrency
    started = loop.time()
    samples: list[tuple[float, float]] = []

    async def operator(index: int) -> None:
        await asyncio.sleep(gap * index / args.concurrency)
        while loop.time() - started < real_s:
            next_at = loop.time() + gap
            try:
                await soak.one()
            except Exception as exc:  # counted, and the soak goes on
                soak.errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def monitor() -> None:
        while loop.time() - started < real_s:
            await soak.settle()
            # the console keeps what it printed (for tests and the demo); that is not the bot's memory
            soak.console.transcript.clear()
            soak.console.out.seek(0)
            soak.console.out.truncate()
            samples.append((loop.time() - started, rss_mb()))
            await asyncio.sleep(min(0.5, real_s / 20))

    await asyncio.gather(monitor(), *(operator(i) for i in range(args.concurrency)))
    deadline = loop.time() + 120
    while len(soak.finished) < len(soak.requests) and loop.time() < deadline:
        await soak.settle()
        await asyncio.sleep(0.2)
    lost = len(soak.requests) - len(soak.finished)
    commands = sorted(ms for kind, values in soak.latencies_ms.items() if kind != "incident" for ms in values)
    start_mb = _at(samples, 0.1 * real_s)
    middle_mb = _at(samples, 0.5 * real_s)
    end_mb = samples[-1][1] if samples else rss_mb()
    return {
        "calls_completed": soak.calls,
        "incidents_posted": soak.incidents,
        "requests_created": len(soak.requests),
        "requests_finished": len(soak.finished),
        "requests_unfinished": lost,
        "errors": len(soak.errors),
        "error_samples": soak.errors[:5],
        "p50_ms": _percentile(commands, 50),
        "p99_ms": _percentile(commands, 99),
        "by_kind_p50_p99_ms": {
            kind: [_percentile(sorted(values), 50), _percentile(sorted(values), 99)]
            for kind, values in sorted(soak.latencies_ms.items())
        },
        "rss_mb_start": round(start_mb, 1),
        "rss_mb_middle": round(middle_mb, 1),
        "rss_mb_end": round(end_mb, 1),
        "memory_flat": abs(end_mb - middle_mb) <= 0.10 * middle_mb,
        "real_seconds": round(loop.time() - started, 1),
    }


def _percentile(values: list[float], p: int) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, max(0, int(len(values) * p / 100 + 0.5) - 1))], 1)


def _at(samples: list[tuple[float, float]], when: float) -> float:
    """RSS at the first sample taken at or after ``when`` (seconds into the run)."""
    for at, mb in samples:
        if at >= when:
            return mb
    return samples[-1][1] if samples else rss_mb()


if __name__ == "__main__":
    asyncio.run(main())
