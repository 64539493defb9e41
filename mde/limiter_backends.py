"""Rate-limit backends that several processes share: one MDE budget for every replica.

MDE counts calls per tenant, not per process, so replicas that each kept their own ``MemoryBackend`` would
together exceed the documented limits. These backends keep grants where every replica sees them, with the
same rules as ``MemoryBackend``: a call in flight occupies every window until its answer arrives, then counts
from its answer time; grants older than the longest window are pruned. Check-and-record is atomic (one
transaction under a per-family advisory lock in PostgreSQL; one Lua script in Redis).

Clock: grant times are wall-clock Unix seconds (``time.time()``), written by one process and read by others,
possibly on other hosts; a monotonic clock means nothing outside its own host. Hosts must keep their clocks
in sync (NTP keeps them within milliseconds; ``RateLimiter.margin_s`` absorbs that). Build the limiter with
``RateLimiter(backend=backend, clock=clock_for(backend))``; a shared backend refuses monotonic times.

Crash safety: a grant still in flight after ``in_flight_ttl_s`` (default twice the client's 30 s timeout, by
which its answer must have arrived) belonged to a process that died: it counts as answered at its grant time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mde.ratelimit import IN_FLIGHT_RECHECK_S, LimiterBackend, MemoryBackend, Window

log = logging.getLogger(__name__)

#: twice ``MdeClient``'s default timeout: an answer (or a timeout) must have arrived by then
DEFAULT_IN_FLIGHT_TTL_S = 60.0
#: 2001-09-09 in Unix seconds; a smaller "now" comes from a monotonic clock
_WALL_CLOCK_FLOOR = 1e9
#: first key of ``pg_advisory_xact_lock(int, int)``, so our locks never collide with anyone else's
_LOCK_NAMESPACE = 0x4D444531  # "MDE1"


class _SharedBackend:
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

    async def aclose(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()

    # -- LimiterBackend ---------------------------------------------------------------------------------
    async def try_acquire(self, family: str, windows: list[Window], now: float) -> float:
        if now < _WALL_CLOCK_FLOOR:
            raise ValueError(
                f"a shared rate-limit backend needs wall-clock times (got {now}): build the RateLimiter with "
                "clock=clock_for(backend)"
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


class PostgresBackend(_SharedBackend):
    """Grants in the ``rate_limit_grants`` table (migration 0002), usually in the bot's own database.

    One row per grant: ``granted_at``, ``expires_at`` (grant + TTL) and ``answered_at`` (NULL while in
    flight), all Unix seconds. A row counts from ``answered_at``; in flight it counts in every window; once
    expired unanswered it counts from ``granted_at``. ``try_acquire`` runs in one transaction holding
    ``pg_advisory_xact_lock(namespace, hashtext(family))``, so replicas decide one at a time per family.

    The engine is SQLAlchemy's (pooling, pre-ping, URLs as elsewhere), but statements go straight to its
    asyncpg connection: every replica waits while the lock is held, and asyncpg holds it for a third of the
    time SQLAlchemy's statement layer takes (about 0.5 ms against 1.5 ms per decision on loopback).
    """

    def __init__(
        self,
        url_or_engine: str | AsyncEngine,
        *,
        in_flight_ttl_s: float = DEFAULT_IN_FLIGHT_TTL_S,
        prune_every: int = 200,
    ) -> None:
        super().__init__(in_flight_ttl_s)
        if isinstance(url_or_engine, AsyncEngine):
            self.engine, self._owns_engine = url_or_engine, False
        else:
            url = _asyncpg_url(url_or_engine)
            self.engine = create_async_engine(url, pool_size=4, max_overflow=16, pool_pre_ping=True)
            self._owns_engine = True
        self._prune_every = prune_every
        self._since_prune: dict[str, int] = {}

    async def aclose(self) -> None:
        await super().aclose()
        if self._owns_engine:
            await self.engine.dispose()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection as the asyncpg ``Connection`` it wraps."""
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            yield raw.driver_connection

    async def _try(self, family: str, windows: list[Window], now: float) -> tuple[float, Any]:
        seconds = [w for _, w in windows]
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_LOCK, _LOCK_NAMESPACE, family)
            paused = await conn.fetchval(_PAUSED, family + PAUSE_SUFFIX, now)
            if paused is not None:
                return float(paused) - now, None
            pruned = self._since_prune.get(family, 0)
            if pruned >= self._prune_every:
                await conn.execute(_PRUNE, family, now, now - max(seconds))
                await conn.execute(_PRUNE_PAUSES, family + PAUSE_SUFFIX, now)
                pruned = 0
            self._since_prune[family] = pruned + 1
            in_flight, in_windows = await conn.fetchrow(_COUNT, family, now, seconds)
            wait = 0.0
            for (calls, window), in_window in zip(windows, in_windows, strict=True):
                excess = in_window + in_flight - calls + 1
                if excess <= 0:
                    continue
                if excess <= in_window:
                    kth = await conn.fetchval(_KTH, family, now, now - window, excess - 1)
                    wait = max(wait, IN_FLIGHT_RECHECK_S if kth is None else kth + window - now)
                else:  # only answers still to come can free the window: look again shortly
                    wait = max(wait, IN_FLIGHT_RECHECK_S)
            if wait > 0:
                return wait, None
            return 0.0, await conn.fetchval(_INSERT, family, self.owner, now, now + self.in_flight_ttl_s)

    async def _complete(self, family: str, token: Any, done_at: float) -> None:
        async with self._connection() as conn:
            await conn.execute(_COMPLETE, token, done_at)

    async def _pause(self, family: str, until: float) -> None:
        async with self._connection() as conn:
            await conn.execute(_INSERT_PAUSE, family + PAUSE_SUFFIX, self.owner, until)

    async def _times(self, family: str, now: float) -> list[float]:
        async with self._connection() as conn:
            rows = await conn.fetch(_TIMES, family, now)
        return sorted(float("inf") if r[0] is None else float(r[0]) for r in rows)


