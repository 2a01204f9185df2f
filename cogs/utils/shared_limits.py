"""Per-person limits shared by every bot process (shards of a cluster), kept in Redis.

A person's requests can reach any process (other servers, DMs), so with a job queue
(``MOZART_QUEUE_URL``) the in-flight count and the token bucket of ``ComposeLimits`` live in Redis.
Each process keeps its own fair line (``Limiter``); a request it lets through must then also be
admitted here, atomically (one Lua script, on Redis's clock). A slot is a member of a sorted set
that expires on its own, so a process that dies holding slots does not block the person for long.
"""

from __future__ import annotations

import logging
import secrets

from cogs.utils.limits import ComposeLimits

log = logging.getLogger("mozart.limits")

PREFIX = "mozart:limits:"
SLOT_TTL_S = 600  # a slot not released by then (its process died) frees itself

# KEYS: in-flight slots (zset), bucket (hash). ARGV: in_flight, burst, refill_s, slot id, slot ttl.
# Returns {admitted (0/1), active slots, seconds until a token (when the bucket is empty)}.
_ADMIT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1e6
local limit, burst, refill = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local active = redis.call('ZCARD', KEYS[1])
if active >= limit then return {0, active, '0'} end
local tokens = tonumber(redis.call('HGET', KEYS[2], 'tokens') or burst)
local at = tonumber(redis.call('HGET', KEYS[2], 'at') or now)
if refill > 0 then tokens = math.min(burst, tokens + (now - at) / refill) else tokens = burst end
if tokens < 1 then return {0, active, tostring((1 - tokens) * refill)} end
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens - 1), 'at', tostring(now))
redis.call('EXPIRE', KEYS[2], math.ceil(burst * refill) + 60)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[4])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return {1, active + 1, '0'}
"""


class Admission:
    """The answer for one request: admitted (holding ``slot``), or how long the person waits and why."""

    def __init__(self, admitted: bool, active: int, token_wait_s: float, slot: str | None):
        self.admitted, self.active, self.token_wait_s, self.slot = admitted, active, token_wait_s, slot


class SharedLimits:
    """``admit(user)`` takes a shared slot (or says why not); ``release(user, slot)`` gives it back."""

    def __init__(self, redis, limits: ComposeLimits):
        self.redis = redis  # a redis.asyncio client (the queue's connection pool)
        self.limits = limits
        self._admit = redis.register_script(_ADMIT)

    async def admit(self, user_id: int) -> Admission:
        slot = secrets.token_hex(8)
        admitted, active, wait = await self._admit(
            keys=[f"{PREFIX}{user_id}:slots", f"{PREFIX}{user_id}:bucket"],
            args=[self.limits.in_flight, self.limits.burst, self.limits.refill_s, slot, SLOT_TTL_S])
        return Admission(bool(admitted), int(active), float(wait), slot if admitted else None)

    async def release(self, user_id: int, slot: str) -> None:
        try:
            await self.redis.zrem(f"{PREFIX}{user_id}:slots", slot)
        except Exception:  # Redis away: the slot expires by itself
            log.warning("could not release a shared slot; it expires in %d s", SLOT_TTL_S, exc_info=True)

    async def close(self) -> None:
        await self.redis.aclose()
