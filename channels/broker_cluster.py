"""Redis Cluster broker: topics on sharded pub/sub (``SSUBSCRIBE`` / ``SPUBLISH``).

Why sharded: classic ``PUBLISH`` on a cluster is broadcast to every node over the cluster bus,
so adding shards adds no pub/sub capacity. A shard channel lives in the hash slot of its name
(``kinline:c:42`` hashes like a key, with no hash tag, so conversations spread over all 16384
slots); ``SPUBLISH`` goes to the primary owning that slot and only that shard's nodes carry it.

Shape of one process, and what it shares with ``RedisBroker``
-------------------------------------------------------------
The reference counting, confirmations, resync and ``on_reconnect`` contract are
``RedisBroker``'s (same guarantees, same contract suite). What differs:

* **One subscriber connection per primary** (each named ``kinline-sub-...`` like the
  one-server broker), opened together from one ``CLUSTER SLOTS`` reading. The writer sends
  each (UN)SUBSCRIBE as ``SSUBSCRIBE``/``SUNSUBSCRIBE`` to the primary owning the channel's
  slot, one command per slot (a command naming channels of two slots is refused with
  CROSSSLOT, even on one node). A reader per connection feeds the shared dispatch.
* **One epoch for the whole cluster.** Any of these ends the epoch: a connection drops or
  stops answering the keep-alive, a node answers MOVED (the slot map we read is stale), or a
  node unsubscribes a channel we did not ask it to (Redis 7 does that when the slot moves away
  or the primary is demoted). Then every connection is closed, the slot map is read again, all
  topics are re-subscribed and confirmed, and only then ``on_reconnect()`` is awaited: the hub
  re-reads storage and repairs whatever was published meanwhile. redis-py's ``ClusterPubSub``
  heals such moves itself, out of sight (redis/redis-py#4076, #4038), which is exactly what
  must not happen here (see ``channels/broker_redis.py``).
* **Publishing** goes through ``RedisCluster`` (a non-transactional pipeline of ``SPUBLISH``,
  split per node and sent in order per node, so per-topic order per publisher holds). It
  follows MOVED after a failover and retries a connection error a few times: a retried
  publish can arrive twice, which the hub drops by ``seq`` (conversation topics) and the
  clients treat as an idempotent state refresh (unordered topics).

Trade-off, deliberately: a primary killed takes every topic of this process dark until its
replica is promoted (``cluster-node-timeout`` plus the election), not only that shard's; the
slot map must be whole again before the epoch can start. Simpler, and no event is lost
either way: storage is the source of truth and the hub resyncs on ``on_reconnect``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.crc import key_slot

from channels.broker_redis import (
    _MAX_CHANNELS_PER_COMMAND,
    _NETWORK_ERRORS,
    RedisBroker,
    _Batch,
    _ConnectionLost,
    _raise_if_cancelling,
)
from channels.redis_target import ClusterTarget, cluster_target

__all__ = ["RedisClusterBroker", "SlotMap", "read_slot_map"]

log = logging.getLogger(__name__)

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class SlotMap:
    """Which primary serves each slot: sorted ``starts`` with the range ends and owners."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    owners: tuple[Address, ...]

    def owner(self, slot: int) -> Address:
        i = bisect.bisect_right(self.starts, slot) - 1
        if i < 0 or slot > self.ends[i]:
            raise _ConnectionLost(f"slot {slot} is served by no primary")
        return self.owners[i]

    @property
    def primaries(self) -> list[Address]:
        return sorted(set(self.owners))


def _parse_slots(reply: Any, asked: Address) -> SlotMap:
    ranges = []
    for entry in reply:
        start, end, primary = int(entry[0]), int(entry[1]), entry[2]
        host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
        # An empty or "?" host means "the address you reached me on".
        ranges.append((start, end, (host if host not in ("", "?") else asked[0], int(primary[1]))))
    ranges.sort()
    covered = sum(end - start + 1 for start, end, _ in ranges)
    if covered != 16384:
        raise _ConnectionLost(f"the cluster serves {covered} of 16384 slots")
    return SlotMap(
        tuple(r[0] for r in ranges), tuple(r[1] for r in ranges), tuple(r[2] for r in ranges)
    )


