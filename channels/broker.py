"""The broker: fan-out of encoded events between server processes.

A server process holds the sockets of *its* clients (``channels/hub.py``). When a message is
committed, the process that committed it publishes the encoded event on a topic (for example
``conv:42``); every process whose hub has a local socket on that topic is subscribed and hands
the bytes to those sockets. ``MemoryBroker`` does this inside one process, ``RedisBroker``
across processes through Redis pub/sub. Both pass the same contract suite
(``tests/test_broker_contract.py``).

Guarantees, and what they deliberately are not
----------------------------------------------
* **At-most-once delivery.** Pub/sub keeps nothing: an event published while a subscriber is
  disconnected, or to a topic nobody is subscribed to, is gone. The broker is a *latency*
  path, never the source of truth: every message is committed to storage before it is
  published (DESIGN.md section 4, invariant 1), and storage is what readers resume from.
* **Order per topic per publisher.** Events one broker instance publishes on one topic arrive
  in ``publish()`` call order (one connection, one FIFO pipeline). Events from *different*
  processes on the same topic may interleave in any order; the hub orders by ``seq``.
* **``subscribe()`` returns only once the subscription is confirmed active.** The hub's
  pattern for a socket that joins a conversation is: ``await subscribe(topic)``, *then* read
  storage for everything after the client's cursor, then merge live events by ``seq``
  (dropping duplicates). Because the subscription is active before the storage read starts,
  any event published after that read is delivered live, and any event published before it is
  in the read: nothing falls in between. If ``subscribe()`` returned as soon as the SUBSCRIBE
  command was *sent*, a message committed and published in that window would be in neither.
* **Gaps are repaired by the caller.** When the broker loses its connection, events published
  meanwhile are lost (at-most-once). Once the connection is back and every topic is
  re-subscribed (confirmed), the broker awaits ``on_reconnect()``; the hub then re-reads
  storage for its topics from the last ``seq`` each socket has seen and fills the gap.
* **Bounded.** Publishing never grows memory without limit: when the backend cannot keep up or
  is unreachable, ``publish()`` raises ``BrokerUnavailable`` and the caller turns that into an
  error or relies on storage-based resume.

Reference counting: several local sockets can want one topic. ``subscribe`` and
``unsubscribe`` are counted per topic; the backend is told only on the 0 -> 1 and 1 -> 0
transitions. Every ``subscribe`` must be paired with exactly one ``unsubscribe``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Broker", "BrokerStats", "BrokerUnavailable", "Handler", "ReconnectHandler"]

Handler = Callable[[str, bytes], None]
"""``(topic, data)``: called on the event loop for each delivered event; must not block."""

ReconnectHandler = Callable[[], Awaitable[None]]
"""Awaited after a reconnect, once every topic with a positive count is re-subscribed."""


class BrokerUnavailable(Exception):
    """The broker cannot do what was asked right now (backend down, buffer full, closed)."""


@dataclass(frozen=True, slots=True)
class BrokerStats:
    """Counters since the broker was created (exported by ``/metrics``)."""

    reconnects: int = 0
    published: int = 0
    received: int = 0
    publish_errors: int = 0


class Broker(Protocol):
    """Topic fan-out between processes. See the module docstring for the guarantees."""

    def bind(self, on_message: Handler, on_reconnect: ReconnectHandler) -> None:
        """Set the one consumer of this process (the hub). Call before ``start()``."""
        ...

    async def start(self) -> None:
        """Start background work (connections, reader). Does not fail if the backend is down."""
        ...

    async def close(self) -> None:
        """Stop background work and release connections. Idempotent."""
        ...

    async def publish(self, topic: str, data: bytes) -> None:
        """Send ``data`` to every current subscriber of ``topic``; ``BrokerUnavailable`` if not."""
        ...

    async def subscribe(self, topic: str) -> None:
        """Count one more local interest in ``topic``; return once the subscription is active.

        Raises ``BrokerUnavailable`` (and takes the count back) if it cannot be confirmed in
        time.
        """
        ...

    async def unsubscribe(self, topic: str) -> None:
        """Release one ``subscribe``; the backend unsubscribes on the last release."""
        ...

    async def ping(self) -> None:
        """Check the backend round trip (``/readyz``); raise ``BrokerUnavailable`` if down."""
        ...

    def stats(self) -> BrokerStats:
        """A snapshot of the counters."""
        ...
