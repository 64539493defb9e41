"""The shared budget in Redis: two sorted sets per family, checked and recorded by one Lua script."""

from __future__ import annotations

from typing import Any

from mde.limiter_backends.base import IN_FLIGHT_RECHECK_S, Window
from mde.limiter_backends.shared import DEFAULT_IN_FLIGHT_TTL_S, SharedBackend


class RedisBackend(SharedBackend):
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