async def read_slot_map(target: ClusterTarget, known: list[Address], *, timeout: float) -> SlotMap:
    """``CLUSTER SLOTS`` from the first of the seeds (then ``known`` nodes) that answers."""
    errors = []
    for address in [*target.seeds, *(a for a in known if a not in target.seeds)]:
        client = _node_client(target, address, name=None, timeout=timeout)
        try:
            async with asyncio.timeout(timeout):
                reply = await client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
            return _parse_slots(reply, address)
        except _NETWORK_ERRORS as exc:
            errors.append(f"{address[0]}:{address[1]}: {exc!r}")
        finally:
            with contextlib.suppress(*_NETWORK_ERRORS):
                await client.aclose()
    raise _ConnectionLost("no cluster node answered CLUSTER SLOTS: " + "; ".join(errors))


def _node_client(
    target: ClusterTarget, address: Address, *, name: str | None, timeout: float
) -> Redis:
    return Redis(
        host=address[0],
        port=address[1],
        username=target.username,
        password=target.password,
        ssl=target.tls,
        client_name=name,
        protocol=2,
        retry=Retry(NoBackoff(), 0, supported_errors=()),
        socket_connect_timeout=timeout,
        health_check_interval=0,
    )


@dataclass(eq=False)
class _Shard:
    """One primary's subscriber connection in the current epoch."""

    address: Address
    client: Redis
    pubsub: PubSub
    last_rx: float = 0.0


