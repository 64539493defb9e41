"""Stay under MDE's documented limits instead of bouncing off 429s.

Each endpoint family has sliding windows (100 calls per minute and 1,500 per hour by default; advanced
hunting 45 per minute, through MDE or Microsoft Graph; live response 10 per minute). A call is granted when
every window has room, otherwise it waits exactly until the oldest grant leaves the window, so a bulk run goes
at the documented pace with zero 429s. Grant times live behind ``LimiterBackend`` so several replicas can share
one budget.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

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
)
#: advanced hunting budgets: MDE's 45/min and 1,500/h (run-advanced-query-api.md); Graph documents "at least 45
#: calls per minute per tenant" and no hourly figure (security-api-overview.md), so it keeps MDE's 1,500/h too
HUNTING_FAMILIES = frozenset({"advanced_queries", "graph_hunting"})

Window = tuple[int, float]  # (calls, seconds)
IN_FLIGHT_RECHECK_S = 0.005


class LimiterBackend(Protocol):
    async def try_acquire(self, family: str, windows: list[Window], now: float) -> float:
        """Record a grant and return 0.0, or record nothing and return the seconds to wait."""
        ...

    async def complete(self, family: str, granted_at: float, done_at: float) -> None:
        """Move a grant to when its answer arrived: MDE counted the call no later than that."""
        ...

    def grants(self, family: str, since: float) -> list[float]:
        """Recent grant times (for estimates); may be a local approximation for shared backends."""
        ...


class MemoryBackend:
    """Answered calls as sorted answer times, plus a count of calls still in flight per family.

    A call in flight may reach MDE at any moment until its answer arrives, so it occupies every window
    until then; once answered it is counted from its answer time.
    """

    def __init__(self) -> None:
        self._answered: dict[str, list[float]] = {}
        self._in_flight: dict[str, int] = {}

    async def try_acquire(self, family: str, windows: list[Window], now: float) -> float:
        answered = self._answered.setdefault(family, [])
        longest = max(w for _, w in windows)
        cut = bisect.bisect_right(answered, now - longest)
        if cut:
            del answered[:cut]
        in_flight = self._in_flight.get(family, 0)
        wait = 0.0
        for calls, window in windows:
            first = bisect.bisect_right(answered, now - window)
            in_window = len(answered) - first
            excess = in_window + in_flight - calls + 1
            if excess <= 0:
                continue
            if excess <= in_window:
                wait = max(wait, answered[first + excess - 1] + window - now)
            else:  # only answers still to come can free the window: look again shortly
                wait = max(wait, IN_FLIGHT_RECHECK_S)
        if wait > 0:
            return wait
        self._in_flight[family] = in_flight + 1
        return 0.0

    async def complete(self, family: str, granted_at: float, done_at: float) -> None:
        self._in_flight[family] = max(0, self._in_flight.get(family, 0) - 1)
        bisect.insort(self._answered.setdefault(family, []), max(granted_at, done_at))

    def grants(self, family: str, since: float) -> list[float]:
        answered = self._answered.get(family, [])
        now_like = [float("inf")] * self._in_flight.get(family, 0)
        return answered[bisect.bisect_right(answered, since) :] + now_like


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

    async def acquire(self, family: str) -> Grant:
        """Wait for a slot in every window of ``family``; call ``complete`` with the grant when answered."""
        waited = 0.0
        while True:
            now = self.clock()
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
        share = getattr(self.backend, "pause", None)  # a shared budget pauses every replica, not only this one
        if share is not None:
            try:
                task = asyncio.get_running_loop().create_task(share(family, until))
            except RuntimeError:  # no event loop (tests calling penalize directly): the local pause stands
                return
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
