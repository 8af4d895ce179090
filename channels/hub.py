"""The hub: topics -> the sockets of *this* process, with per-conversation ordering.

Guarantees (DESIGN.md section 4):

- **Encode once.** An event arrives as frame bytes (from ``publish`` or the broker); the hub
  wraps them in one WebSocket frame and writes those same bytes to every local socket.
- **Bounded.** The hub never queues for a socket: it writes to the socket's transport, and a
  socket whose unsent bytes pass a limit is closed with 4008 (``Peer.write`` decides). The
  client reconnects and resumes from its cursor; nothing is lost, because storage has it all.
- **In order, once, no gap** on conversation topics (``c:<id>``), whose events carry the
  conversation ``seq``. Per topic the hub tracks ``last``, the highest seq fanned out here:
  a lower or equal seq is a duplicate and dropped; a jump means the broker lost something, and
  the topic is *repaired* once from storage for all its sockets (events arriving meanwhile wait
  in ``pending``). Seqs are assigned under a row lock, so when seq ``n`` is visible every seq
  below it is committed: a repair always finds what it is missing.
- **Resume with no gap.** ``join`` with a cursor subscribes first, then replays storage after
  the cursor while live events for that socket are buffered, then merges the buffer (dedupe by
  seq) and streams live. Anything committed before the storage read is in it, anything after
  arrives live: no window is left uncovered.
- **Lost tails.** A message whose publish was lost and is followed by no other would never
  reveal a gap, so a reconciler compares every topic's ``last`` with storage periodically, and
  at once when the broker reconnects.
- Unordered topics (user, prison, bureau) are at-most-once live streams; clients re-read that
  state through the REST API after a reconnect.

Own events are delivered locally at once and published; the broker's echo is ignored (its
envelope names this hub as origin).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from channels import envelope, metrics
from channels.batched import Batched
from channels.broker import Broker, BrokerUnavailable
from channels.events import audience, conversation_of, message_bytes, text_frame
from storage import conversations, messages
from storage.errors import StoreUnavailable
from storage.sql import Database

log = logging.getLogger(__name__)

REPLAY_PAGE = 200
MAX_PENDING = 10_000  # events held per topic while it is repaired
MAX_BUFFERED = 10_000  # live events held per socket while it catches up


class Peer(Protocol):
    """A local socket, as the hub sees it."""

    @property
    def is_staff(self) -> bool: ...

    @property
    def closed(self) -> bool: ...

    def write(self, frame: bytes) -> None:
        """Write a complete WebSocket frame; close the socket with 4008 if it is too far behind."""

    async def drain(self) -> None:
        """Wait until the socket's unsent bytes are low again (used between replay pages)."""


@dataclass(eq=False, slots=True)
class _Subscription:
    peer: Peer
    cursor: int
    buffer: list[tuple[int, str, bytes]] | None = None  # set while catching up
    overflowed: bool = False

    def deliver(self, seq: int, audience_: str, frame: bytes) -> None:
        if self.buffer is not None:
            if len(self.buffer) < MAX_BUFFERED:
                self.buffer.append((seq, audience_, frame))
            else:
                self.overflowed = True  # catch-up reads storage once more instead
            return
        if seq and seq <= self.cursor:
            return
        if seq:
            self.cursor = seq
        if audience_ == envelope.ALL or self.peer.is_staff:
            self.peer.write(frame)


