"""The whole engine on loopback for end-to-end tests: MDE simulator (real HTTP), real client, a real
database, the worker and the delivery loop, with whichever surfaces the test plugs in."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from approvals.db import Database
from approvals.execution.flows import WorkerConfig
from approvals.incidents.rules import RuleSet
from approvals.policy import Policy
from approvals.requests.models import RequestRecord
from approvals.service import ChatOps
from bot.engine import Engine
from bot.metrics import Metrics
from bot.server import build_app, start_site
from bot.surfaces.base import ChatSurface
from mde.auth import StaticTokenProvider
from mde.client import MdeClient
from mde.graph import GraphClient
from mde.ratelimit import RateLimiter
from mde.simulator import Simulator, SimulatorConfig
from tests.support.databases import database

FAST_WORKER = WorkerConfig(
    concurrency=8,
    poll_interval_s=0.2,
    heartbeat_s=0.5,
    stale_s=3.0,
    idle_wait_s=0.2,
    housekeeping_s=0.2,
    progress_interval_s=0.2,
    retry_base_s=0.2,
    retry_max_s=2.0,
)


@dataclass
class Stack:
    sim: Simulator
    client: MdeClient
    limiter: RateLimiter
    db: Database
    engine: Engine
    #: the ``/metrics`` registry the client's and limiter's hooks feed
    metrics: Metrics
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def chatops(self) -> ChatOps:
        return self.engine.chatops

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        make_surfaces: Callable[[ChatOps], list[ChatSurface]] | None = None,
        *,
        devices: int = 200,
        time_scale: float = 60.0,
        db_kind: str = "sqlite",
        db: Database | None = None,
        policy: Policy | None = None,
        sim_config: SimulatorConfig | None = None,
        worker_config: WorkerConfig | None = None,
        owner: str | None = None,
        start_engine: bool = True,
        rules: RuleSet | None = None,
        sim: Simulator | None = None,
    ) -> AsyncIterator[Stack]:
        """``sim``: another stack's simulator, so several replicas act on one tenant."""
        async with AsyncExitStack() as stack:
            if sim is None:
                sim = Simulator(sim_config or SimulatorConfig(devices=devices, time_scale=time_scale))
                await sim.start()
                stack.push_async_callback(sim.stop)
            config = sim.config
            if db is None:
                tmp = stack.enter_context(tempfile.TemporaryDirectory())
                db = await stack.enter_async_context(database(db_kind, Path(tmp)))
            metrics = Metrics(db)  # wired as `mde-chatops serve` wires it: hooks passed to the constructors
            limiter = RateLimiter(time_scale=config.time_scale, on_wait=metrics.observe_wait)
            graph_token = StaticTokenProvider(config.graph_token or config.token or "sim-token")
            graph = GraphClient(sim.url, graph_token, limiter=limiter)
            client = MdeClient(
                sim.url,
                StaticTokenProvider(config.token or "sim-token"),
                limiter=limiter,
                graph=graph,
                on_response=metrics.observe_response,
            )
            stack.push_async_callback(client.aclose)
            engine = Engine.build(
                db=db,
                client=client,
                policy=policy or Policy.demo(),
                make_surfaces=make_surfaces or (lambda _chatops: []),
                limiter=limiter,
                worker_config=worker_config or FAST_WORKER,
                owner=owner,
                delivery_poll_s=0.1,
                rules=rules,
            )
            if start_engine:
                await engine.start()
            stack.push_async_callback(engine.stop)
            yield cls(sim=sim, client=client, limiter=limiter, db=db, engine=engine, metrics=metrics)

    async def record(self, request_id: int) -> RequestRecord:
        async with self.db.sessions() as session:
            record = await session.get(RequestRecord, request_id)
        assert record is not None, f"no request #{request_id}"
        return record

    async def wait_for_state(self, request_id: int, states: Collection[str], timeout: float = 60.0) -> str:
        """Wait until the request reaches one of ``states`` and its summary went out; returns the state."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            record = await self.record(request_id)
            done = record.state in states and (
                record.summarized_at is not None
                or not record.verb.runs_jobs  # a schedule request: no summary, its activation closes it
                or record.state in ("pending", "approved", "executing", "rejected", "expired")
            )
            if done:
                for surface in self.engine.surfaces:
                    await self.engine.delivery.drain(surface.name)
                return record.state
            if loop.time() > deadline:
                raise AssertionError(f"request #{request_id} is {record.state}, not in {sorted(states)}")
            await asyncio.sleep(0.05)


@asynccontextmanager
async def served(
    make_surfaces: Callable[[ChatOps], list[ChatSurface]], **options: Any
) -> AsyncIterator[tuple[Stack, str, httpx.AsyncClient]]:
    """The stack with its surfaces' routes on the project's web server on loopback: (stack, base URL, client)."""
    surfaces: list[ChatSurface] = []

    def make(chatops: ChatOps) -> list[ChatSurface]:
        surfaces.extend(make_surfaces(chatops))
        return surfaces

    async with Stack.start(make_surfaces=make, **options) as stack:
        runner, port = await start_site(build_app(stack.db, surfaces), "127.0.0.1", 0)
        try:
            async with httpx.AsyncClient(timeout=15) as http:
                yield stack, f"http://127.0.0.1:{port}", http
        finally:
            await runner.cleanup()


@asynccontextmanager
async def served_from_settings(
    values: dict[str, Any], **options: Any
) -> AsyncIterator[tuple[Stack, str, httpx.AsyncClient]]:
    """The chat surfaces ``mde-chatops serve`` builds from these settings, served like ``served``."""
    from bot.config import load_settings
    from bot.serve import build_surfaces

    settings = load_settings(**values)
    async with served(lambda chatops: build_surfaces(settings, chatops), **options) as running:
        yield running
