"""Assemble the running engine: database, MDE client, policy, worker, ChatOps and delivery.

Used by ``serve``, ``demo`` and the end-to-end tests alike, so they all run the same wiring.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from approvals.containment.service import record_outcomes
from approvals.db import Database
from approvals.execution.flows import Worker, WorkerConfig
from approvals.incidents.flows import IncidentFlows
from approvals.incidents.rules import RuleSet
from approvals.policy import Policy
from approvals.schedules.scheduled import Scheduler, SchedulerConfig
from approvals.service import ChatOps
from bot.containment_reconcile import ReconcileConfig, Reconciler
from bot.containment_timers import ContainmentTimers
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
    incidents: IncidentFlows
    #: False for a web-only process when workers run in their own processes (PostgreSQL)
    run_worker: bool = True
    #: runs tag schedules; started with the worker
    scheduler: Scheduler | None = None
    #: reads MDE's isolate/unisolate actions for drift; started with the worker unless None
    reconciler: Reconciler | None = None
    #: time-boxed releases and reminders, run by the worker's housekeeping
    timers: ContainmentTimers | None = None

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
        rules: RuleSet | None = None,
        delivery_poll_s: float = 1.0,
        delivery_lease_s: float = 30.0,
        run_worker: bool = True,
        reconcile: ReconcileConfig | None = None,
    ) -> Engine:
        schedule_queued = asyncio.Event()  # `schedule run N` wakes the scheduler at once

        async def housekeeping() -> None:  # chatops and timers are built below: hooks go to constructors
            await chatops.flows.expire_due()
            await timers.maybe_tick()

        async def doctor() -> str:
            from bot.doctor import doctor_report  # only when an admin asks

            return await doctor_report(db=db, policy=policy)

        worker = Worker(
            db,
            client,
            config=worker_config,
            owner=owner,
            limiter=limiter,
            on_tick=housekeeping,
            on_final=record_outcomes,
        )
        chatops = ChatOps(
            db, client, policy, worker=worker, limiter=limiter, on_schedule_queued=schedule_queued.set, doctor=doctor
        )
        timers = ContainmentTimers(db, chatops, chatops.clock)
        scheduler = Scheduler(
            chatops.schedules,
            wake=schedule_queued,
            owner=owner and f"{owner}-scheduler",
            config=SchedulerConfig(tick_s=5 * worker.config.housekeeping_s),
        )
        surfaces = make_surfaces(chatops)
        delivery = Delivery(
            db,
            chatops,
            surfaces,
            owner=owner and f"{owner}-delivery",
            poll_s=delivery_poll_s,
            lease_s=delivery_lease_s,
        )
        return cls(
            db=db,
            client=client,
            policy=policy,
            worker=worker,
            chatops=chatops,
            delivery=delivery,
            surfaces=surfaces,
            incidents=IncidentFlows(db, chatops, rules or RuleSet()),
            run_worker=run_worker,
            scheduler=scheduler,
            timers=timers,
            reconciler=None
            if reconcile is None
            else Reconciler(db, chatops, owner=owner and f"{owner}-reconciler", config=reconcile),
        )

    async def start(self) -> None:
        for surface in self.surfaces:
            await surface.start()
        if self.run_worker:
            await self.worker.start()
            if self.scheduler is not None:
                await self.scheduler.start()
            if self.reconciler is not None:
                await self.reconciler.start()
        await self.delivery.start()

    async def stop(self) -> None:
        await self.delivery.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.reconciler is not None:
            await self.reconciler.stop()
        await self.worker.stop()
        for surface in self.surfaces:
            await surface.stop()