# $1 family, $2 now. When MDE counted each call: its answer; NULL while in flight; its grant once expired.
_LOCK = "SELECT pg_advisory_xact_lock($1, hashtext($2))"
_TIMES = """
    SELECT CASE WHEN answered_at IS NOT NULL THEN answered_at WHEN expires_at <= $2 THEN granted_at END
    FROM rate_limit_grants WHERE family = $1
"""
# $3 window lengths: calls in flight, and calls counted in each window
_COUNT = """
    WITH g AS (
        SELECT answered_at, expires_at,
               CASE WHEN answered_at IS NOT NULL THEN answered_at WHEN expires_at <= $2 THEN granted_at END AS counted
        FROM rate_limit_grants WHERE family = $1
    )
    SELECT (SELECT count(*) FROM g WHERE answered_at IS NULL AND expires_at > $2),
           array(SELECT (SELECT count(*) FROM g WHERE counted > $2 - s)
                 FROM unnest($3::float8[]) WITH ORDINALITY AS u(s, i) ORDER BY i)
"""
# $3 window start, $4 how many to skip: the counted time whose leaving frees the slot
_KTH = """
    SELECT counted FROM (
        SELECT CASE WHEN answered_at IS NOT NULL THEN answered_at WHEN expires_at <= $2 THEN granted_at END AS counted
        FROM rate_limit_grants WHERE family = $1
    ) AS g WHERE counted > $3 ORDER BY counted OFFSET $4 LIMIT 1
"""
_INSERT = """
    INSERT INTO rate_limit_grants (family, owner, granted_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id
"""
_COMPLETE = "UPDATE rate_limit_grants SET answered_at = greatest(granted_at, $2) WHERE id = $1"
# a shared pause is a row of family "<family>!pause" whose granted_at is the end of the pause
PAUSE_SUFFIX = "!pause"
_PAUSED = "SELECT max(granted_at) FROM rate_limit_grants WHERE family = $1 AND granted_at > $2"
_INSERT_PAUSE = """
    INSERT INTO rate_limit_grants (family, owner, granted_at, expires_at, answered_at) VALUES ($1, $2, $3, $3, $3)
"""
_PRUNE_PAUSES = "DELETE FROM rate_limit_grants WHERE family = $1 AND granted_at <= $2"
# $3 start of the longest window
_PRUNE = """
    DELETE FROM rate_limit_grants WHERE family = $1
    AND (answered_at <= $3 OR (answered_at IS NULL AND expires_at <= $2 AND granted_at <= $3))
"""


def _asyncpg_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