class RedisClusterBroker(RedisBroker):
    """``Broker`` on a Redis Cluster's sharded pub/sub. See the module docstring."""

    def __init__(self, url: str, **options: Any) -> None:
        target = cluster_target(url)
        if target is None:
            raise ValueError("RedisClusterBroker needs a redis+cluster:// URL")
        super().__init__(url, **options)
        self._target = target
        self._cluster: RedisCluster | None = None
        self._shards: dict[Address, _Shard] = {}
        self._slots: SlotMap | None = None
        self._known: list[Address] = []
        self._moved = False

    # -- clients ---------------------------------------------------------------------------

    def _open_clients(self) -> None:
        self._cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self._target.seeds],
            username=self._target.username,
            password=self._target.password,
            ssl=self._target.tls,
            client_name=self.publisher_client_name,
            require_full_coverage=False,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
            socket_connect_timeout=self._connect_timeout,
            socket_timeout=self._io_timeout,
        )

    async def _close_clients(self) -> None:
        if self._cluster is not None:
            with contextlib.suppress(*_NETWORK_ERRORS):
                await self._cluster.aclose()
        self._cluster = None

    async def _publish_batch(self, batch: _Batch) -> list[Any]:
        assert self._cluster is not None
        async with self._cluster.pipeline(transaction=False) as pipe:
            for channel, data, _ in batch:
                pipe.spublish(channel, data)
            return await pipe.execute(raise_on_error=False)

    async def _ping_backend(self) -> None:
        assert self._cluster is not None
        await self._cluster.ping(target_nodes=RedisCluster.PRIMARIES)

    # -- the subscriber connections --------------------------------------------------------

    async def _connect_shards(self) -> dict[Address, _Shard]:
        timeout = self._connect_timeout + self._io_timeout
        slots = await read_slot_map(self._target, self._known, timeout=timeout)
        shards: dict[Address, _Shard] = {}
        try:
            for address in slots.primaries:
                client = _node_client(
                    self._target,
                    address,
                    name=self.subscriber_client_name,
                    timeout=self._connect_timeout,
                )
                pubsub = client.pubsub()
                shards[address] = _Shard(address, client, pubsub)
                async with asyncio.timeout(timeout):
                    await pubsub.connect()  # type: ignore[no-untyped-call]  # untyped in redis-py
        except BaseException:
            await self._discard_shards(shards)
            raise
        self._slots = slots
        self._known = sorted({*self._known, *slots.primaries})
        return shards

    async def _discard_shards(self, shards: dict[Address, _Shard]) -> None:
        for shard in shards.values():
            with contextlib.suppress(*_NETWORK_ERRORS):
                await shard.pubsub.aclose()
            with contextlib.suppress(*_NETWORK_ERRORS):
                await shard.client.aclose()

    async def _run_subscriber(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                shards = await self._connect_shards()
            except _NETWORK_ERRORS as exc:
                self._first_attempt.set()
                log.log(
                    logging.WARNING if attempt < 3 or attempt % 20 == 0 else logging.DEBUG,
                    "redis cluster subscriber cannot connect (attempt %d): %s: %s",
                    attempt + 1,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            connected_at = now = loop.time()
            self._shards, self._moved = shards, False
            for shard in shards.values():
                shard.last_rx = now
            self._begin_epoch(next(iter(shards.values())).pubsub, now)
            self._first_attempt.set()
            try:
                async with asyncio.TaskGroup() as group:
                    for shard in shards.values():
                        group.create_task(self._read_shard(shard))
                    group.create_task(self._write_shards())
            except* _NETWORK_ERRORS as group:
                error = group.exceptions[0]
                log.warning(
                    "redis cluster subscriber epoch ended: %s: %s", type(error).__name__, error
                )
            except* Exception:  # a bug, not the network: log it loudly, still reconnect
                log.exception("redis cluster subscriber failed unexpectedly; reconnecting")
            finally:
                self._end_epoch()
                self._shards = {}
                await self._discard_shards(shards)
            if loop.time() - connected_at >= self._reconnect_cap:
                attempt = 0
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    def _unexpected_confirmation(self, kind: str, topic: str) -> None:
        if kind == "unsubscribe" and self._counts.get(topic, 0) > 0:
            self._moved = True  # the node dropped a channel we hold: its slot moved
            return
        super()._unexpected_confirmation(kind, topic)

    async def _write_shards(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._slots is not None
        while True:
            _raise_if_cancelling()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._health_interval):
                    await self._commands_ready.wait()
            self._commands_ready.clear()
            while self._commands:
                command, first = self._commands.popleft()
                run = [self._channel(first)]
                while (
                    self._commands
                    and self._commands[0][0] == command
                    and len(run) < _MAX_CHANNELS_PER_COMMAND
                ):
                    run.append(self._channel(self._commands.popleft()[1]))
                by_slot: dict[int, list[str]] = {}
                for channel in run:
                    by_slot.setdefault(key_slot(channel.encode()), []).append(channel)
                for slot, channels in by_slot.items():
                    shard = self._shards[self._slots.owner(slot)]
                    await shard.pubsub.execute_command(f"S{command}", *channels)
                    _raise_if_cancelling()
            now = loop.time()
            for shard in list(self._shards.values()):
                if now - shard.last_rx >= self._health_interval:
                    await shard.pubsub.execute_command("PING")

    async def _read_shard(self, shard: _Shard) -> None:
        loop = asyncio.get_running_loop()
        while True:
            message = await shard.pubsub.get_message(timeout=self._health_interval)
            now = loop.time()
            if message is None:
                if now - shard.last_rx > 2 * self._health_interval:
                    raise _ConnectionLost(f"{shard.address}: no reply to keep-alive PING")
                continue
            shard.last_rx = now
            try:
                self._dispatch(message)
            except Exception:
                log.exception("unexpected pub/sub message %r", message)
            if self._moved:
                raise _ConnectionLost(f"{shard.address} gave up a channel: its slot moved")
