"""Presence contract, against MemoryPresence and RedisPresence. Time is injected, never slept."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from channels.broker import BrokerUnavailable
from channels.presence import MemoryPresence, Presence, RedisPresence


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    presence: Presence
    clock: FakeClock
    make_other: Callable[[], Presence]  # another process sharing the same state


@pytest.fixture(params=["memory", "redis", "cluster"])
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    # A realistic wall-clock start, so the Redis key TTL arithmetic is exercised for real.
    clock = FakeClock(time.time())
    others: list[Presence] = []
    presence: Presence
    if request.param == "memory":
        memory = MemoryPresence(clock=clock)
        presence = memory

        def make_other() -> Presence:
            return memory  # one process: the same object is the shared state

    else:
        # One Redis server, or a Redis Cluster (each prison's set on the shard of its key).
        if request.param == "cluster":
            url: str = request.getfixturevalue("redis_cluster").url
        else:
            url = request.getfixturevalue("redis_url")
        prefix = f"kinline-test-presence-{secrets.token_hex(6)}:"
        presence = RedisPresence(url, key_prefix=prefix, clock=clock)

        def make_other() -> Presence:
            other = RedisPresence(url, key_prefix=prefix, clock=clock)
            others.append(other)
            return other

    try:
        yield Setup(presence, clock, make_other)
    finally:
        for other in others:
            await other.close()
        await presence.close()


async def test_heartbeat_present_leave(setup: Setup) -> None:
    p = setup.presence
    assert await p.present(1) == []
    await p.heartbeat(1, 7, ttl=30)
    await p.heartbeat(1, 3, ttl=30)
    await p.heartbeat(1, 7, ttl=30)  # a refresh does not duplicate
    assert await p.present(1) == [3, 7]
    await p.leave(1, 7)
    assert await p.present(1) == [3]
    await p.leave(1, 7)  # leaving twice is harmless
    await p.leave(1, 3)
    assert await p.present(1) == []


async def test_present_is_sorted_numerically(setup: Setup) -> None:
    for user_id in (10, 9, 100, 1):
        await setup.presence.heartbeat(5, user_id, ttl=30)
    assert await setup.presence.present(5) == [1, 9, 10, 100]


async def test_entries_expire_unless_refreshed(setup: Setup) -> None:
    p, clock = setup.presence, setup.clock
    start = clock.now
    await p.heartbeat(1, 1, ttl=10)
    await p.heartbeat(1, 2, ttl=30)
    clock.now = start + 9.5
    assert await p.present(1) == [1, 2]
    clock.now = start + 10  # expiry is exclusive: at now + ttl the entry is gone
    assert await p.present(1) == [2]
    clock.now = start + 20
    await p.heartbeat(1, 2, ttl=30)  # refreshed: now valid until start + 50
    clock.now = start + 45
    assert await p.present(1) == [2]
    clock.now = start + 50.001
    assert await p.present(1) == []


async def test_prisons_are_isolated(setup: Setup) -> None:
    p = setup.presence
    await p.heartbeat(1, 42, ttl=30)
    await p.heartbeat(2, 42, ttl=30)
    await p.heartbeat(2, 43, ttl=30)
    await p.leave(1, 42)
    assert await p.present(1) == []
    assert await p.present(2) == [42, 43]


async def test_presence_is_shared_between_processes(setup: Setup) -> None:
    other = setup.make_other()
    await setup.presence.heartbeat(3, 11, ttl=30)
    assert await other.present(3) == [11]
    await other.leave(3, 11)
    assert await setup.presence.present(3) == []


@pytest.mark.parametrize("ttl", [0, -1.0, float("inf"), float("nan")])
async def test_ttl_must_be_positive_and_finite(setup: Setup, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await setup.presence.heartbeat(1, 1, ttl=ttl)
    assert await setup.presence.present(1) == []


# -- Redis only -----------------------------------------------------------------------------


async def test_redis_heartbeat_cleans_expired_entries_and_sets_key_ttl(redis_url: str) -> None:
    clock = FakeClock(time.time())
    prefix = f"kinline-test-presence-{secrets.token_hex(6)}:"
    presence = RedisPresence(redis_url, key_prefix=prefix, clock=clock)
    admin = aioredis.Redis.from_url(redis_url)
    try:
        await presence.heartbeat(9, 1, ttl=5)
        key = f"{prefix}9"
        assert 0 < await admin.ttl(key) <= 6
        await presence.heartbeat(9, 2, ttl=60)  # a longer ttl extends the key's life
        assert 6 < await admin.ttl(key) <= 61
        clock.now += 10
        await presence.heartbeat(9, 3, ttl=5)  # expired user 1 removed in the same pipeline
        assert sorted(await admin.zrange(key, 0, -1)) == [b"2", b"3"]
        assert 6 < await admin.ttl(key) <= 61  # a shorter ttl never shortens it
    finally:
        await admin.aclose()
        await presence.close()


async def test_redis_unreachable_raises_broker_unavailable() -> None:
    presence = RedisPresence("redis://127.0.0.1:1/0", io_timeout=1.0)
    try:
        with pytest.raises(BrokerUnavailable):
            await presence.heartbeat(1, 1, ttl=5)
        with pytest.raises(BrokerUnavailable):
            await presence.present(1)
        with pytest.raises(BrokerUnavailable):
            await presence.leave(1, 1)
    finally:
        await presence.close()