class RedisBackend(_SharedBackend):
    """Grants in two sorted sets per family: ``…:{family}:answered`` (score: counted time) and
    ``…:{family}:in_flight`` (score: expiry). One Lua script checks and records atomically."""

    def __init__(
        self,
        url_or_client: Any,
        *,
        prefix: str = "mde-chatops:ratelimit",
        in_flight_ttl_s: float = DEFAULT_IN_FLIGHT_TTL_S,
    ) -> None:
        super().__init__(in_flight_ttl_s)
        import redis.asyncio as aioredis

        if isinstance(url_or_client, str):
            self.redis, self._owns_client = aioredis.from_url(url_or_client), True
        else:
            self.redis, self._owns_client = url_or_client, False
        self.prefix = prefix
        self._acquire_script = self.redis.register_script(_ACQUIRE_LUA)
        self._complete_script = self.redis.register_script(_COMPLETE_LUA)
        self._seq = 0

    def _keys(self, family: str) -> list[str]:
        # the hash tag keeps both keys of a family on one Redis Cluster slot
        return [f"{self.prefix}:{{{family}}}:answered", f"{self.prefix}:{{{family}}}:in_flight"]

    async def aclose(self) -> None:
        await super().aclose()
        if self._owns_client:
            await self.redis.aclose()

    def _pause_key(self, family: str) -> str:
        return f"{self.prefix}:{{{family}}}:paused_until"

    async def _pause(self, family: str, until: float) -> None:
        keep_ms = max(1, int((until - self.clock()) * 1000) + 1000)
        await self.redis.eval(_PAUSE_LUA, 1, self._pause_key(family), repr(until), keep_ms)

    async def _try(self, family: str, windows: list[Window], now: float) -> tuple[float, Any]:
        paused = await self.redis.get(self._pause_key(family))
        if paused is not None and float(paused) > now:
            return float(paused) - now, None
        self._seq += 1
        keep_ms = int((max(w for _, w in windows) + self.in_flight_ttl_s) * 1000) + 1000
        args: list[Any] = [repr(now), repr(self.in_flight_ttl_s), f"{self.owner}.{self._seq}"]
        args += [repr(IN_FLIGHT_RECHECK_S), keep_ms]
        for calls, window in windows:
            args += [calls, repr(window)]
        wait, member = await self._acquire_script(keys=self._keys(family), args=args)
        wait = float(wait)
        return (wait, None) if wait > 0 else (0.0, member)

    async def _complete(self, family: str, token: Any, done_at: float) -> None:
        await self._complete_script(keys=self._keys(family), args=[token, repr(done_at)])

    async def _times(self, family: str, now: float) -> list[float]:
        answered_key, in_flight_key = self._keys(family)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrange(answered_key, 0, -1, withscores=True)
            pipe.zrange(in_flight_key, 0, -1, withscores=True)
            answered, in_flight = await pipe.execute()
        times = [float(score) for _m, score in answered]
        for member, expires in in_flight:
            granted = float((member.decode() if isinstance(member, bytes) else member).split("|", 1)[0])
            times.append(granted if float(expires) <= now else float("inf"))
        return sorted(times)


# KEYS: paused_until. ARGV: until, key lifetime ms. Keeps the later of the stored and the new end of pause.
_PAUSE_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1
"""

# KEYS: answered, in_flight. ARGV: now, ttl, grant id, recheck seconds, key lifetime ms, then calls, window pairs.
# Returns {wait, member}: wait "0" and the new grant's member, or the seconds to wait and "".
_ACQUIRE_LUA = """
local now, ttl, recheck = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local longest = 0
for i = 6, #ARGV, 2 do longest = math.max(longest, tonumber(ARGV[i + 1])) end
-- a call in flight past its expiry belonged to a process that died: count it from its grant time
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%.6f', now))) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('ZADD', KEYS[1], string.match(m, '^[^|]+'), m)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now - longest))
local in_flight = redis.call('ZCARD', KEYS[2])
local wait = 0
for i = 6, #ARGV, 2 do
  local calls, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local cut = '(' .. string.format('%.6f', now - window)
  local in_window = redis.call('ZCOUNT', KEYS[1], cut, '+inf')
  local excess = in_window + in_flight - calls + 1
  if excess > 0 then
    if excess <= in_window then
      local kth = redis.call('ZRANGEBYSCORE', KEYS[1], cut, '+inf', 'WITHSCORES', 'LIMIT', excess - 1, 1)
      wait = math.max(wait, tonumber(kth[2]) + window - now)
    else
      wait = math.max(wait, recheck)
    end
  end
end
if wait > 0 then return {string.format('%.6f', math.max(wait, 0.000001)), ''} end
local member = string.format('%.6f', now) .. '|' .. ARGV[3]
redis.call('ZADD', KEYS[2], string.format('%.6f', now + ttl), member)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {'0', member}
"""

# KEYS: answered, in_flight. ARGV: member, done_at. Moves the grant to its answer time.
_COMPLETE_LUA = """
local at = math.max(tonumber(string.match(ARGV[1], '^[^|]+')), tonumber(ARGV[2]))
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[1], string.format('%.6f', at), ARGV[1])
else
  redis.call('ZADD', KEYS[1], 'XX', string.format('%.6f', at), ARGV[1])
end
return 1
"""


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


def clock_for(backend: LimiterBackend) -> Callable[[], float]:
    """Wall clock for shared backends (times cross processes and hosts), monotonic for this process only."""
    return backend.clock if isinstance(backend, _SharedBackend) else time.monotonic


async def close_backend(backend: LimiterBackend) -> None:
    if isinstance(backend, _SharedBackend):
        await backend.aclose()
