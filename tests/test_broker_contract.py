"""One contract for every Broker: the same rows run against MemoryBroker, RedisBroker and
RedisClusterBroker (sharded pub/sub on a local six-node cluster, tests/redis_cluster.py).

No sleeps: every wait is on a future or event under ``asyncio.timeout``. "Not delivered" is
proven by publishing, after the event that must not arrive, to a sentinel topic that is still
subscribed, from the same publisher: per-topic-per-publisher order means the dropped event
would have been handled before the sentinel.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from channels.broker import Broker, BrokerUnavailable
from channels.broker_cluster import RedisClusterBroker
from channels.broker_memory import MemoryBroker
from channels.broker_redis import RedisBroker
from tests.redis_cluster import LocalCluster

WAIT = 10.0  # generous upper bound; tests normally finish in milliseconds


class Collector:
    """The bound consumer: records deliveries and reconnects, and lets tests await them."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.reconnects = 0
        self.reconnected = asyncio.Event()
        self.on_reconnect_hook: Callable[[], Awaitable[None]] | None = None
        self.failing_topics: set[str] = set()
        self._changed = asyncio.Event()

    def on_message(self, topic: str, data: bytes) -> None:
        self.received.append((topic, data))
        self._changed.set()
        if topic in self.failing_topics:
            raise RuntimeError(f"handler bug on {topic}")

    async def on_reconnect(self) -> None:
        if self.on_reconnect_hook is not None:
            await self.on_reconnect_hook()
        self.reconnects += 1
        self.reconnected.set()

    def of(self, topic: str) -> list[bytes]:
        return [data for t, data in self.received if t == topic]

    async def wait_for(self, topic: str, count: int) -> list[bytes]:
        """Wait until ``topic`` has at least ``count`` deliveries; return them all."""
        async with asyncio.timeout(WAIT):
            while len(self.of(topic)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.of(topic)


class LaggyProxy:
    """TCP proxy in front of Redis that can delay client -> server bytes (fault injection).

    The delay simulates a slow link for the broker under test, while its peer talks to Redis
    directly: that makes "subscribe returned before SUBSCRIBE reached Redis" observable.
    It is latency, not synchronisation: no test waits on it.
    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.path = parts.path or "/0"
        self.delay = 0.0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._frozen: set[asyncio.StreamWriter] = set()

    def freeze_existing(self) -> None:
        """Silently drop all traffic of the current connections (a half-open TCP link)."""
        self._frozen.update(self._writers)

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{self.path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, lagged=True)),
            asyncio.create_task(self._pipe(up_reader, writer, lagged=False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, lagged: bool
    ) -> None:
        try:
            while data := await src.read(65536):
                if lagged and self.delay:
                    await asyncio.sleep(self.delay)
                if dst in self._frozen:
                    continue
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            dst.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()


@dataclass
class Harness:
    kind: str
    broker: MemoryBroker | RedisBroker
    collector: Collector
    make_peer: Callable[[], Awaitable[Broker]]
    force_reconnect: Callable[[], Awaitable[None]]
    make_unavailable: Callable[[], Awaitable[Broker]]
    set_lag: Callable[[float], None]
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def _started(broker: MemoryBroker | RedisBroker, collector: Collector) -> None:
    broker.bind(collector.on_message, collector.on_reconnect)
    await broker.start()


async def _kill_client(redis_url: str, name: str) -> None:
    admin = aioredis.Redis.from_url(redis_url)
    try:
        ids = [c["id"] for c in await admin.client_list() if c.get("name") == name]
        assert len(ids) == 1, f"expected one connection named {name}, found {ids}"
        await admin.client_kill_filter(_id=ids[0])
    finally:
        await admin.aclose()


async def _kill_client_everywhere(cluster: LocalCluster, name: str) -> int:
    """Kill the connections named ``name`` on every node; how many there were."""
    killed = 0
    for node in cluster.alive():
        admin = node.client()
        try:
            for c in await admin.client_list():
                if c.get("name") == name:
                    killed += await admin.client_kill_filter(_id=c["id"])
        finally:
            await admin.aclose()
    return killed


@pytest.fixture(params=["memory", "redis", "cluster"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    collector = Collector()
    cleanups: list[Callable[[], Awaitable[None]]] = []
    broker: MemoryBroker | RedisBroker
    if request.param == "memory":
        memory = MemoryBroker()
        broker = memory

        async def make_peer() -> Broker:
            peer = MemoryBroker(bus=memory.bus)
            await _started(peer, Collector())
            cleanups.append(peer.close)
            return peer

        async def force_reconnect() -> None:
            await memory.simulate_reconnect()

        async def make_unavailable() -> Broker:
            down = MemoryBroker()
            await _started(down, Collector())
            await down.close()
            return down

        def set_lag(seconds: float) -> None:
            pass  # nothing between an in-process publisher and subscriber

    elif request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        prefix = f"kinline-test-{secrets.token_hex(6)}:"
        # No proxy: the nodes announce their own addresses; the lag rows run without lag.
        sharded = RedisClusterBroker(cluster.url, channel_prefix=prefix)
        broker = sharded

        async def make_peer() -> Broker:
            peer = RedisClusterBroker(cluster.url, channel_prefix=prefix)
            await _started(peer, Collector())
            cleanups.append(peer.close)
            return peer

        async def force_reconnect() -> None:
            # One killed shard connection ends the epoch (the others are closed by the broker).
            assert await _kill_client_everywhere(cluster, sharded.subscriber_client_name) >= 1

        async def make_unavailable() -> Broker:
            down = RedisClusterBroker(
                "redis+cluster://127.0.0.1:1",
                channel_prefix=prefix,
                subscribe_timeout=0.3,
                connect_timeout=1.0,
            )
            await _started(down, Collector())
            cleanups.append(down.close)
            return down

        def set_lag(seconds: float) -> None:
            pass

    else:
        redis_url: str = request.getfixturevalue("redis_url")
        prefix = f"kinline-test-{secrets.token_hex(6)}:"
        proxy = LaggyProxy(redis_url)
        # The broker under test reaches Redis through the proxy, its peers directly.
        real = RedisBroker(await proxy.start(), channel_prefix=prefix)
        broker = real
        cleanups.append(proxy.close)

        async def make_peer() -> Broker:
            peer = RedisBroker(redis_url, channel_prefix=prefix)
            await _started(peer, Collector())
            cleanups.append(peer.close)
            return peer

        async def force_reconnect() -> None:
            await _kill_client(redis_url, real.subscriber_client_name)

        async def make_unavailable() -> Broker:
            down = RedisBroker(
                "redis://127.0.0.1:1/0",
                channel_prefix=prefix,
                subscribe_timeout=0.3,
                connect_timeout=1.0,
            )
            await _started(down, Collector())
            cleanups.append(down.close)
            return down

        def set_lag(seconds: float) -> None:
            proxy.delay = seconds

    await _started(broker, collector)
    h = Harness(
        request.param,
        broker,
        collector,
        make_peer,
        force_reconnect,
        make_unavailable,
        set_lag,
        cleanups,
    )
    try:
        yield h
    finally:
        await broker.close()
        for cleanup in reversed(cleanups):
            await cleanup()


async def test_publish_reaches_subscriber_with_exact_bytes(harness: Harness) -> None:
    payload = bytes(range(256)) + b"\x00\xff not utf-8: \xc3\x28"
    await harness.broker.subscribe("conv:1")
    await harness.broker.publish("conv:1", payload)
    assert await harness.collector.wait_for("conv:1", 1) == [payload]
    stats = harness.broker.stats()
    assert (stats.published, stats.received, stats.publish_errors) == (1, 1, 0)


async def test_order_of_1000_publishes_on_one_topic_is_preserved(harness: Harness) -> None:
    await harness.broker.subscribe("conv:order")
    expected = [str(i).encode() for i in range(1000)]
    # Concurrent callers: the Redis flusher batches them into pipelines; order must hold.
    await asyncio.gather(*(harness.broker.publish("conv:order", data) for data in expected))
    assert await harness.collector.wait_for("conv:order", 1000) == expected
    assert harness.broker.stats().published == 1000


async def test_no_delivery_to_a_topic_never_subscribed(harness: Harness) -> None:
    await harness.broker.subscribe("sentinel")
    await harness.broker.publish("other", b"must not arrive")
    await harness.broker.publish("sentinel", b"done")
    await harness.collector.wait_for("sentinel", 1)
    assert harness.collector.of("other") == []


async def test_subscriptions_are_reference_counted(harness: Harness) -> None:
    broker, collector = harness.broker, harness.collector
    peer = await harness.make_peer()
    await broker.subscribe("sentinel")
    await broker.subscribe("conv:rc")
    await broker.subscribe("conv:rc")
    await broker.unsubscribe("conv:rc")  # one holder left: still delivered

    await peer.publish("conv:rc", b"one")
    await peer.publish("sentinel", b"s1")
    await collector.wait_for("sentinel", 1)
    assert collector.of("conv:rc") == [b"one"]

    # Last holder gone: not delivered any more, even while the backend UNSUBSCRIBE is still
    # on its (slowed-down) way and the peer's events reach the subscriber connection first.
    harness.set_lag(0.05)
    await broker.unsubscribe("conv:rc")
    await peer.publish("conv:rc", b"two")
    await peer.publish("sentinel", b"s2")
    await collector.wait_for("sentinel", 2)
    assert collector.of("conv:rc") == [b"one"]

    await broker.subscribe("conv:rc")  # and back again
    await peer.publish("conv:rc", b"three")
    assert await collector.wait_for("conv:rc", 2) == [b"one", b"three"]


async def test_publish_from_another_process_right_after_subscribe_is_received(
    harness: Harness,
) -> None:
    """subscribe() returns only once the subscription is confirmed active.

    Another broker instance (for Redis: another connection, i.e. another process) publishes
    the moment subscribe() returns. The subscriber's link is slowed down, so if subscribe()
    returned on *sending* SUBSCRIBE, Redis would run the peer's PUBLISH first and lose it.
    """
    peer = await harness.make_peer()
    harness.set_lag(0.05)
    topics = [f"conv:fresh:{i}" for i in range(20)]

    async def subscribe_then_publish(topic: str) -> None:
        await harness.broker.subscribe(topic)
        await peer.publish(topic, topic.encode())

    await asyncio.gather(*(subscribe_then_publish(topic) for topic in topics))
    for topic in topics:
        assert await harness.collector.wait_for(topic, 1) == [topic.encode()]


async def test_concurrent_subscribes_of_one_topic_all_wait_for_the_confirmation(
    harness: Harness,
) -> None:
    peer = await harness.make_peer()
    await asyncio.gather(*(harness.broker.subscribe("conv:shared") for _ in range(5)))
    await peer.publish("conv:shared", b"hello")
    assert await harness.collector.wait_for("conv:shared", 1) == [b"hello"]
    for _ in range(4):
        await harness.broker.unsubscribe("conv:shared")
    await peer.publish("conv:shared", b"still")  # one of the five holders remains
    assert await harness.collector.wait_for("conv:shared", 2) == [b"hello", b"still"]


async def test_a_failing_handler_does_not_stop_delivery(harness: Harness) -> None:
    harness.collector.failing_topics.add("conv:bad")
    await harness.broker.subscribe("conv:bad")
    await harness.broker.subscribe("conv:good")
    await harness.broker.publish("conv:bad", b"boom")
    await harness.broker.publish("conv:good", b"fine")
    assert await harness.collector.wait_for("conv:good", 1) == [b"fine"]
    assert harness.collector.of("conv:bad") == [b"boom"]


async def test_recovery_after_reconnect(harness: Harness) -> None:
    """After a reconnect, on_reconnect is awaited once, after every topic is re-subscribed."""
    broker, collector = harness.broker, harness.collector
    peer = await harness.make_peer()
    await broker.subscribe("conv:r1")
    await broker.subscribe("conv:r2")
    await peer.publish("conv:r1", b"before")
    await collector.wait_for("conv:r1", 1)

    async def publish_during_on_reconnect() -> None:
        # The topics must already be active when on_reconnect runs: the hub reads storage
        # here and relies on every later event being delivered live.
        await peer.publish("conv:r2", b"from on_reconnect")

    collector.on_reconnect_hook = publish_during_on_reconnect
    harness.set_lag(0.05)  # a slow re-SUBSCRIBE must still complete before on_reconnect
    await harness.force_reconnect()
    async with asyncio.timeout(WAIT):
        await collector.reconnected.wait()

    await peer.publish("conv:r1", b"after")
    assert await collector.wait_for("conv:r1", 2) == [b"before", b"after"]
    assert await collector.wait_for("conv:r2", 1) == [b"from on_reconnect"]
    assert collector.reconnects == 1
    assert broker.stats().reconnects == 1
    await broker.ping()


async def test_unavailable_broker_raises_promptly(harness: Harness) -> None:
    down = await harness.make_unavailable()
    async with asyncio.timeout(3):
        with pytest.raises(BrokerUnavailable):
            await down.publish("conv:x", b"lost")
        with pytest.raises(BrokerUnavailable):
            await down.ping()
        with pytest.raises(BrokerUnavailable):
            await down.subscribe("conv:x")
    assert down.stats().publish_errors == 1
    assert down.stats().published == 0


async def test_close_is_clean_and_idempotent(harness: Harness) -> None:
    broker = harness.broker
    await broker.subscribe("conv:c")
    await broker.publish("conv:c", b"x")
    await harness.collector.wait_for("conv:c", 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await broker.close()
        await broker.close()
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    leftovers = [
        task
        for task in asyncio.all_tasks()
        if task is not asyncio.current_task() and task.get_name().startswith("kinline-broker")
    ]
    assert leftovers == []
    with pytest.raises(BrokerUnavailable):
        await broker.publish("conv:c", b"y")
    with pytest.raises(BrokerUnavailable):
        await broker.ping()
    await broker.unsubscribe("conv:c")  # releasing after close is harmless


# -- Redis only -----------------------------------------------------------------------------


@pytest.fixture
async def redis_broker(redis_url: str) -> AsyncIterator[tuple[RedisBroker, Collector]]:
    collector = Collector()
    broker = RedisBroker(
        redis_url, channel_prefix=f"kinline-test-{secrets.token_hex(6)}:", max_pending=10
    )
    await _started(broker, collector)
    try:
        yield broker, collector
    finally:
        await broker.close()


async def test_redis_publish_buffer_is_bounded(redis_broker: tuple[RedisBroker, Collector]) -> None:
    broker, collector = redis_broker
    await broker.subscribe("conv:b")
    # All 25 calls enqueue before the flusher runs once: 10 fit, 15 are refused at once.
    results = await asyncio.gather(
        *(broker.publish("conv:b", str(i).encode()) for i in range(25)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, BrokerUnavailable)]
    assert len(refused) == 15
    assert results[:10] == [None] * 10
    assert await collector.wait_for("conv:b", 10) == [str(i).encode() for i in range(10)]
    assert broker.stats().publish_errors == 15


async def test_redis_subscriber_connection_is_named(
    redis_url: str, redis_broker: tuple[RedisBroker, Collector]
) -> None:
    broker, _ = redis_broker
    assert broker.subscriber_client_name.startswith("kinline-sub-")
    admin = aioredis.Redis.from_url(redis_url)
    try:
        names = [c.get("name") for c in await admin.client_list()]
    finally:
        await admin.aclose()
    assert names.count(broker.subscriber_client_name) == 1


async def test_redis_recovers_from_repeated_kills(
    redis_url: str, redis_broker: tuple[RedisBroker, Collector]
) -> None:
    broker, collector = redis_broker
    await broker.subscribe("conv:k")
    for round_ in range(1, 4):
        collector.reconnected.clear()
        await _kill_client(redis_url, broker.subscriber_client_name)
        async with asyncio.timeout(WAIT):
            await collector.reconnected.wait()
        await broker.publish("conv:k", str(round_).encode())
        await collector.wait_for("conv:k", round_)
    assert collector.of("conv:k") == [b"1", b"2", b"3"]
    assert collector.reconnects == broker.stats().reconnects == 3


async def test_redis_detects_a_silent_connection_by_keepalive(redis_url: str) -> None:
    """A half-open connection (no RST, no data) is found by the PING keep-alive and replaced."""
    proxy = LaggyProxy(redis_url)
    prefix = f"kinline-test-{secrets.token_hex(6)}:"
    collector = Collector()
    broker = RedisBroker(await proxy.start(), channel_prefix=prefix, health_check_interval=0.1)
    peer = RedisBroker(redis_url, channel_prefix=prefix)
    await _started(broker, collector)
    await _started(peer, Collector())
    try:
        await broker.subscribe("conv:silent")
        proxy.freeze_existing()
        async with asyncio.timeout(WAIT):
            await collector.reconnected.wait()
        await peer.publish("conv:silent", b"after")
        assert await collector.wait_for("conv:silent", 1) == [b"after"]
        assert broker.stats().reconnects == 1
    finally:
        await peer.close()
        await broker.close()
        await proxy.close()


async def test_redis_close_fails_a_waiting_subscribe_with_broker_unavailable() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0", subscribe_timeout=60, connect_timeout=1.0)
    await _started(broker, Collector())
    waiting = asyncio.Event()

    async def subscribe() -> None:
        waiting.set()  # the task then runs on into subscribe() until it waits
        await broker.subscribe("conv:never")

    task = asyncio.create_task(subscribe())
    await waiting.wait()
    await broker.close()
    async with asyncio.timeout(WAIT):
        with pytest.raises(BrokerUnavailable):
            await task
