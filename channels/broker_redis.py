"""Redis pub/sub broker: fan-out between server processes and hosts.

Shape of one process
--------------------
* **One subscriber connection** (a redis-py ``PubSub`` on its own connection, named
  ``kinline-sub-<pid>-<random>`` with CLIENT SETNAME so operators and tests can find it in
  ``CLIENT LIST``). A *reader* task pulls every message from it and calls the bound handler; a
  *writer* task sends SUBSCRIBE / UNSUBSCRIBE / keep-alive PING in the order the ref-count
  transitions happened. Redis answers each channel of each (UN)SUBSCRIBE with one confirmation,
  in order, so the reader can tell when the *last* command sent for a channel is confirmed:
  only then is the subscription active and ``subscribe()`` returns (see ``channels/broker.py``
  for why that matters).
* **One publish client.** ``publish()`` only appends to a bounded buffer; a single flusher
  task sends everything buffered as one non-transactional pipeline (one round trip), then the
  next batch. Each caller awaits its own result. One FIFO flusher on one connection is what
  keeps per-topic order for this publisher. When the buffer is full (Redis slow or down),
  ``publish()`` raises ``BrokerUnavailable`` at once instead of growing memory.

Reconnects are ours, not redis-py's
-----------------------------------
redis-py's ``PubSub`` silently reconnects inside its retry wrapper and re-subscribes from its
``on_connect`` callback. Invisible healing is exactly what must not happen here: events
published during the gap are lost and only the hub can repair that, so it has to be told.
The subscriber connection is therefore created with a retry policy that retries nothing, every
connection error reaches the reader, and each connection ("epoch") gets a fresh ``PubSub``.
After a drop the reader backs off (exponential with jitter, capped), reconnects, re-subscribes
every topic whose count is positive, waits for all those confirmations, and only then awaits
``on_reconnect()`` (in its own task, so the hub may subscribe from it without deadlocking the
reader).

Liveness: redis-py's ``health_check_interval`` only PINGs when someone reads or sends, and its
check on ``send_command`` reads the PONG itself, racing the reader task for the socket. Instead
the writer PINGs when nothing was received for ``health_check_interval`` seconds and the reader
declares the connection dead when nothing at all arrived for twice that (a half-open TCP
connection after a network cut otherwise blocks a reader forever).

The subscriber speaks RESP2 so pub/sub traffic is plain arrays on the connection rather than
RESP3 push frames handled by parser callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from channels.broker import BrokerStats, BrokerUnavailable, Handler, ReconnectHandler
from channels.redis_target import REDIS_ERRORS

__all__ = ["RedisBroker"]

log = logging.getLogger(__name__)

_NETWORK_ERRORS = REDIS_ERRORS
_MAX_CHANNELS_PER_COMMAND = 256
_Batch = list[tuple[str, bytes, "asyncio.Future[None]"]]  # (channel, data, the caller's result)
# (S)SUBSCRIBE and (S)UNSUBSCRIBE confirmations (sharded pub/sub: channels/broker_cluster.py).
_CONFIRMATIONS = {
    "subscribe": "subscribe",
    "unsubscribe": "unsubscribe",
    "ssubscribe": "subscribe",
    "sunsubscribe": "unsubscribe",
}


class _ConnectionLost(ConnectionError):
    """Raised by the reader when the subscriber connection stopped answering."""


def _raise_if_cancelling() -> None:
    """Re-raise a cancellation that an inner ``asyncio.wait_for`` swallowed.

    On Python 3.11, ``wait_for`` (used by redis-py around socket writes when ``socket_timeout``
    is set) returns normally when its operation completes in the same loop iteration as a
    ``cancel()`` of the calling task; the request is still counted by ``Task.cancelling()``.
    A background loop that ignored that would never stop (``close()`` would hang).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class RedisBroker:
    """``Broker`` on Redis pub/sub (``redis.asyncio``). See the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        channel_prefix: str = "kinline:",
        reconnect_base: float = 0.05,
        reconnect_cap: float = 2.0,
        subscribe_timeout: float = 5.0,
        io_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        health_check_interval: float = 5.0,
        max_pending: int = 10_000,
        max_batch: int = 1_000,
    ) -> None:
        if reconnect_base <= 0 or reconnect_cap < reconnect_base:
            raise ValueError("need 0 < reconnect_base <= reconnect_cap")
        if max_pending < 1 or max_batch < 1 or health_check_interval <= 0:
            raise ValueError("max_pending, max_batch and health_check_interval must be positive")
        self._url = url
        self._prefix = channel_prefix
        self._prefix_bytes = channel_prefix.encode()
        self._reconnect_base = reconnect_base
        self._reconnect_cap = reconnect_cap
        self._subscribe_timeout = subscribe_timeout
        self._io_timeout = io_timeout
        self._connect_timeout = connect_timeout
        self._health_interval = health_check_interval
        self._max_pending = max_pending
        self._max_batch = max_batch
        suffix = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.subscriber_client_name = f"kinline-sub-{suffix}"
        self.publisher_client_name = f"kinline-pub-{suffix}"

        self._on_message: Handler | None = None
        self._on_reconnect: ReconnectHandler | None = None
        self._sub_client: Redis | None = None
        self._pub_client: Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reconnect_task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._started = False
        self._closed = False

        # Subscription state. ``_counts`` survives connections; the rest is per connection.
        self._counts: dict[str, int] = {}
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None  # the live connection, None while down
        self._inflight: dict[str, int] = {}  # (UN)SUBSCRIBEs sent, not yet confirmed
        self._active: set[str] = set()  # confirmed subscribed on the live connection
        self._resync: set[str] | None = None  # topics to confirm before on_reconnect
        self._commands: deque[tuple[str, str]] = deque()
        self._commands_ready = asyncio.Event()
        self._last_rx = 0.0
        self._ever_connected = False

        # Publishing.
        self._pending: deque[tuple[str, bytes, asyncio.Future[None]]] = deque()
        self._pending_ready = asyncio.Event()

        self._reconnects = 0
        self._published = 0
        self._received = 0
        self._publish_errors = 0

    # -- lifecycle -------------------------------------------------------------------------

    def bind(self, on_message: Handler, on_reconnect: ReconnectHandler) -> None:
        self._on_message = on_message
        self._on_reconnect = on_reconnect

    async def start(self) -> None:
        """Start the reader and the flusher; wait for the first connection attempt.

        Never fails because Redis is down: the reader keeps reconnecting in the background,
        ``ping()`` reports the outage and ``publish()``/``subscribe()`` raise
        ``BrokerUnavailable``.
        """
        if self._on_message is None:
            raise RuntimeError("bind() the broker before start()")
        if self._started or self._closed:
            raise RuntimeError("start() may be called once")
        self._started = True
        self._open_clients()
        self._tasks = [
            asyncio.create_task(self._run_subscriber(), name="kinline-broker-reader"),
            asyncio.create_task(self._run_flusher(), name="kinline-broker-flusher"),
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._connect_timeout + self._io_timeout):
                await self._first_attempt.wait()

    def _open_clients(self) -> None:
        """Create the subscriber and publish clients (no I/O yet)."""
        self._sub_client = Redis.from_url(
            self._url,
            client_name=self.subscriber_client_name,
            protocol=2,
            # Retry nothing, so no silent reconnect + resubscribe (see module docstring).
            retry=Retry(NoBackoff(), 0, supported_errors=()),
            socket_connect_timeout=self._connect_timeout,
            # No socket_timeout: redis-py would wrap each write in wait_for (see
            # _raise_if_cancelling); reads carry their own timeout, liveness is the keep-alive,
            # and the connect handshake is bounded in _run_subscriber.
            health_check_interval=0,
        )
        self._pub_client = Redis.from_url(
            self._url,
            client_name=self.publisher_client_name,
            # No retry: a retried pipeline could publish twice; fail fast, the caller decides.
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=self._connect_timeout,
            socket_timeout=self._io_timeout,
        )

    async def _close_clients(self) -> None:
        for client in (self._sub_client, self._pub_client):
            if client is not None:
                with contextlib.suppress(*_NETWORK_ERRORS):
                    await client.aclose()
        self._sub_client = self._pub_client = None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        if self._reconnect_task is not None:
            tasks.append(self._reconnect_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self._reconnect_task = None
        for _, _, fut in self._pending:
            if not fut.done():
                fut.set_exception(BrokerUnavailable("broker closed"))
        self._pending.clear()
        for fut in self._confirmations.values():
            fut.cancel()
        self._confirmations.clear()
        await self._close_clients()

    def _check_running(self) -> None:
        if self._closed or not self._started:
            raise BrokerUnavailable("broker is not running")

    # -- publishing ------------------------------------------------------------------------

    def _channel(self, topic: str) -> str:
        return self._prefix + topic

    async def publish(self, topic: str, data: bytes) -> None:
        if self._closed or not self._started:
            self._publish_errors += 1
            raise BrokerUnavailable("broker is not running")
        if len(self._pending) >= self._max_pending:
            self._publish_errors += 1
            raise BrokerUnavailable(f"publish buffer full ({self._max_pending} pending)")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((self._channel(topic), bytes(data), fut))
        self._pending_ready.set()
        await fut

    async def _run_flusher(self) -> None:
        while True:
            await self._pending_ready.wait()
            self._pending_ready.clear()
            while self._pending:
                batch: list[tuple[str, bytes, asyncio.Future[None]]] = []
                while self._pending and len(batch) < self._max_batch:
                    item = self._pending.popleft()
                    if not item[2].done():  # the caller gave up (cancelled): skip it
                        batch.append(item)
                if batch:
                    await self._flush(batch)
                    _raise_if_cancelling()

    async def _flush(self, batch: list[tuple[str, bytes, asyncio.Future[None]]]) -> None:
        try:
            async with asyncio.timeout(self._io_timeout * 2):
                results = await self._publish_batch(batch)
        except _NETWORK_ERRORS as exc:
            self._publish_errors += len(batch)
            log.warning(
                "publishing %d event(s) failed: %s: %s", len(batch), type(exc).__name__, exc
            )
            for _, _, fut in batch:
                if not fut.done():
                    error = BrokerUnavailable(f"publish failed: {exc!r}")
                    error.__cause__ = exc
                    fut.set_exception(error)
            return
        for (_, _, fut), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                self._publish_errors += 1
                if not fut.done():
                    error = BrokerUnavailable(f"publish failed: {result!r}")
                    error.__cause__ = result
                    fut.set_exception(error)
            else:
                self._published += 1
                if not fut.done():
                    fut.set_result(None)

    async def _publish_batch(self, batch: _Batch) -> list[Any]:
        """Send ``batch`` as one pipeline; one result (or exception) per event."""
        assert self._pub_client is not None
        async with self._pub_client.pipeline(transaction=False) as pipe:
            for channel, data, _ in batch:
                pipe.publish(channel, data)
            return await pipe.execute(raise_on_error=False)

    async def _ping_backend(self) -> None:
        assert self._pub_client is not None
        await self._pub_client.ping()

    async def ping(self) -> None:
        """Round trip on the publish client, and the subscriber connection must be up."""
        self._check_running()
        if self._pubsub is None:
            raise BrokerUnavailable("subscriber connection is down (reconnecting)")
        try:
            async with asyncio.timeout(self._io_timeout):
                await self._ping_backend()
        except _NETWORK_ERRORS as exc:
            raise BrokerUnavailable(f"redis ping failed: {exc!r}") from exc

    def stats(self) -> BrokerStats:
        return BrokerStats(
            reconnects=self._reconnects,
            published=self._published,
            received=self._received,
            publish_errors=self._publish_errors,
        )

    # -- subscriptions ---------------------------------------------------------------------

    async def subscribe(self, topic: str) -> None:
        self._check_running()
        count = self._counts.get(topic, 0)
        self._counts[topic] = count + 1
        if count == 0:
            self._send("SUBSCRIBE", topic)
        elif topic in self._active:
            return
        fut = self._confirmations.get(topic)
        if fut is None:
            fut = self._confirmations[topic] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self._subscribe_timeout):
                # shield: concurrent subscribers share the future; one timing out must not
                # cancel it for the others.
                await asyncio.shield(fut)
        except TimeoutError:
            self._release(topic)
            raise BrokerUnavailable(
                f"subscription to {topic!r} not confirmed within {self._subscribe_timeout}s"
            ) from None
        except asyncio.CancelledError:
            self._release(topic)
            task = asyncio.current_task()
            if self._closed and task is not None and not task.cancelling():
                # close() cancelled the shared confirmation, not our caller.
                raise BrokerUnavailable("broker closed") from None
            raise

    async def unsubscribe(self, topic: str) -> None:
        self._release(topic)

    def _release(self, topic: str) -> None:
        count = self._counts.get(topic, 0)
        if count <= 0:
            if not self._closed:
                log.error("unsubscribe(%r) without a matching subscribe", topic)
            return
        if count > 1:
            self._counts[topic] = count - 1
            return
        del self._counts[topic]
        self._active.discard(topic)
        fut = self._confirmations.pop(topic, None)
        if fut is not None:
            fut.cancel()
        if self._resync is not None:
            self._resync.discard(topic)
            self._maybe_finish_resync()
        self._send("UNSUBSCRIBE", topic)

    def _send(self, command: str, topic: str) -> None:
        """Queue a (UN)SUBSCRIBE for the live connection; nothing to do while it is down."""
        if self._pubsub is None:
            return  # the next connection subscribes exactly the topics counted by then
        self._inflight[topic] = self._inflight.get(topic, 0) + 1
        self._commands.append((command, topic))
        self._commands_ready.set()

    def _confirmed(self, kind: str, topic: str) -> None:
        outstanding = self._inflight.get(topic, 0)
        if outstanding <= 0:
            self._unexpected_confirmation(kind, topic)
            return
        if outstanding > 1:
            self._inflight[topic] = outstanding - 1
            return  # a later command for this channel is still on its way
        del self._inflight[topic]
        if kind != "subscribe" or self._counts.get(topic, 0) <= 0:
            return
        self._active.add(topic)
        fut = self._confirmations.pop(topic, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
        if self._resync is not None:
            self._resync.discard(topic)
            self._maybe_finish_resync()

    def _unexpected_confirmation(self, kind: str, topic: str) -> None:
        log.warning("unexpected %s confirmation for %r", kind, topic)

    def _maybe_finish_resync(self) -> None:
        if self._resync is None or self._resync:
            return
        self._resync = None
        self._reconnects += 1
        previous = self._reconnect_task
        self._reconnect_task = asyncio.create_task(
            self._notify_reconnect(previous), name="kinline-broker-on-reconnect"
        )

    async def _notify_reconnect(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # one resync at a time, in order
        assert self._on_reconnect is not None
        try:
            await self._on_reconnect()
        except Exception:
            log.exception("broker on_reconnect handler failed")

    # -- the subscriber connection ---------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        delay: float = min(self._reconnect_cap, self._reconnect_base * 2**attempt)
        return delay / 2 + random.uniform(0, delay / 2)

    async def _run_subscriber(self) -> None:
        assert self._sub_client is not None
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            pubsub = self._sub_client.pubsub()
            try:
                async with asyncio.timeout(self._connect_timeout + self._io_timeout):
                    await pubsub.connect()  # type: ignore[no-untyped-call]  # untyped in redis-py
            except _NETWORK_ERRORS as exc:
                await self._discard(pubsub)
                self._first_attempt.set()
                # Loud on the first failures, then once in a while: an outage must not flood.
                log.log(
                    logging.WARNING if attempt < 3 or attempt % 20 == 0 else logging.DEBUG,
                    "redis subscriber cannot connect (attempt %d): %s: %s",
                    attempt + 1,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            connected_at = loop.time()
            self._begin_epoch(pubsub, loop.time())
            self._first_attempt.set()
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._read(pubsub))
                    group.create_task(self._write(pubsub))
            except* _NETWORK_ERRORS as group:
                error = group.exceptions[0]
                log.warning("redis subscriber connection lost: %s: %s", type(error).__name__, error)
            except* Exception:  # a bug, not the network: log it loudly, still reconnect
                log.exception("redis subscriber failed unexpectedly; reconnecting")
            finally:
                self._end_epoch()
                await self._discard(pubsub)
            if loop.time() - connected_at >= self._reconnect_cap:
                attempt = 0  # it was up for a while: start the back-off over
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    def _begin_epoch(self, pubsub: PubSub, now: float) -> None:
        reconnect = self._ever_connected
        self._ever_connected = True
        self._pubsub = pubsub
        self._last_rx = now
        topics = [topic for topic, count in self._counts.items() if count > 0]
        self._resync = set(topics) if reconnect else None
        for topic in topics:
            self._send("SUBSCRIBE", topic)
        self._maybe_finish_resync()  # nothing to re-subscribe: notify at once

    def _end_epoch(self) -> None:
        self._pubsub = None
        self._inflight.clear()
        self._active.clear()
        self._commands.clear()
        self._commands_ready.clear()
        if self._resync is not None:
            # Dropped again before the resync completed: the next connection's resync covers
            # it (a reconnect is only counted, and the hub only told, once it is complete).
            self._resync = None

    async def _discard(self, pubsub: PubSub) -> None:
        with contextlib.suppress(*_NETWORK_ERRORS):
            await pubsub.aclose()

    async def _write(self, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        while True:
            _raise_if_cancelling()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._health_interval):
                    await self._commands_ready.wait()
            self._commands_ready.clear()
            while self._commands:
                command, first = self._commands.popleft()
                channels = [self._channel(first)]
                while (
                    self._commands
                    and self._commands[0][0] == command
                    and len(channels) < _MAX_CHANNELS_PER_COMMAND
                ):
                    channels.append(self._channel(self._commands.popleft()[1]))
                await pubsub.execute_command(command, *channels)
                _raise_if_cancelling()
            if loop.time() - self._last_rx >= self._health_interval:
                await pubsub.execute_command("PING")

    async def _read(self, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        while True:
            message = await pubsub.get_message(timeout=self._health_interval)
            now = loop.time()
            if message is None:
                if now - self._last_rx > 2 * self._health_interval:
                    raise _ConnectionLost("no reply to keep-alive PING")
                continue
            self._last_rx = now
            try:
                self._dispatch(message)
            except Exception:
                log.exception("unexpected pub/sub message %r", message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "pong":
            return
        channel = message.get("channel")
        if not isinstance(channel, bytes) or not channel.startswith(self._prefix_bytes):
            log.warning("pub/sub message on an unexpected channel: %r", message)
            return
        topic = channel[len(self._prefix_bytes) :].decode()
        if kind in ("message", "smessage"):
            data = message.get("data")
            if not isinstance(data, bytes):
                log.warning("pub/sub message without bytes payload: %r", message)
                return
            if self._counts.get(topic, 0) <= 0:
                return  # arrived between our UNSUBSCRIBE and its confirmation
            self._received += 1
            assert self._on_message is not None
            try:
                self._on_message(topic, data)
            except Exception:
                log.exception("broker message handler failed for topic %r", topic)
        elif kind in _CONFIRMATIONS:
            self._confirmed(_CONFIRMATIONS[kind], topic)
        else:
            log.warning("unexpected pub/sub message type: %r", message)
