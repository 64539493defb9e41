"""Per-family sliding-window quotas, answering 429 with Retry-After like MDE does."""

from __future__ import annotations

import time
from collections import deque

FAMILIES = ("machines_read", "machine_tags", "machine_actions", "machineactions_read", "advanced_queries")


class Quota:
    def __init__(self, limits: list[tuple[int, float]], clock: object = time.monotonic) -> None:
        self.limits = limits  # (calls, window seconds)
        self.clock = clock
        self.granted: deque[float] = deque()

    def try_take(self) -> float:
        """0.0 when granted; otherwise the seconds until a slot frees (the call is not counted)."""
        now = self.clock()  # type: ignore[operator]
        longest = max(w for _, w in self.limits)
        while self.granted and self.granted[0] <= now - longest:
            self.granted.popleft()
        wait = 0.0
        for calls, window in self.limits:
            in_window = [t for t in self.granted if t > now - window]
            if len(in_window) >= calls:
                wait = max(wait, in_window[-calls] + window - now)
        if wait > 0:
            return wait
        self.granted.append(now)
        return 0.0
