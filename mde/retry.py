"""How long to wait before trying again: Retry-After for 429s, full-jitter backoff for 5xx and timeouts."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0
    #: give up when the waits added up would pass this
    max_total_s: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** max(0, attempt)))


def parse_retry_after(value: str | None, default: float = 1.0) -> float:
    """MDE sends whole seconds; the simulator at a time scale sends decimals; both parse."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        return default