@dataclass(eq=False, slots=True)
class _Topic:
    name: str
    conv: int | None
    # Its sockets, each with its subscription: None on an unordered topic (nothing to track,
    # no seq, no replay; no object per socket and topic). A lone socket is kept in ``_solo``
    # (most topics, a user's, have one: a dict of one would be 260 bytes), two or more in
    # ``_subs``; never both (:meth:`has`, :meth:`put`, :meth:`remove`, :meth:`entries`).
    _solo: Peer | None = None
    _solo_sub: _Subscription | None = None
    _subs: dict[Peer, _Subscription | None] | None = None
    holds: int = 0  # joins in progress
    ready: asyncio.Future[None] | None = None  # the broker subscription, while in flight
    live: bool = False  # the broker confirmed it (and the baseline is read): no future kept
    last: int = 0
    # events held while subscribing or repairing; made when the first is held (a topic per
    # user: an empty dict for each would be 64 bytes a socket)
    pending: dict[int, tuple[str, bytes, int]] | None = None
    repair: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        return self.empty and not self.holds

    @property
    def empty(self) -> bool:
        return self._solo is None and not self._subs

    def has(self, peer: Peer) -> bool:
        return peer is self._solo or (self._subs is not None and peer in self._subs)

    def get(self, peer: Peer) -> _Subscription | None:
        """``peer``'s subscription (one it :meth:`has`)."""
        if peer is self._solo:
            return self._solo_sub
        return self._subs.get(peer) if self._subs is not None else None

    def put(self, peer: Peer, sub: _Subscription | None) -> None:
        if self._subs is not None:
            self._subs[peer] = sub
        elif self._solo is None or self._solo is peer:
            self._solo, self._solo_sub = peer, sub
        else:
            self._subs = {self._solo: self._solo_sub, peer: sub}
            self._solo = self._solo_sub = None

    def remove(self, peer: Peer) -> tuple[bool, _Subscription | None]:
        """Unsubscribe ``peer``: whether it was subscribed, and its subscription."""
        if peer is self._solo:
            sub, self._solo, self._solo_sub = self._solo_sub, None, None
            return True, sub
        if self._subs is not None and peer in self._subs:
            sub = self._subs.pop(peer)
            if not self._subs:
                self._subs = None
            return True, sub
        return False, None

    def entries(self) -> list[tuple[Peer, _Subscription | None]]:
        """Its sockets and their subscriptions, in the order they joined (a copy)."""
        if self._solo is not None:
            return [(self._solo, self._solo_sub)]
        return list(self._subs.items()) if self._subs else []


