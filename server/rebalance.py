"""Rebalancing: a process holding much more than its share of sockets sheds the excess (1012).

Why: ``SO_REUSEPORT`` (``kinline serve --workers N``) and load balancers choose a process only
when a socket connects. Clients of a killed worker reconnect while its replacement is still
starting, so they all land on the survivors, and nothing ever moves them back: the replacement
sits idle while one process carries everything.

How: every ``interval`` seconds (jittered) each process writes its open-socket count to one
Redis hash shared by the deployment (field = this process, value = count and expiry) and reads
every process's count back in the same round trip (one key: on a Redis Cluster, one shard).
An entry past its expiry (``3 x interval``: a process killed with -9 never removes its own) is
ignored and removed. With ``total`` the sum
of the live counts and ``share = total / live processes``, a process whose count is above
``share * (1 + tolerance) + slack`` closes ``min(max_shed, count - ceil(share))`` of its
sockets with 1012 this tick (:func:`to_shed`, pure). The clients reconnect, and the kernel or
the load balancer places them again; the next tick looks again. So it works the same across
hosts behind a load balancer as among the workers of one host: only Redis is shared.

Never a lost message: 1012 means "server restarting, reconnect and resume". A client resumes
every conversation from its cursor and storage replays what it missed (DESIGN.md section 3,
invariant 4); a send whose ack had not been written yet is sent again with the same ``cid``
and answered with the original ack (invariant 3). The gateway sheds sockets with no send
awaiting its ack first (chosen at random among those), so that path is rarely needed.

Trade-offs, deliberately:
* The kernel or the balancer decides where a shed socket goes; with N processes about 1/N of
  them come straight back, so one tick moves about ``(1 - 1/N)`` of what it sheds. Shedding
  down to the share (not to the threshold) therefore never overshoots on average, and the
  tolerance + slack band keeps a balanced deployment from churning.
* Handshakes are never refused for balance: a new user is not turned away because another
  process has room.
* Counts are up to one interval old, and expiries use the wall clock (hosts need NTP, as for
  on-duty presence). So an excess is acted on only when two ticks in a row see it: in a
  connection burst (a deployment starting, a reconnect storm) a process sees its own count
  at once but its peers' from before the burst, and would shed half of a balanced load
  (seen in the chat benchmark: 25 of 50 sockets of each worker), and only while the
  deployment's total stayed within ``slack + tolerance * share`` of the last tick: a burst
  lasting many ticks (10,000 sockets connecting over 11 s) otherwise looks unbalanced on
  every tick (seen in the broadcast benchmark: 200 sockets shed from a 5,074 / 4,926
  split). Restoring balance after a restart takes an interval or two longer.
* With the in-process broker there is one process and nothing to do: not started. Nor with
  ``rebalance_max_shed = 0`` (off). A Redis outage skips ticks (logged once per outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from channels import metrics
from channels.broker import BrokerUnavailable
from channels.redis_target import REDIS_ERRORS, command_client
from server.config import Settings

__all__ = ["Rebalancer", "RedisLoads", "rebalancing", "to_shed"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


def to_shed(own: int, counts: Sequence[int], *, tolerance: float, slack: int, max_shed: int) -> int:
    """How many sockets a process holding ``own`` should close now, given ``counts``: the open
    sockets of every live process, its own included. 0 unless ``own`` is above
    ``share * (1 + tolerance) + slack``; then down to the share, at most ``max_shed``."""
    if len(counts) < 2 or max_shed <= 0:
        return 0
    share = sum(counts) / len(counts)
    if own <= share * (1 + tolerance) + slack:
        return 0
    return min(max_shed, own - math.ceil(share))


class Sockets(Protocol):
    """What rebalancing needs of the gateway."""

    @property
    def open_count(self) -> int: ...

    def shed(self, count: int) -> int: ...


class RedisLoads:
    """The open-socket count of every live process, in one Redis hash with per-entry expiry."""

    def __init__(
        self, url: str, *, key: str, member: str, clock: Clock = time.time, io_timeout: float = 5.0
    ) -> None:
        self.key = key
        self.member = member
        self._clock = clock
        self._io_timeout = io_timeout
        self._client = command_client(url, io_timeout=io_timeout)

    async def report(self, count: int, ttl: float) -> list[int]:
        """Record ``count`` for this process until now + ``ttl``; return the counts of every
        live process (this one included). ``BrokerUnavailable`` if Redis cannot answer."""
        now = self._clock()
        try:
            async with asyncio.timeout(self._io_timeout):
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.hset(self.key, self.member, f"{int(count)} {now + ttl!r}")
                    pipe.hgetall(self.key)
                    pipe.expire(self.key, math.ceil(ttl) + 1)
                    _, entries, _ = await pipe.execute()
                counts, expired = [], []
                for member, value in entries.items():
                    held, _, expiry = value.decode().partition(" ")
                    if float(expiry) <= now:
                        expired.append(member)
                    else:
                        counts.append(int(held))
                if expired:
                    await self._client.hdel(self.key, *expired)
        except REDIS_ERRORS as exc:
            raise BrokerUnavailable(f"socket counts unavailable: {exc!r}") from exc
        return counts

    async def leave(self) -> None:
        """Stop counting this process at once (a clean shutdown)."""
        try:
            async with asyncio.timeout(self._io_timeout):
                await self._client.hdel(self.key, self.member)
        except REDIS_ERRORS as exc:
            raise BrokerUnavailable(f"socket counts unavailable: {exc!r}") from exc

    async def close(self) -> None:
        await self._client.aclose()


class Rebalancer:
    """One process's loop: report its count, shed what :func:`to_shed` says."""

    def __init__(self, sockets: Sockets, loads: RedisLoads, settings: Settings) -> None:
        self.sockets = sockets
        self.loads = loads
        self.interval = settings.rebalance_interval
        self.tolerance = settings.rebalance_tolerance
        self.slack = settings.rebalance_slack
        self.max_shed = settings.rebalance_max_shed
        self._down = False  # Redis unreachable: logged once per outage
        self._over = False  # the last tick saw an excess (acted on when this one does too)
        self._total: int | None = None  # the deployment's sockets at the last tick

    async def tick(self) -> int:
        """One round; return how many sockets were shed."""
        own = self.sockets.open_count
        try:
            counts = await self.loads.report(own, ttl=3 * self.interval)
        except BrokerUnavailable as exc:
            if not self._down:
                log.warning("rebalancing paused: %s", exc)
            self._down = True
            return 0
        if self._down:
            log.info("rebalancing resumed")
        self._down = False
        wanted = to_shed(
            own, counts, tolerance=self.tolerance, slack=self.slack, max_shed=self.max_shed
        )
        total, last_total = sum(counts), self._total
        self._total = total
        # Counts are compared across processes that wrote them up to an interval apart:
        # while the total still moves (a burst of connects), an excess is a stale reading.
        steady = last_total is not None and abs(total - last_total) <= self.slack + (
            self.tolerance * total / len(counts)
        )
        confirmed, self._over = self._over and steady, wanted > 0
        shed = self.sockets.shed(wanted) if wanted and confirmed else 0
        if shed:
            metrics.rebalance_shed.inc(shed)
            log.info(
                "rebalancing: closed sockets with 1012",
                extra={"shed": shed, "held": own, "processes": len(counts), "total": sum(counts)},
            )
        return shed

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a bug: say so, keep the process serving
                log.exception("rebalancing tick failed")
            await asyncio.sleep(self.interval * random.uniform(0.8, 1.2))  # jitter: ticks apart


@contextlib.asynccontextmanager
async def rebalancing(settings: Settings, sockets: Sockets) -> AsyncIterator[Rebalancer | None]:
    """Run the rebalancer for the life of the app, when there can be other processes (Redis);
    yield it, or None when it is off."""
    if settings.redis_url is None or settings.rebalance_max_shed == 0:
        yield None
        return
    member = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    loads = RedisLoads(settings.redis_url, key=f"{settings.redis_prefix}sockets", member=member)
    rebalancer = Rebalancer(sockets, loads, settings)
    task = asyncio.create_task(rebalancer.run())
    try:
        yield rebalancer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(BrokerUnavailable):
            await loads.leave()
        await loads.close()
