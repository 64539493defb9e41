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

Recovery after kill -9 (``--kill-at 0.3 --replicas 2``): once that share of the devices has an action and
jobs are mid-call, every replica gets SIGKILL and is started again at once under the same identity (what
``WORKER_ID`` gives a StatefulSet pod). Each replica runs the whole engine (worker and delivery to a recording
console surface, production's 30 s ``WORKER_STALE_S`` and ``DELIVERY_LEASE_S``), so the figures show whether
recovery waited for a stale heartbeat or an expired lease. The calls a killed replica had in flight keep their
place in the shared budget until their TTL (twice the client's 30 s timeout: about MDE's minute window, so in
production they cost what an answered call costs); the replicas scale that TTL like every other time constant,
or at time scale 60 it would hold a simulated hour of budget. Added to the JSON line, in seconds from the
restart (the new processes' spawn, Python's start-up included): ``restart_to_ready_s``,
``restart_to_first_mde_call_s`` (any MDE call: the takeover's look-up for the dead workers' claims comes
first), ``restart_to_first_submission_s``, ``restart_to_claims_resumed_s`` (every job the dead workers held
in ``submitting`` claimed again by a live worker), ``restart_to_first_thread_message_s`` (the first thing the
chat surface showed: a card update or a thread line), ``restart_to_first_thread_line_s`` (the first line
posted in the thread: it waits for the next progress milestone, so it follows MDE's pace, not recovery),
``longest_submission_gap_after_restart_s`` (a stall anywhere after the restart shows here),
``claims_at_kill``, ``per_device_lookups_after_restart`` (look-ups of one device's actions: a takeover lists
a request's actions once instead) and ``devices_actioned_twice`` (devices with more than one accepted action
in the simulator's request log).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from approvals.db import Database
from approvals.execution.models import Job, JobState
from approvals.identity import Origin
from approvals.migrate import upgrade_async
from approvals.policy import Policy
from approvals.requests.models import RequestDevice, RequestRecord
from approvals.service import ChatOps
from approvals.views import IncidentView, RequestView
from benchmarks.common import BENCH_POLICY, BENCH_TAG, ROOT, SimProcess, bench_worker_config, emit, min_possible_s
from bot.console.repl import console_actor
from bot.engine import Engine
from bot.surfaces.base import MessageRef
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.limiter_backends.base import LimiterBackend
from mde.limiter_backends.from_url import limiter_backend_from_url
from mde.limiter_backends.postgres import PostgresBackend
from mde.limiter_backends.shared import DEFAULT_IN_FLIGHT_TTL_S
from mde.ratelimit import RateLimiter

FINAL_STATES = ("Succeeded", "Failed", "TimeOut", "Cancelled")


def shared_limiter(backend: LimiterBackend, time_scale: float) -> RateLimiter:
    return RateLimiter(time_scale=time_scale, backend=backend, clock=backend.clock)


class RecordingSurface:
    """The console surface of a replica: each thing shown is one JSON line on stdout, stamped with
    ``time.monotonic()`` (system-wide on Linux, so the benchmark process can compare it with its own)."""

    name = "console"

    def __init__(self) -> None:
        self._ids = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _show(self, kind: str) -> None:
        print(json.dumps({"t": time.monotonic(), "shown": kind}), flush=True)

    async def post_request(
        self, channel_id: str, view: RequestView, context: str | None, thread_id: str | None = None
    ) -> MessageRef:
        self._show("card")
        self._ids += 1
        return MessageRef(surface=self.name, channel_id=channel_id, message_id=f"{time.time_ns()}-{self._ids}")

    async def update_request(self, ref: MessageRef, view: RequestView) -> None:
        self._show("update")

    async def post_in_thread(self, ref: MessageRef, text: str) -> None:
        self._show("thread")

    async def post_notification(self, channel_id: str, view: IncidentView, context: str | None) -> MessageRef:
        return MessageRef(surface=self.name, channel_id=channel_id, message_id="incident")

    async def update_notification(self, ref: MessageRef, view: IncidentView) -> None:
        return None

    async def post_summary(self, ref: MessageRef, view: RequestView, csv_text: str) -> None:
        self._show("summary")


async def replica(db_url: str, sim_url: str, owner: str, time_scale: float, limiter_url: str) -> None:
    """One replica: ``python -m benchmarks.replicas --worker DB_URL SIM_URL OWNER TIME_SCALE LIMITER_URL``.

    The engine as ``mde-chatops serve`` builds it with ``WORKER_ID=OWNER``: worker and delivery, both under
    that identity, so a replica restarted with the same OWNER is the same replica coming back."""
    db = Database(db_url)
    # a grant whose answer never came (its process was killed mid-call) counts in every window until this TTL:
    # 60 real seconds, about MDE's minute window in production, but an hour of budget at time scale 60
    ttl = max(2.0, DEFAULT_IN_FLIGHT_TTL_S / time_scale)
    backend = limiter_backend_from_url(limiter_url, in_flight_ttl_s=ttl)
    limiter = shared_limiter(backend, time_scale)
    client = MdeClient(sim_url, StaticTokenProvider("sim-token"), limiter=limiter)
    engine = Engine.build(
        db=db,
        client=client,
        policy=Policy.from_dict(BENCH_POLICY),
        make_surfaces=lambda _chatops: [RecordingSurface()],
        limiter=limiter,
        worker_config=bench_worker_config(time_scale),
        owner=owner,
    )
    await engine.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


class Replica:
    """A replica process and what its surface showed (read from its stdout as it runs)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.shown: list[tuple[float, str]] = []
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def spawn(cls, db_url: str, sim_url: str, owner: str, time_scale: float, limiter_url: str) -> Replica:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.replicas",
            "--worker",
            db_url,
            sim_url,
            owner,
            str(time_scale),
            limiter_url,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def ready(self) -> None:
        assert self.proc.stdout is not None
        while (line := await self.proc.stdout.readline()).strip() != b"ready":
            assert line, "the replica exited before it was ready"
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                self.shown.append((float(entry["t"]), str(entry["shown"])))

    async def end(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


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


async def submitting_jobs(db: Database) -> dict[int, int]:
    """Jobs mid-call (claimed, action id not stored yet) -> how many times they were claimed."""
    async with db.sessions() as session:
        rows = await session.execute(select(Job.id, Job.attempts).where(Job.state == JobState.SUBMITTING.value))
        return {int(job_id): int(attempts) for job_id, attempts in rows}


async def still_held(db: Database, held: dict[int, int]) -> int:
    """How many of the dead lives' claims no live worker has claimed again (same attempt, still submitting)."""
    async with db.sessions() as session:
        rows = await session.execute(select(Job.id, Job.state, Job.attempts).where(Job.id.in_(held)))
        return sum(
            1 for job_id, state, attempts in rows if state == JobState.SUBMITTING.value and attempts == held[job_id]
        )


async def kill_and_restart(
    db: Database, sim: SimProcess, workers: list[Replica], spawn: Any, at: int
) -> tuple[list[Replica], dict[str, Any]]:
    """Wait until ``at`` devices have an action and some jobs are mid-call, SIGKILL every replica, start
    them again under the same identities; returns the new replicas and the recovery figures."""
    while True:
        if (await sim.stats())["actions"] >= at and await submitting_jobs(db):
            break
        await asyncio.sleep(0.02)
    for worker in workers:
        worker.proc.send_signal(signal.SIGKILL)
    for worker in workers:
        await worker.end()
    held = await submitting_jobs(db)  # what the dead held: nothing of theirs moves any more
    restarted = time.monotonic()
    fresh = [await spawn(i) for i in range(len(workers))]
    for worker in fresh:
        await worker.ready()
    ready = time.monotonic()
    while await still_held(db, held):
        assert time.monotonic() - restarted < 120, "the dead workers' claims were not resumed"
        await asyncio.sleep(0.02)
    return fresh, {
        "claims_at_kill": len(held),
        "restarted_mono": restarted,
        "restart_to_ready_s": round(ready - restarted, 3),
        "restart_to_claims_resumed_s": round(time.monotonic() - restarted, 3),
    }


async def mde_calls(sim_url: str, restarted: float | None) -> dict[str, Any]:
    """From the simulator's request log: devices actioned twice and, after a restart, when MDE heard from the
    replicas again."""
    import httpx

    async with httpx.AsyncClient(timeout=60) as http:
        log = (await http.get(sim_url + "/_sim/requests")).json()
    accepted = [e for e in log if e["family"] == "machine_actions" and e["method"] == "POST" and e["status"] == 201]
    per_device = Counter(e["path"].rsplit("/", 2)[-2] for e in accepted)
    out: dict[str, Any] = {"devices_actioned_twice": sum(1 for count in per_device.values() if count > 1)}
    if restarted is None:
        return out
    after = [e for e in log if e["received"] >= restarted]
    submitted = sorted(e["time"] for e in accepted if e["received"] >= restarted)
    gaps = [b - a for a, b in zip([restarted, *submitted], submitted, strict=False)]
    out["restart_to_first_mde_call_s"] = round(min(e["received"] for e in after) - restarted, 3) if after else None
    out["restart_to_first_submission_s"] = round(submitted[0] - restarted, 3) if submitted else None
    out["longest_submission_gap_after_restart_s"] = round(max(gaps[1:], default=0.0), 3)
    out["per_device_lookups_after_restart"] = sum(
        1 for e in after if e["family"] == "machineactions_read" and "machineId" in str(e["query"])
    )
    return out


def first_shown_after(workers: list[Replica], since: float, kinds: set[str]) -> float | None:
    times = [t for w in workers for t, kind in w.shown if t >= since and kind in kinds]
    return round(min(times) - since, 3) if times else None


async def run(
    n: int,
    replicas: int,
    time_scale: float,
    backend_kind: str = "postgres",
    timeline: bool = False,
    kill_at: float | None = None,
) -> dict[str, Any]:
    from tests.support.databases import postgres_url

    recovery: dict[str, Any] = {}
    async with postgres_url() as url, SimProcess(n, time_scale) as sim:
        await upgrade_async(url)
        limiter_url = url if backend_kind == "postgres" else "memory://"

        async def spawn(i: int) -> Replica:
            return await Replica.spawn(url, sim.url, f"replica-{i}", time_scale, limiter_url)

        workers = [await spawn(i) for i in range(replicas)]
        db = Database(url)
        backend = PostgresBackend(url)
        client = MdeClient(sim.url, StaticTokenProvider("sim-token"), limiter=shared_limiter(backend, time_scale))
        try:
            for worker in workers:
                await worker.ready()
            chatops = ChatOps(db, client, Policy.from_dict(BENCH_POLICY))
            reply = await chatops.handle(
                console_actor("alice"), Origin("console", "bench"), f'isolate tag:"{BENCH_TAG}" --reason "benchmark"'
            )
            assert reply.request is not None, reply.text
            request_id = reply.request.id
            decision = await chatops.decide(console_actor("bob"), request_id, approve=True)
            assert not decision.error, decision.text
            started = time.monotonic()
            if kill_at is not None:
                workers, recovery = await kill_and_restart(db, sim, workers, spawn, max(1, int(kill_at * n)))
            while True:
                async with db.sessions() as session:
                    record = await session.get(RequestRecord, request_id)
                    assert record is not None
                    if record.summarized_at is not None:
                        break
                assert time.monotonic() - started < 20 * min_possible_s(n, time_scale), "the run did not finish"
                await asyncio.sleep(0.05)
            stats = await sim.stats()
            calls = await mde_calls(sim.url, recovery.get("restarted_mono"))
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
            for worker in workers:
                await worker.end()
            await client.aclose()
            await backend.aclose()
            await db.dispose()
    if recovery:
        restarted = recovery.pop("restarted_mono")
        recovery["restart_to_first_thread_message_s"] = first_shown_after(workers, restarted, {"update", "thread"})
        recovery["restart_to_first_thread_line_s"] = first_shown_after(workers, restarted, {"thread"})
        recovery.update(calls)
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
        **recovery,
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
    parser.add_argument(
        "--kill-at",
        type=float,
        default=None,
        metavar="SHARE",
        help="SIGKILL every replica once this share of the devices has an action, restart them, time the recovery",
    )
    args = parser.parse_args()
    emit(await run(args.n, args.replicas, args.time_scale, args.backend, args.timeline, args.kill_at))


if __name__ == "__main__":
    asyncio.run(main())