class Hub:
    def __init__(
        self,
        broker: Broker,
        store: Database,
        *,
        reconcile_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.id = secrets.token_hex(4)
        self._broker = broker
        self._store = store
        # topics going live at once (a storm's resumes) learn their baselines in one read
        self._last_seqs: Batched[int, int] = Batched(
            lambda convs: conversations.last_seqs(store, convs), 0
        )
        self._topics: dict[str, _Topic] = {}
        self._reconcile_interval = reconcile_interval
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._listeners: dict[str, list[Callable[[bytes], None]]] = {}
        self._reconciler: asyncio.Task[None] | None = None
        broker.bind(self._on_broker_message, self._on_broker_reconnect)

    async def start(self) -> None:
        self._reconciler = asyncio.create_task(self._reconcile_forever(), name="hub-reconciler")

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._reconciler] if self._reconciler else [])]
        tasks += [t.repair for t in self._topics.values() if t.repair]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # publishing

    def publish(self, topic: str, frame: bytes, *, seq: int = 0, audience_: str = "a") -> None:
        """Deliver ``frame`` (encoded protocol frame) to local sockets now and to other
        processes through the broker. Never blocks and never fails the caller: a broker error
        is counted and repaired by the other processes' reconcilers."""
        sent_ms = int(self._clock() * 1000)
        for listener in self._listeners.get(topic, ()):
            listener(frame)
        topic_ = self._topics.get(topic)
        if topic_ is not None:
            self._route(topic_, seq, audience_, text_frame(frame), sent_ms)
        data = envelope.Envelope(self.id, seq, audience_, sent_ms, frame).pack()
        self._spawn(self._publish(topic, data))

    async def _publish(self, topic: str, data: bytes) -> None:
        try:
            await self._broker.publish(topic, data)
        except BrokerUnavailable as exc:
            metrics.errors.labels("broker_publish").inc()
            log.warning(
                "publish failed; other processes will repair from storage",
                extra={"topic": topic, "error": str(exc)},
            )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # subscriptions

    def listen(self, topic: str, callback: Callable[[bytes], None]) -> None:
        """Have ``callback`` called with the payload of every event on ``topic``, from this
        process at once and from every other one once the broker confirms the subscription
        (retried in the background while the broker is down: a server starts without Redis
        and says so on /readyz)."""
        self._listeners.setdefault(topic, []).append(callback)
        self._spawn(self._subscribe_until_done(topic))

    async def _subscribe_until_done(self, topic: str) -> None:
        delay = 0.05
        while True:
            try:
                await self._broker.subscribe(topic)
                return
            except BrokerUnavailable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def join(self, topic: str, peer: Peer, cursor: int | None = None) -> int:
        """Subscribe ``peer``. On a conversation topic, replay storage after ``cursor`` first
        (``None``: live from now on). Returns the seq the peer has been written up to (its
        replay included; 0 on unordered topics); a peer already subscribed keeps its
        subscription. Raises ``StoreUnavailable`` or ``BrokerUnavailable``, leaving nothing
        subscribed."""
        topic_ = self._topics.get(topic)
        if topic_ is None:
            topic_ = self._topics[topic] = _Topic(topic, conversation_of(topic))
        topic_.holds += 1
        try:
            await self._ready(topic_)
            if topic_.has(peer):
                held = topic_.get(peer)
                return 0 if held is None else held.cursor
            if topic_.conv is None:
                topic_.put(peer, None)
                return 0
            if cursor is None or cursor >= topic_.last:
                sub = _Subscription(peer, topic_.last if cursor is None else cursor)
                topic_.put(peer, sub)
                return sub.cursor
            sub = _Subscription(peer, cursor, buffer=[])
            topic_.put(peer, sub)
            try:
                await self._catch_up(topic_.conv, sub)
            except BaseException:
                topic_.remove(peer)
                raise
            return sub.cursor
        finally:
            topic_.holds -= 1
            await self._forget_if_idle(topic_)

    async def leave(self, topic: str, peer: Peer) -> None:
        topic_ = self._topics.get(topic)
        if topic_ is not None and topic_.remove(peer)[0]:
            await self._forget_if_idle(topic_)

    def drop(self, topic: str, peer: Peer) -> int | None:
        """Unsubscribe ``peer`` at once (nothing more reaches it from ``topic``) and return
        the seq it had reached; the broker is released in the background."""
        topic_ = self._topics.get(topic)
        if topic_ is None:
            return None
        subscribed, sub = topic_.remove(peer)
        if topic_.idle:
            self._spawn(self._forget_if_idle(topic_))
        if not subscribed:
            return None
        return 0 if sub is None else sub.cursor

    async def _ready(self, topic: _Topic) -> None:
        """Subscribe to the broker (confirmed) and learn the topic's baseline, once."""
        if topic.live:
            return
        if topic.ready is None:
            ready = topic.ready = asyncio.get_running_loop().create_future()
            try:
                await self._broker.subscribe(topic.name)
                if topic.conv is not None:
                    topic.last = max(topic.last, await self._last_seqs.get(topic.conv))
            except BaseException as exc:
                ready.set_exception(exc)
                ready.exception()  # retrieved: later joiners get it through await
                topic.ready = None
                with contextlib.suppress(BrokerUnavailable):
                    await self._broker.unsubscribe(topic.name)
                raise
            topic.live, topic.ready = True, None  # joiners waiting hold the future
            ready.set_result(None)
            self._flush_pending(topic)
        else:
            await asyncio.shield(topic.ready)

    async def _forget_if_idle(self, topic: _Topic) -> None:
        if topic.idle and self._topics.get(topic.name) is topic:
            del self._topics[topic.name]
            if topic.repair:
                topic.repair.cancel()
            if topic.live:
                with contextlib.suppress(BrokerUnavailable):
                    await self._broker.unsubscribe(topic.name)

    async def _catch_up(self, conv: int, sub: _Subscription) -> None:
        staff = sub.peer.is_staff
        while True:
            while True:
                page = await messages.messages(
                    self._store, conv, after=sub.cursor, limit=REPLAY_PAGE, include_notes=staff
                )
                for message in page:
                    sub.peer.write(text_frame(message_bytes(message)))
                    sub.cursor = message.seq
                if len(page) < REPLAY_PAGE or sub.peer.closed:
                    break
                await sub.peer.drain()
            if not sub.overflowed:
                break
            sub.overflowed = False  # live events were dropped: storage has them now
            assert sub.buffer is not None
            sub.buffer.clear()
        buffered, sub.buffer = sub.buffer or [], None
        for seq, audience_, frame in sorted(buffered, key=lambda e: e[0]):
            sub.deliver(seq, audience_, frame)

    # routing

    def _on_broker_message(self, topic: str, data: bytes) -> None:
        try:
            event = envelope.unpack(data)
        except envelope.BadEnvelope:
            log.warning("dropped a malformed broker message", extra={"topic": topic})
            return
        if event.origin == self.id:
            return
        for listener in self._listeners.get(topic, ()):
            listener(event.frame)
        topic_ = self._topics.get(topic)
        if topic_ is None:
            return
        self._route(topic_, event.seq, event.audience, text_frame(event.frame), event.sent_ms)

    def _route(self, topic: _Topic, seq: int, audience_: str, frame: bytes, sent_ms: int) -> None:
        if topic.conv is None or seq == 0:
            self._fan_out(topic, seq, audience_, frame, sent_ms)
            return
        if not topic.live or topic.repair is not None:
            if topic.pending is None:
                topic.pending = {}
            if len(topic.pending) < MAX_PENDING:
                topic.pending[seq] = (audience_, frame, sent_ms)
            return
        if seq <= topic.last:
            return  # duplicate
        if seq > topic.last + 1:
            if topic.pending is None:
                topic.pending = {}
            topic.pending[seq] = (audience_, frame, sent_ms)
            self._start_repair(topic, "gap")
            return
        self._fan_out(topic, seq, audience_, frame, sent_ms)
        topic.last = seq

    def _fan_out(self, topic: _Topic, seq: int, audience_: str, frame: bytes, sent_ms: int) -> None:
        for peer, sub in topic.entries():
            if sub is not None:
                sub.deliver(seq, audience_, frame)
            elif audience_ == envelope.ALL or peer.is_staff:  # an unordered topic's socket
                peer.write(frame)
        if not topic.empty:
            metrics.delivery_latency.observe(max(0.0, self._clock() - sent_ms / 1000))

    def _flush_pending(self, topic: _Topic) -> None:
        """Route held events in seq order, dropping what is already delivered."""
        held, topic.pending = topic.pending or {}, None
        for seq in sorted(held):
            audience_, frame, sent_ms = held[seq]
            self._route(topic, seq, audience_, frame, sent_ms)

    def _start_repair(self, topic: _Topic, reason: str) -> None:
        if topic.repair is None and topic.conv is not None:
            metrics.resyncs.labels(reason).inc()
            topic.repair = asyncio.create_task(self._repair(topic), name=f"repair-{topic.name}")

    async def _repair(self, topic: _Topic) -> None:
        """Fetch everything after ``last`` from storage and fan it out, then resume live."""
        assert topic.conv is not None
        delay = 0.05
        try:
            while True:
                try:
                    page = await messages.messages(
                        self._store, topic.conv, after=topic.last, limit=REPLAY_PAGE
                    )
                except StoreUnavailable:
                    await asyncio.sleep(delay)  # back-off while the database is away
                    delay = min(delay * 2, 2.0)
                    continue
                now_ms = int(self._clock() * 1000)
                for message in page:
                    if message.seq > topic.last:
                        held = topic.pending.pop(message.seq, None) if topic.pending else None
                        frame = held[1] if held else text_frame(message_bytes(message))
                        self._fan_out(
                            topic,
                            message.seq,
                            audience(message),
                            frame,
                            held[2] if held else now_ms,
                        )
                        topic.last = message.seq
                if len(page) < REPLAY_PAGE:
                    break
        finally:
            topic.repair = None
        self._flush_pending(topic)

    # reconciliation

    async def _on_broker_reconnect(self) -> None:
        metrics.broker_reconnects.inc()
        await self.reconcile("reconnect")

    async def reconcile(self, reason: str = "periodic") -> None:
        """Compare each conversation topic with storage; repair those that are behind."""
        topics = [
            t for t in self._topics.values() if t.conv is not None and t.live and t.repair is None
        ]
        if not topics:
            return
        seqs = await conversations.last_seqs(
            self._store, [t.conv for t in topics if t.conv is not None]
        )
        for topic in topics:
            if topic.conv is not None and seqs.get(topic.conv, 0) > topic.last:
                self._start_repair(topic, reason)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._reconcile_interval)
            try:
                await self.reconcile()
            except StoreUnavailable:
                pass  # tried again next round
            except Exception:
                log.exception("reconcile failed")
