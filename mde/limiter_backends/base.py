"""What a rate-limit backend is: where grant times live, behind one protocol (like httpx's transports).

``RateLimiter`` (``mde/ratelimit.py``) decides nothing about storage; a backend records grants and answers,
and reports recent grants for estimates. ``memory.py`` keeps them in this process; ``postgres.py`` and
``redis.py`` share them between replicas (``shared.py``). ``from_url.py`` picks one from ``MDE_LIMITER_URL``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Window = tuple[int, float]  # (calls, seconds)
#: while only answers still to come can free a window, look again this soon
IN_FLIGHT_RECHECK_S = 0.005


class LimiterBackend(Protocol):
    #: the clock a ``RateLimiter`` on this backend must use: ``time.monotonic`` in one process, the wall
    #: clock when grant times cross processes and hosts
    clock: Callable[[], float]

    async def try_acquire(self, family: str, windows: list[Window], now: float) -> float:
        """Record a grant and return 0.0, or record nothing and return the seconds to wait."""
        ...

    async def complete(self, family: str, granted_at: float, done_at: float) -> None:
        """Move a grant to when its answer arrived: MDE counted the call no later than that."""
        ...

    def grants(self, family: str, since: float) -> list[float]:
        """Recent grant times (for estimates); may be a local approximation for shared backends."""
        ...

    async def pause(self, family: str, until: float) -> None:
        """MDE answered 429: nobody sharing this budget calls ``family`` before ``until``."""
        ...

    async def aclose(self) -> None:
        """Release connections and background tasks."""
        ...
