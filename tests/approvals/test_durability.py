"""Crash and resume, concurrent approvals on two engines, and a chat surface that is down for a while."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from approvals.db import Database
from approvals.execution.flows import Worker, WorkerConfig
from approvals.execution.models import Job
from approvals.models import create_all
from approvals.requests.models import RequestDevice
from approvals.service import ChatOps
from approvals.views import IncidentView, RequestView
from bot.surfaces.base import MessageRef
from mde.simulator import SimulatorConfig
from tests.support.actors import ALICE, BOB, CAROL, HERE
from tests.support.databases import postgres_url
from tests.support.stack import Stack

ROOT = Path(__file__).parents[2]


async def _count(db: Database, *where: object) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(RequestDevice).where(*where)) or 0)


async def _submitting(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Job).where(Job.state == "submitting")) or 0)


def _spawn(db_url: str, sim_url: str, owner: str, stale_s: float = 1.5) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.worker_process", db_url, sim_url, owner, "20", str(stale_s)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize(
    ("kind", "restarted_as", "stale_s"),
    [
        ("sqlite", "worker-b", 1.5),
        ("postgres", "worker-b", 1.5),
        # the same replica restarted under its WORKER_ID adopts its claims at once: with a 10-minute stale
        # window, only that path can finish the run before the wait below gives up
        ("sqlite", "worker-a", 600.0),
        ("postgres", "worker-a", 600.0),
    ],
)
async def test_a_killed_worker_resumes_with_nothing_twice_and_nothing_lost(
    kind: str, restarted_as: str, stale_s: float, tmp_path: Path
) -> None:
    async def run(url: str) -> None:
        db = Database(url)
        await create_all(db)
        async with Stack.start(
            db=db,
            devices=600,
            start_engine=False,
            sim_config=SimulatorConfig(devices=600, time_scale=60, latency_s=0.005),
        ) as stack:
            reply = await stack.chatops.handle(ALICE, HERE, 'scan tag:"Finance Laptops" tag:VIP --reason crash')
            assert reply.request is not None
            request_id, total = reply.request.id, reply.request.device_count
            assert not (await stack.chatops.decide(BOB, request_id, approve=True)).error
            assert not (await stack.chatops.decide(CAROL, request_id, approve=True)).error  # > 50 devices: two
            assert (await stack.record(request_id)).state == "approved"
            first = _spawn(url, stack.sim.url, "worker-a", stale_s)
            try:
                for _ in range(600):  # the first worker is mid-run: some submitted, most not, a batch in flight
                    if len(stack.sim.tenant.actions) >= 25 and await _submitting(db):
                        break
                    await asyncio.sleep(0.02)
            finally:
                first.send_signal(signal.SIGKILL)
                output = first.communicate()[0].decode(errors="replace")
            assert 0 < len(stack.sim.tenant.actions) < total, output[-3000:]
            second = _spawn(url, stack.sim.url, restarted_as, stale_s)
            try:
                for _ in range(1500):
                    if (await stack.record(request_id)).summarized_at is not None:
                        break
                    await asyncio.sleep(0.05)
            finally:
                second.terminate()
                second.wait()
            record = await stack.record(request_id)
            assert record.state == "succeeded", record.state
            assert stack.sim.stats()["duplicate_actions"] == 0
            per_device = [a.machine_id for a in stack.sim.tenant.actions.values()]
            assert len(per_device) == len(set(per_device)) == total
            assert await _count(db, RequestDevice.request_id == request_id, RequestDevice.state == "Succeeded") == total
        await db.dispose()

    if kind == "postgres":
        async with postgres_url() as url:
            await run(url)
    else:
        await run(f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}")


async def test_two_engines_clicking_approve_together_execute_once_on_postgres() -> None:
    async with postgres_url() as url:
        db_a, db_b = Database(url), Database(url)
        await create_all(db_a)
        async with Stack.start(db=db_a, start_engine=False) as stack:
            other = ChatOps(db_b, stack.client, stack.engine.policy)
            names = sorted(
                m["computerDnsName"]
                for m in stack.sim.tenant.machines.values()
                if m["computerDnsName"].startswith("ws-0") and m["healthStatus"] == "Active"
            )
            for name in names[:5]:
                reply = await stack.chatops.handle(ALICE, HERE, f"scan device:{name} --reason r")
                assert reply.request is not None
                request_id = reply.request.id
                results = await asyncio.gather(
                    stack.chatops.decide(BOB, request_id, approve=True),
                    other.decide(CAROL, request_id, approve=True),
                )
                assert sorted(r.error for r in results) == [False, True], [r.text for r in results]
                # both engines' workers create the approved request's jobs at once: one wins
                await asyncio.gather(stack.engine.worker.prepare_once(), Worker(db_b, stack.client).prepare_once())
                async with db_a.sessions() as session:
                    jobs = await session.scalar(
                        select(func.count()).select_from(Job).where(Job.request_id == request_id)
                    )
                assert jobs == 1
        await db_b.dispose()
        await db_a.dispose()


class FlakySurface:
    """A chat platform that is down until told otherwise; records what it finally received, in order."""

    name = "console"

    def __init__(self) -> None:
        self.up = False
        self.received: list[str] = []

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    def _check(self) -> None:
        if not self.up:
            raise ConnectionError("chat platform is down")

    async def post_request(
        self, channel_id: str, view: RequestView, context: str | None, thread_id: str | None = None
    ) -> MessageRef:
        self._check()
        self.received.append(f"card {view.id}")
        return MessageRef("console", channel_id, str(view.id))

    async def post_notification(self, channel_id: str, view: IncidentView, context: str | None) -> MessageRef:
        self._check()
        self.received.append(f"incident {view.id}")
        return MessageRef("console", channel_id, f"incident-{view.id}")

    async def update_notification(self, ref: MessageRef, view: IncidentView) -> None:
        self._check()
        self.received.append(f"incident-update {view.id}")

    async def update_request(self, ref: MessageRef, view: RequestView) -> None:
        self._check()
        self.received.append(f"update {view.id} {view.state}")

    async def post_in_thread(self, ref: MessageRef, text: str) -> None:
        self._check()
        self.received.append(f"thread {ref.message_id}")

    async def post_summary(self, ref: MessageRef, view: RequestView, csv_text: str) -> None:
        self._check()
        self.received.append(f"summary {view.id} {view.state} {csv_text.count(chr(10)) - 1}")


async def test_reports_queue_while_the_chat_platform_is_down_and_arrive_in_order() -> None:
    surface = FlakySurface()
    async with Stack.start(make_surfaces=lambda _c: [surface]) as stack:
        stack.engine.delivery.max_backoff_s = 0.2
        request_id = (await stack.chatops.handle(ALICE, HERE, "scan device:ws-0005 --reason r")).request.id  # type: ignore[union-attr]
        await stack.chatops.decide(BOB, request_id, approve=True)
        for _ in range(400):
            if (await stack.record(request_id)).summarized_at is not None:
                break
            await asyncio.sleep(0.02)
        assert surface.received == []
        surface.up = True
        for _ in range(400):
            if any(r.startswith("summary") for r in surface.received):
                break
            await asyncio.sleep(0.02)
        received = surface.received
        assert received[0] == f"card {request_id}"
        summary = received.index(f"summary {request_id} succeeded 1")
        assert any(r.startswith("thread") for r in received[1:summary])  # the thread lines came before it
        assert all(r.startswith("update") for r in received[summary + 1 :])  # at most a re-render after


async def test_a_second_process_under_the_same_worker_id_fences_off_the_first(tmp_path: Path) -> None:
    """WORKER_ID must be unique per live process; if two ever share one, the older stops instead of racing."""
    async with Stack.start(devices=10, start_engine=False) as stack:
        fast = WorkerConfig(heartbeat_s=0.05, idle_wait_s=0.05, poll_interval_s=0.05, housekeeping_s=0.05)
        older = Worker(stack.db, stack.client, owner="replica-1", config=fast)
        newer = Worker(stack.db, stack.client, owner="replica-1", config=fast)
        await older.start()
        try:
            await newer.start()
            for _ in range(400):
                if older.superseded:
                    break
                await asyncio.sleep(0.01)
            assert older.superseded and not newer.superseded
            await asyncio.wait(older._tasks, timeout=5)
            assert all(task.done() for task in older._tasks)  # nothing of the older one runs any more
            assert not any(task.done() for task in newer._tasks)
        finally:
            await newer.stop()
            await older.stop()
