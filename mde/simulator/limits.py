"""Per-family sliding-window quotas, answering 429 with Retry-After like MDE does."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable

FAMILIES = (
    "machines_read",
    "machine_tags",
    "machine_actions",
    "machineactions_read",
    "advanced_queries",
    "indicators",  # post-ti-indicator.md, get-ti-indicators-collection.md: 100/min, 1,500/h
    "files_read",  # get-file-statistics.md: 100/min, 1,500/h
    "live_response",  # run-live-response.md: 10/min (its quota is set apart in the server)
    "graph_hunting",  # security-api-overview.md (Graph): "at least 45 calls per minute per tenant"
    # 100/min, 1,500/h ("Limitations"): https://learn.microsoft.com/defender-endpoint/api/get-alerts,
    # https://learn.microsoft.com/defender-endpoint/api/get-machine-related-alerts
    "alerts_read",
)


class Quota:
    def __init__(self, limits: list[tuple[int, float]], clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits  # (calls, window seconds)
        self.clock = clock
        self.granted: list[float] = []
        self._longest = max(w for _, w in limits)

    def try_take(self) -> float:
        """0.0 when granted; otherwise the seconds until a slot frees (the call is not counted)."""
        now = self.clock()
        cut = bisect.bisect_right(self.granted, now - self._longest)
        if cut > 4096:
            del self.granted[:cut]
        wait = 0.0
        for calls, window in self.limits:
            first = bisect.bisect_right(self.granted, now - window)
            if len(self.granted) - first >= calls:
                wait = max(wait, self.granted[-calls] + window - now)
        if wait > 0:
            return wait
        self.granted.append(now)
        return 0.0
