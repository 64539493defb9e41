"""The periodic loop (like Dispatch's ``scheduled.py``): settle approved schedule requests, claim due and
queued runs across replicas, execute them one by one."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from approvals.periodic import Periodic
from approvals.schedules.flows import ScheduleFlows

log = logging.getLogger(__name__)


@dataclass
class SchedulerConfig:
    #: how often a replica looks for due occurrences (a cheap indexed SELECT)
    tick_s: float = 5.0
    #: a run claimed longer ago than this by a scheduler that never finished it is run again (crash)
    stale_s: float = 900.0


class Scheduler:
    """The loop: settle approved schedule requests, claim due and queued runs, execute them one by one."""

    def __init__(
        self,
        flows: ScheduleFlows,
        *,
        wake: asyncio.Event | None = None,
        owner: str | None = None,
        config: SchedulerConfig | None = None,
    ) -> None:
        """``wake``: the event ``flows`` sets when a run is queued (``ChatOps(on_schedule_queued=wake.set)``)."""
        self.flows = flows
        self.owner = owner or f"scheduler-{uuid.uuid4().hex[:12]}"
        self.config = config or SchedulerConfig()
        self._loop = Periodic(self._round, interval_s=self.config.tick_s, name="scheduler tick", wake=wake)

    def wake(self) -> None:
        """Look now, not at the next tick."""
        self._loop.wake()

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def tick(self) -> int:
        """One round; returns how many runs this scheduler executed (tests call it directly)."""
        await self.flows.activation.settle_approved()
        runs = await self.flows.runs.claim(self.owner, stale=timedelta(seconds=self.config.stale_s))
        for run in runs:
            try:
                await self.flows.runs.execute(run, self.owner)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: the run stays claimed and is retried once its claim is stale
                log.exception("schedule run %s failed unexpectedly", run.id)
        return len(runs)

    async def _round(self) -> bool:
        await self.tick()
        return False  # the next round waits for the tick (or a wake)
