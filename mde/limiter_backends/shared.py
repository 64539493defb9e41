"""What every backend that several processes share does locally: one MDE budget for every replica.

MDE counts calls per tenant, not per process, so replicas that each kept their own ``MemoryBackend`` would
together exceed the documented limits. These backends keep grants where every replica sees them, with the
same rules as ``MemoryBackend``: a call in flight occupies every window until its answer arrives, then counts
from its answer time; grants older than the longest window are pruned. Check-and-record is atomic (one
transaction under a per-family advisory lock in PostgreSQL; one Lua script in Redis).

Clock: grant times are wall-clock Unix seconds (``time.time()``), written by one process and read by others,
possibly on other hosts; a monotonic clock means nothing outside its own host. Hosts must keep their clocks
in sync (NTP keeps them within milliseconds; ``RateLimiter.margin_s`` absorbs that). Build the limiter with
``RateLimiter(backend=backend, clock=backend.clock)``; a shared backend refuses monotonic times.

Crash safety: a grant still in flight after ``in_flight_ttl_s`` (default twice the client's 30 s timeout, by
which its answer must have arrived) belonged to a process that died: it counts as answered at its grant time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from mde.limiter_backends.base import Window

log = logging.getLogger(__name__)

#: twice ``MdeClient``'s default timeout: an answer (or a timeout) must have arrived by then
DEFAULT_IN_FLIGHT_TTL_S = 60.0
#: 2001-09-09 in Unix seconds; a smaller "now" comes from a monotonic clock
WALL_CLOCK_FLOOR = 1e9


class SharedBackend:
    """What every shared backend does locally: wall-clock check, one database attempt at a time per family,
    no attempt while a previous one said the window is full, and a snapshot of grants for estimates."""

    #: the clock a ``RateLimiter`` on this backend must use
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, in_flight_ttl_s: float = DEFAULT_IN_FLIGHT_TTL_S) -> None:
        self.in_flight_ttl_s = in_flight_ttl_s
        self.owner = uuid.uuid4().hex[:16]
        self._locks: dict[str, asyncio.Lock] = {}
        self._not_before: dict[tuple[str, tuple[Window, ...]], float] = {}
        self._tokens: dict[tuple[str, float], deque[Any]] = {}
        self._shortest: dict[str, float] = {}
        self._snapshots: dict[str, tuple[float, list[float]]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    # -- what a concrete backend implements -------------------------------------------------------------
    async def _try(self, family: str, windows: list[Window], now: float) -> tuple[float, Any]:
        """One atomic check-and-record: (0.0, token of the new grant) or (seconds to wait, None)."""
        raise NotImplementedError

    async def _complete(self, family: str, token: Any, done_at: float) -> None:
        raise NotImplementedError

    async def _times(self, family: str, now: float) -> list[float]:
        """Counted times of the grants still in some window; ``inf`` for calls in flight."""
        raise NotImplementedError

    # -- LimiterBackend ---------------------------------------------------------------------------------
    async def try_acquire(self, family: str, windows: list[Window], now: float) -> float:
        if now < WALL_CLOCK_FLOOR:
            raise ValueError(
                f"a shared rate-limit backend needs wall-clock times (got {now}): build the RateLimiter with "
                "clock=backend.clock"
            )
        self._shortest[family] = min(w for _, w in windows)
        key = (family, tuple(windows))
        # another task of this process was just told the window is full: no need to ask again before then
        gate = self._not_before.get(key, 0.0) - now
        if gate > 0:
            return gate
        entered = time.monotonic()
        async with self._locks.setdefault(family, asyncio.Lock()):
            fresh = now + (time.monotonic() - entered)
            gate = self._not_before.get(key, 0.0) - fresh
            if gate > 0:
                return gate
            wait, token = await self._try(family, windows, fresh)
            if wait > 0:
                self._not_before[key] = fresh + wait
                return wait
        # RateLimiter hands ``now`` back to complete() as granted_at: that is how we find the grant again
        self._tokens.setdefault((family, now), deque()).append(token)
        return 0.0

    async def complete(self, family: str, granted_at: float, done_at: float) -> None:
        tokens = self._tokens.get((family, granted_at))
        if not tokens:
            return
        token = tokens.popleft()
        if not tokens:
            del self._tokens[(family, granted_at)]
        try:
            await self._complete(family, token, done_at)
        except Exception:  # the answer is in hand: never turn it into an error; the grant expires instead
            log.warning("could not record the answer to a %s call; its grant expires", family, exc_info=True)

    async def pause(self, family: str, until: float) -> None:
        """MDE answered 429 with Retry-After to one replica: no replica calls ``family`` before ``until``."""
        try:
            await self._pause(family, until)
        except Exception:  # the replica that got the 429 pauses anyway; the others learn from their own
            log.warning("could not share a %s pause", family, exc_info=True)

    async def _pause(self, family: str, until: float) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()

    def grants(self, family: str, since: float) -> list[float]:
        """The last snapshot of the shared grants (refreshed in the background when older than a
        twentieth of the shortest window): good enough for estimates, never used to grant."""
        snapshot = self._snapshots.get(family)
        max_age = max(0.05, self._shortest.get(family, 20.0) / 20)
        if (snapshot is None or time.monotonic() - snapshot[0] > max_age) and family not in self._refreshing:
            try:
                task = asyncio.get_running_loop().create_task(self.refresh(family))
            except RuntimeError:  # no event loop: keep the old snapshot
                pass
            else:
                self._refreshing[family] = task
                task.add_done_callback(lambda _t: self._refreshing.pop(family, None))
        return [t for t in snapshot[1] if t > since] if snapshot else []

    async def refresh(self, family: str) -> None:
        """Read the shared grants of ``family`` now (``grants`` does this in the background)."""
        try:
            times = await self._times(family, self.clock())
        except Exception:
            log.warning("could not read the shared %s grants for an estimate", family, exc_info=True)
            return
        self._snapshots[family] = (time.monotonic(), times)
