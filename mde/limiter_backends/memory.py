"""Grant times in this process: the default, and the reference the shared backends must agree with."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable

from mde.limiter_backends.base import IN_FLIGHT_RECHECK_S, Window


class MemoryBackend:
    """Answered calls as sorted answer times, plus a count of calls still in flight per family.

    A call in flight may reach MDE at any moment until its answer arrives, so it occupies every window
    until then; once answered it is counted from its answer time.
    """

    clock: Callable[[], float] = staticmethod(time.monotonic)

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

    async def pause(self, family: str, until: float) -> None:
        """Nothing to share: the ``RateLimiter`` of this process has already paused itself."""

    async def aclose(self) -> None:
        """Nothing to release."""
