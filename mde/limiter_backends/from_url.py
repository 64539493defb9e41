"""Which backend ``MDE_LIMITER_URL`` names."""

from __future__ import annotations

from mde.limiter_backends.base import LimiterBackend
from mde.limiter_backends.memory import MemoryBackend
from mde.limiter_backends.postgres import PostgresBackend
from mde.limiter_backends.redis import RedisBackend
from mde.limiter_backends.shared import DEFAULT_IN_FLIGHT_TTL_S


def limiter_backend_from_url(url: str | None, *, in_flight_ttl_s: float = DEFAULT_IN_FLIGHT_TTL_S) -> LimiterBackend:
    """``None`` or ``memory://``: this process only; ``postgresql://…``: a shared table; ``redis://…``: Redis."""
    if not url or url.startswith("memory:"):
        return MemoryBackend()
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        return PostgresBackend(url, in_flight_ttl_s=in_flight_ttl_s)
    if scheme in ("redis", "rediss", "unix"):
        return RedisBackend(url, in_flight_ttl_s=in_flight_ttl_s)
    raise ValueError(f"MDE_LIMITER_URL: unsupported scheme {scheme!r} (use postgresql://, redis://, or leave it unset)")


def default_limiter_url(limiter_url: str | None, database_url: str) -> str | None:
    """Unset MDE_LIMITER_URL on PostgreSQL means the database itself: replicas share the budget by default."""
    if limiter_url:
        return limiter_url
    return database_url if database_url.split(":", 1)[0].lower().startswith("postgres") else None
