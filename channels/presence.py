"""Who is on duty, per prison, across server processes, with expiry.

An officer's sockets heartbeat ``(prison, user)`` with a TTL; the entry counts as present until
``now + ttl`` unless refreshed, so a crashed process (which never calls ``leave``) stops
counting its officers after one TTL instead of forever. ``present()`` never returns an expired
entry, whether or not a cleanup has run.

``RedisPresence`` keeps one sorted set per prison, member = user id, score = expiry as unix
time. Heartbeats from all processes land in the same set; the expiry uses the caller's clock,
so hosts need roughly synchronised clocks (NTP): a skew of ``s`` seconds shifts an officer's
expiry by ``s``, which is why TTLs should be several times the heartbeat period. The key
itself also gets a Redis TTL so a prison nobody heartbeats any more leaves nothing behind.
On a Redis Cluster (``redis+cluster://``) each prison's set lives on the shard of its key:
every command and every MULTI/EXEC here touches that one key (``channels/redis_target.py``).

Failures of the backend raise ``BrokerUnavailable`` (presence lives on the same Redis as the
broker and is reported the same way).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Protocol

from channels.broker import BrokerUnavailable
from channels.redis_target import REDIS_ERRORS, command_client

__all__ = ["MemoryPresence", "Presence", "RedisPresence"]

Clock = Callable[[], float]


class Presence(Protocol):
    async def heartbeat(self, prison_id: int, user_id: int, ttl: float) -> None:
        """Mark ``user_id`` present in ``prison_id`` until now + ``ttl`` unless refreshed."""
        ...

    async def leave(self, prison_id: int, user_id: int) -> None:
        """Remove ``user_id`` from ``prison_id`` at once."""
        ...

    async def present(self, prison_id: int) -> list[int]:
        """Sorted user ids of ``prison_id`` whose entry has not expired."""
        ...

    async def close(self) -> None:
        """Release connections. Idempotent."""
        ...


def _check_ttl(ttl: float) -> None:
    if not ttl > 0 or math.isinf(ttl):
        raise ValueError(f"ttl must be a positive finite number of seconds, not {ttl!r}")


class MemoryPresence:
    """``Presence`` for one process; ``clock`` is injectable so tests need not sleep."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._expiry: dict[int, dict[int, float]] = {}

    async def heartbeat(self, prison_id: int, user_id: int, ttl: float) -> None:
        _check_ttl(ttl)
        self._expiry.setdefault(prison_id, {})[user_id] = self._clock() + ttl

    async def leave(self, prison_id: int, user_id: int) -> None:
        users = self._expiry.get(prison_id)
        if users is not None:
            users.pop(user_id, None)
            if not users:
                del self._expiry[prison_id]

    async def present(self, prison_id: int) -> list[int]:
        users = self._expiry.get(prison_id)
        if not users:
            return []
        now = self._clock()
        for user_id in [u for u, expiry in users.items() if expiry <= now]:
            del users[user_id]
        if not users:
            del self._expiry[prison_id]
        return sorted(users)

    async def close(self) -> None:
        self._expiry.clear()


class RedisPresence:
    """``Presence`` on Redis: one sorted set per prison, score = expiry (unix seconds)."""

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "kinline:presence:",
        clock: Clock = time.time,
        io_timeout: float = 5.0,
    ) -> None:
        self._prefix = key_prefix
        self._clock = clock
        self._io_timeout = io_timeout
        self._client = command_client(url, io_timeout=io_timeout)

    def _key(self, prison_id: int) -> str:
        return f"{self._prefix}{int(prison_id)}"

    async def heartbeat(self, prison_id: int, user_id: int, ttl: float) -> None:
        _check_ttl(ttl)
        key, now = self._key(prison_id), self._clock()
        key_ttl = math.ceil(ttl) + 1
        try:
            async with asyncio.timeout(self._io_timeout):
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.zadd(key, {str(int(user_id)): now + ttl})
                    pipe.zremrangebyscore(key, "-inf", now)
                    # NX sets a TTL on a fresh key, GT only ever extends it.
                    pipe.expire(key, key_ttl, nx=True)
                    pipe.expire(key, key_ttl, gt=True)
                    await pipe.execute()
        except REDIS_ERRORS as exc:
            raise BrokerUnavailable(f"presence heartbeat failed: {exc!r}") from exc

    async def leave(self, prison_id: int, user_id: int) -> None:
        try:
            async with asyncio.timeout(self._io_timeout):
                await self._client.zrem(self._key(prison_id), str(int(user_id)))
        except REDIS_ERRORS as exc:
            raise BrokerUnavailable(f"presence leave failed: {exc!r}") from exc

    async def present(self, prison_id: int) -> list[int]:
        key, now = self._key(prison_id), self._clock()
        try:
            async with asyncio.timeout(self._io_timeout):
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.zremrangebyscore(key, "-inf", now)
                    pipe.zrangebyscore(key, f"({now!r}", "+inf")
                    _, members = await pipe.execute()
        except REDIS_ERRORS as exc:
            raise BrokerUnavailable(f"presence read failed: {exc!r}") from exc
        return sorted(int(member) for member in members)

    async def close(self) -> None:
        await self._client.aclose()
