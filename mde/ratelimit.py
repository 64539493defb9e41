"""Stay under MDE's documented limits instead of bouncing off 429s.

Each endpoint family has sliding windows (100 calls per minute and 1,500 per hour by default; advanced
hunting 45 per minute, through MDE or Microsoft Graph; live response 10 per minute). A call is granted when
every window has room, otherwise it waits exactly until the oldest grant leaves the window, so a bulk run goes
at the documented pace with zero 429s. Grant times live behind ``LimiterBackend`` so several replicas can share
one budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mde.limiter_backends.base import LimiterBackend, Window
from mde.limiter_backends.memory import MemoryBackend

FAMILIES = (
    "machines_read",
    "machine_tags",
    "machine_actions",
    "machineactions_read",
    "advanced_queries",
    "indicators",
    "files_read",
    "live_response",
    "graph_hunting",
    # 100/min, 1,500/h ("Limitations"): https://learn.microsoft.com/defender-endpoint/api/get-alerts,
    # https://learn.microsoft.com/defender-endpoint/api/get-machine-related-alerts
    "alerts_read",
)
#: advanced hunting budgets: MDE's 45/min and 1,500/h (run-advanced-query-api.md); Graph documents "at least 45
#: calls per minute per tenant" and no hourly figure (security-api-overview.md), so it keeps MDE's 1,500/h too
HUNTING_FAMILIES = frozenset({"advanced_queries", "graph_hunting"})

#: how often an ordinary caller looks again while a priority caller of its family waits
PRIORITY_RECHECK_S = 0.01


@dataclass(frozen=True, slots=True)
class Grant:
    family: str
    at: float
    waited: float


@dataclass
class FamilyStats:
    granted: int = 0
    waited_s: float = 0.0
    throttled: int = 0


@dataclass
class RateLimiter:
    time_scale: float = 1.0
    minute_limit: int = 100
    hour_limit: int = 1500
    hunting_minute_limit: int = 45
    hunting_hour_limit: int = 1500
    #: run-live-response.md: 10 calls per minute (no hourly figure is documented)
    live_response_minute_limit: int = 10
    #: added to each window (real seconds) to absorb network jitter between our clock and MDE's
    margin_s: float = 0.02
    backend: LimiterBackend = field(default_factory=MemoryBackend)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    stats: dict[str, FamilyStats] = field(default_factory=dict)
    #: observation hook (metrics): called with (family, seconds waited) for every grant
    on_wait: Callable[[str, float], None] | None = None
    _paused_until: dict[str, float] = field(default_factory=dict)
    #: priority callers waiting per family (cancels): the others of that family step aside until they are served
    _priority_waiting: dict[str, int] = field(default_factory=dict)
    _sharing: set[asyncio.Task[None]] = field(default_factory=set)

    def windows(self, family: str) -> list[Window]:
        scale = self.time_scale
        if family in HUNTING_FAMILIES:
            limits = [(self.hunting_minute_limit, 60.0), (self.hunting_hour_limit, 3600.0)]
        elif family == "live_response":
            limits = [(self.live_response_minute_limit, 60.0)]
        else:
            limits = [(self.minute_limit, 60.0), (self.hour_limit, 3600.0)]
        return [(calls, seconds / scale + self.margin_s) for calls, seconds in limits]

    def _stats(self, family: str) -> FamilyStats:
        return self.stats.setdefault(family, FamilyStats())

    async def acquire(self, family: str, *, priority: bool = False) -> Grant:
        """Wait for a slot in every window of ``family``; call ``complete`` with the grant when answered.

        A ``priority`` caller (a cancel) is served before every ordinary caller of the family waiting in
        this process: they do not try for a slot while one waits.
        """
        if not priority:
            return await self._acquire(family, priority=False)
        self._priority_waiting[family] = self._priority_waiting.get(family, 0) + 1
        try:
            return await self._acquire(family, priority=True)
        finally:
            self._priority_waiting[family] -= 1

    async def _acquire(self, family: str, *, priority: bool) -> Grant:
        waited = 0.0
        while True:
            now = self.clock()
            if not priority and self._priority_waiting.get(family, 0):
                await self.sleep(PRIORITY_RECHECK_S)
                waited += PRIORITY_RECHECK_S
                continue
            pause = self._paused_until.get(family, 0.0) - now
            if pause > 0:
                await self.sleep(pause)
                waited += pause
                continue
            wait = await self.backend.try_acquire(family, self.windows(family), now)
            if wait <= 0:
                stats = self._stats(family)
                stats.granted += 1
                stats.waited_s += waited
                if self.on_wait is not None:
                    self.on_wait(family, waited)
                return Grant(family, now, waited)
            await self.sleep(wait)
            waited += wait

    async def complete(self, grant: Grant) -> None:
        """The call was answered: count it from now, the latest moment MDE can have received it.

        Without this, a call that sat in a busy event loop or a slow network reaches MDE later than we
        granted it, and the next window's first call can arrive while MDE still counts the old one.
        """
        await self.backend.complete(grant.family, grant.at, self.clock())

    def penalize(self, family: str, retry_after: float) -> None:
        """A 429 arrived anyway: every caller of this family pauses, not only the one that got it."""
        self._stats(family).throttled += 1
        until = self.clock() + max(0.0, retry_after)
        self._paused_until[family] = max(self._paused_until.get(family, 0.0), until)
        try:  # a shared budget pauses every replica, not only this one
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (tests calling penalize directly): the local pause stands
            return
        task = loop.create_task(self.backend.pause(family, until))
        self._sharing.add(task)
        task.add_done_callback(self._sharing.discard)

    def estimate_wait(self, family: str, n_calls: int) -> float:
        """Seconds until ``n_calls`` more calls of ``family`` could all have been granted."""
        if n_calls <= 0:
            return 0.0
        now = self.clock()
        windows = self.windows(family)
        longest = max(w for _, w in windows)
        times = sorted(min(t, now) for t in self.backend.grants(family, now - longest))
        start = max(now, self._paused_until.get(family, 0.0))
        t = start
        for _ in range(n_calls):
            t = start
            for calls, window in windows:
                if len(times) >= calls:
                    t = max(t, times[-calls] + window)
            times.append(t)
        return max(0.0, t - now)
