"""In-process broker: the embedded default (one server process, no Redis).

Several ``MemoryBroker`` instances may share one ``MemoryBus`` to stand for several server
processes inside one Python process (tests of the hub across "processes" without Redis).
Delivery goes through ``loop.call_soon``: never re-entrant into the publisher, and FIFO, so
events of one publisher on one topic arrive in publish order, like the Redis broker.
"""

from __future__ import annotations

import asyncio
import logging

from channels.broker import BrokerStats, BrokerUnavailable, Handler, ReconnectHandler

__all__ = ["MemoryBroker", "MemoryBus"]

log = logging.getLogger(__name__)


class MemoryBus:
    """The shared "server" that ``MemoryBroker`` instances publish through."""

    def __init__(self) -> None:
        self._brokers: set[MemoryBroker] = set()

    def _attach(self, broker: MemoryBroker) -> None:
        self._brokers.add(broker)

    def _detach(self, broker: MemoryBroker) -> None:
        self._brokers.discard(broker)

    def _publish(self, topic: str, data: bytes) -> None:
        for broker in self._brokers:
            broker._offer(topic, data)


class MemoryBroker:
    """``Broker`` for one process (or several instances on one shared ``MemoryBus``)."""

    def __init__(self, bus: MemoryBus | None = None) -> None:
        self.bus = bus if bus is not None else MemoryBus()
        self._counts: dict[str, int] = {}
        self._on_message: Handler | None = None
        self._on_reconnect: ReconnectHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._reconnects = 0
        self._published = 0
        self._received = 0
        self._publish_errors = 0

    def bind(self, on_message: Handler, on_reconnect: ReconnectHandler) -> None:
        self._on_message = on_message
        self._on_reconnect = on_reconnect

    async def start(self) -> None:
        if self._on_message is None:
            raise RuntimeError("bind() the broker before start()")
        if self._closed:
            raise RuntimeError("a closed broker cannot be restarted")
        self._loop = asyncio.get_running_loop()
        self.bus._attach(self)

    async def close(self) -> None:
        self._closed = True
        self.bus._detach(self)
        self._counts.clear()

    def _check_running(self) -> None:
        if self._closed or self._loop is None:
            raise BrokerUnavailable("broker is not running")

    async def publish(self, topic: str, data: bytes) -> None:
        try:
            self._check_running()
        except BrokerUnavailable:
            self._publish_errors += 1
            raise
        self._published += 1
        self.bus._publish(topic, bytes(data))

    def _offer(self, topic: str, data: bytes) -> None:
        """Called by the bus for every published event; queue it if we are subscribed."""
        if self._counts.get(topic, 0) > 0 and self._loop is not None:
            self._loop.call_soon(self._deliver, topic, data)

    def _deliver(self, topic: str, data: bytes) -> None:
        # Re-check: an unsubscribe between publish and this callback drops the event.
        if self._closed or self._counts.get(topic, 0) <= 0 or self._on_message is None:
            return
        self._received += 1
        try:
            self._on_message(topic, data)
        except Exception:
            log.exception("broker message handler failed for topic %r", topic)

    async def subscribe(self, topic: str) -> None:
        self._check_running()
        self._counts[topic] = self._counts.get(topic, 0) + 1

    async def unsubscribe(self, topic: str) -> None:
        count = self._counts.get(topic, 0)
        if count <= 0:
            if not self._closed:
                log.error("unsubscribe(%r) without a matching subscribe", topic)
            return
        if count == 1:
            del self._counts[topic]
        else:
            self._counts[topic] = count - 1

    async def ping(self) -> None:
        self._check_running()

    def stats(self) -> BrokerStats:
        return BrokerStats(
            reconnects=self._reconnects,
            published=self._published,
            received=self._received,
            publish_errors=self._publish_errors,
        )

    async def simulate_reconnect(self) -> None:
        """Behave as after a lost and restored backend connection (contract tests).

        Subscriptions survive (as the Redis broker re-subscribes them) and ``on_reconnect`` is
        awaited once, so the hub's gap-repair path runs against the memory broker too.
        """
        self._check_running()
        self._reconnects += 1
        if self._on_reconnect is not None:
            await self._on_reconnect()
