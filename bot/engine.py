"""Assemble the running engine: database, MDE client, policy, worker, ChatOps and delivery.

Used by ``serve``, ``demo`` and the end-to-end tests alike, so they all run the same wiring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from approvals.db import Database
from approvals.execution.flows import Worker, WorkerConfig
from approvals.policy import Policy
from approvals.resolution.flows import IncidentLookup
from approvals.service import ChatOps
from bot.delivery import Delivery
from bot.surfaces.base import ChatSurface
from mde.client import MdeClient

SurfacesFactory = Callable[[ChatOps], list[ChatSurface]]


@dataclass
class Engine:
    db: Database
    client: MdeClient
    policy: Policy
    worker: Worker
    chatops: ChatOps
    delivery: Delivery
    surfaces: list[ChatSurface]
    #: False for a web-only process when workers run in their own processes (PostgreSQL)
    run_worker: bool = True

    @classmethod
    def build(
        cls,
        *,
        db: Database,
        client: MdeClient,
        policy: Policy,
        make_surfaces: SurfacesFactory,
        limiter: Any = None,
        worker_config: WorkerConfig | None = None,
        owner: str | None = None,
        incidents: IncidentLookup | None = None,
        delivery_poll_s: float = 1.0,
        run_worker: bool = True,
    ) -> Engine:
        chatops = ChatOps(db, client, policy, limiter=limiter, incidents=incidents)
        worker = Worker(
            db, client, config=worker_config, owner=owner, limiter=limiter, on_tick=chatops.flows.expire_due
        )
        chatops.worker = worker
        surfaces = make_surfaces(chatops)
        delivery = Delivery(db, chatops, surfaces, owner=owner and f"{owner}-delivery", poll_s=delivery_poll_s)
        return cls(
            db=db,
            client=client,
            policy=policy,
            worker=worker,
            chatops=chatops,
            delivery=delivery,
            surfaces=surfaces,
            run_worker=run_worker,
        )

    async def start(self) -> None:
        for surface in self.surfaces:
            start = getattr(surface, "start", None)
            if start is not None:
                await start()
        if self.run_worker:
            await self.worker.start()
        await self.delivery.start()

    async def stop(self) -> None:
        await self.delivery.stop()
        await self.worker.stop()
        for surface in self.surfaces:
            stop = getattr(surface, "stop", None)
            if stop is not None:
                await stop()
