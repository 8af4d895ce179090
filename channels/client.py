"""Python client for ``kinline.v1``, on the ``websockets`` asyncio API.

The client owns one background task that connects, says ``hello``, reads frames and
reconnects. Everything about frames is delegated to :mod:`channels.protocol`.

Guarantees and trade-offs
-------------------------
* **Reconnect until closed.** After a lost connection (1006), a server restart (1012), a
  "too slow" close (4008), any other non-final close code or a connection error, the client
  reconnects with jittered exponential back-off (``backoff_base`` doubling up to
  ``backoff_cap``; each delay is drawn uniformly from ``[d/2, d]``). The back-off resets once a
  connection gets its ``welcome``, unless it then ends with 4429, 4409 or 1011. Closes with
  1000, 4401 or 4403 (and an HTTP 401/403 at the handshake) are final:
  :attr:`KinlineClient.final` records a :class:`ClientClosed` with the code, pending sends
  and :meth:`KinlineClient.events` raise it, and nothing reconnects.
* **Resume by cursor.** :attr:`KinlineClient.last_seq` holds, per conversation, the highest
  ``seq`` of a ``message`` this client has queued for the caller. Every (re)connect sends
  ``hello {resume: last_seq}`` first (the 1000 most recently advanced cursors, the protocol's
  limit), so the server replays what was missed. A ``message`` whose ``seq`` is at or below the
  cursor is a duplicate and is dropped (counted in ``duplicates``): callers see each message
  once and in order.
* **At-least-once sends, exactly-once messages.** :meth:`KinlineClient.send` keeps its frame
  in :attr:`KinlineClient.unacked` until the ``ack`` (or an ``error`` with the same ``cid``)
  arrives. After every reconnect, right after the ``hello``, each unacked frame is sent again
  with the *same* ``cid``; the server answers a known ``cid`` with the original ack instead of
  storing twice. A send issued while disconnected waits for the next connection. Cancelling
  the ``send()`` call (or its ``give_up_after`` running out: ``TimeoutError``) abandons the
  frame (it may or may not have been stored).
* **Refusals that mean "later" are retried, never dropped.** An ``error`` with code
  ``rate_limited`` or ``unavailable`` for one of our sends is not raised: the frame stays in
  :attr:`KinlineClient.unacked` and is sent again, same ``cid``, after the server's
  ``retry_after`` (or the jittered back-off when it names none), each delay stretched by up to
  a quarter so that many refused clients do not come back at the same instant. A reconnect in
  between re-sends it anyway. ``resends`` counts these retries. Any other error code is final
  for that send and raised as :class:`SendError`.
* **Events through a bounded queue, with backpressure.** Every server frame except ``ack`` and
  the ``error`` answering one of our sends is put on a bounded :class:`asyncio.Queue`
  (``queue_size``), read with ``async for frame in client.events()`` (one consumer). When the
  queue is full the reader *waits*: the client stops reading the socket, acks stall too, and a
  server whose own queue for us overflows closes with 4008, after which we resume from the
  cursors. So a caller must consume :meth:`events` even if it only sends. Nothing is dropped.
* ``watch`` subscriptions are remembered and re-sent after every reconnect; ``typing`` and
  ``read`` are fire-and-forget and are silently dropped while disconnected.
"""

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from enum import StrEnum
from types import TracebackType
from typing import Final, Literal, Self

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)
from websockets.typing import Origin, Subprotocol

from channels.protocol import (
    MAX_RESUME_ENTRIES,
    SUBPROTOCOL,
    Ack,
    ClientFrame,
    CloseCode,
    ErrorCode,
    ErrorFrame,
    Hello,
    MessageEvent,
    ProtocolError,
    Read,
    Send,
    ServerFrame,
    Subscribed,
    Typing,
    Unwatch,
    Watch,
    Welcome,
    decode_server,
    encode,
    is_final_close,
)

__all__ = ["ClientClosed", "ClientState", "KinlineClient", "SendError"]

_log = logging.getLogger(__name__)

_ABNORMAL: Final = 1006
# Closes that follow a welcome but must not reset the back-off (the server is pushing back).
_KEEP_BACKING_OFF: Final = frozenset(
    {CloseCode.RATE_LIMITED, CloseCode.TOO_MANY_CONNECTIONS, CloseCode.INTERNAL}
)
_HTTP_FINAL: Final = {401: CloseCode.NOT_AUTHENTICATED, 403: CloseCode.FORBIDDEN_ORIGIN}


RETRY_LATER: Final = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.UNAVAILABLE})


class ClientClosed(Exception):
    """The client stopped for good: ``code`` is the close code (or 1000 after :meth:`close`)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed for good ({code}): {reason}".rstrip(": "))
        self.code = code
        self.reason = reason


class SendError(Exception):
    """The server refused a send: ``code`` is a :class:`channels.protocol.ErrorCode` value."""

    def __init__(self, code: str, message: str, cid: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.cid = cid


class ClientState(StrEnum):
    IDLE = "idle"  # not started
    CONNECTING = "connecting"  # opening a socket, or saying hello on a fresh one
    CONNECTED = "connected"  # hello and unacked frames sent; live
    BACKOFF = "backoff"  # waiting before the next attempt
    CLOSED = "closed"  # final; see ``final``


class _End:
    """Queue sentinel: no more events."""


_END: Final = _End()


class KinlineClient:
    """A reconnecting ``kinline.v1`` client. Use as ``async with KinlineClient(url) as c:``."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        origin: str | None = None,
        backoff_base: float = 0.05,
        backoff_cap: float = 5.0,
        queue_size: int = 1000,
        open_timeout: float = 10.0,
        max_frame_bytes: int = 1 << 20,
        on_retry: Callable[[ErrorFrame], None] | None = None,
    ) -> None:
        self.url = url
        self._headers: dict[str, str] = dict(headers or {})
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        self._origin = origin
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._open_timeout = open_timeout
        self._max_frame_bytes = max_frame_bytes
        self._on_retry = on_retry  # told of each "later" refusal (a UI may show "retrying")

        self.state = ClientState.IDLE
        self.connected = asyncio.Event()  # set while state is CONNECTED
        self.reconnects = 0  # successful connections after the first
        self.duplicates = 0  # messages dropped because seq <= cursor
        self.resends = 0  # sends tried again after rate_limited or unavailable
        self.worker: str | None = None  # the server process of the current connection
        self.last_seq: dict[int, int] = {}
        self.unacked: dict[str, Send] = {}
        self.watching: set[int] = set()
        self.welcome: Welcome | None = None
        self.final: ClientClosed | None = None  # why the client stopped, if the server said

        self._pending: dict[str, asyncio.Future[Ack]] = {}
        self._refusals: dict[str, int] = {}  # cid -> how often "later" was answered
        self._writes: set[asyncio.Task[None]] = set()  # retries being written
        self._queue: asyncio.Queue[ServerFrame | _End] = asyncio.Queue(maxsize=queue_size)
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._finished = False
        self._opened = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Start the connection task and wait for the first connection.

        Raises :class:`ClientClosed` if the server refuses for good (4401, 4403) first. Retries
        connection errors forever: bound the wait with ``asyncio.timeout`` if needed.
        """
        if self._task is None:
            if self._finished:
                raise self.final or ClientClosed(CloseCode.NORMAL, "client closed")
            self._task = asyncio.create_task(self._run(), name=f"kinline-client {self.url}")
        waiter = asyncio.ensure_future(self.connected.wait())
        try:
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self.connected.is_set():
            raise self.final or ClientClosed(CloseCode.NORMAL, "client closed")

    async def close(self) -> None:
        """Close with 1000, stop reconnecting, fail pending sends, end :meth:`events`."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            await ws.close(CloseCode.NORMAL)
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        self._finish(None)

    # -- API ----------------------------------------------------------------------------------

    async def send(
        self,
        conv: int,
        body: str,
        *,
        kind: Literal["text", "note"] = "text",
        cid: str | None = None,
        give_up_after: float | None = None,
        attachments: list[int] | None = None,
    ) -> Ack:
        """Send a message and return its ack; raise :class:`SendError` if refused for good.

        Waits for a connection if there is none, survives reconnects and is retried after
        ``rate_limited`` / ``unavailable`` (same ``cid``), until acked, cancelled, or
        ``give_up_after`` seconds have passed (then ``TimeoutError``).
        """
        if self._finished or self._closing:
            raise self.final or ClientClosed(CloseCode.NORMAL, "client closed")
        if cid is None:
            cid = uuid.uuid4().hex
        elif cid in self._pending:
            raise ValueError(f"a send with cid {cid!r} is already pending")
        frame = Send(conv=conv, cid=cid, body=body, kind=kind, attachments=attachments or [])
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self.unacked[cid] = frame
        self._pending[cid] = future
        try:
            async with asyncio.timeout(give_up_after):
                if self.state is ClientState.CONNECTED:
                    await self._write(frame)
                return await future
        finally:
            self._refusals.pop(cid, None)
            if self._pending.get(cid) is future:  # cancelled or gave up: abandon the frame
                del self._pending[cid]
                self.unacked.pop(cid, None)

    async def watch(self, conv: int, after: int | None = None) -> None:
        """Follow a conversation live, replaying first what came after ``after`` (or after the
        client's cursor for it); re-sent after every reconnect."""
        self.watching.add(conv)
        if after is not None:
            self.last_seq.setdefault(conv, after)
        await self._write_if_connected(Watch(conv=conv, after=self.last_seq.get(conv)))

    async def unwatch(self, conv: int) -> None:
        self.watching.discard(conv)
        await self._write_if_connected(Unwatch(conv=conv))

    async def typing(self, conv: int) -> None:
        """Say "typing" (dropped while disconnected)."""
        await self._write_if_connected(Typing(conv=conv))

    async def read(self, conv: int, seq: int) -> None:
        """Move the persisted read cursor (dropped while disconnected)."""
        await self._write_if_connected(Read(conv=conv, seq=seq))

    async def events(self) -> AsyncIterator[ServerFrame]:
        """Yield every server frame except acks, messages deduplicated; one consumer only.

        Ends after :meth:`close`; raises :class:`ClientClosed` after a final close by the
        server, once the frames queued before it have been yielded.
        """
        while True:
            if self._finished and self._queue.empty():
                break
            item = await self._queue.get()
            if isinstance(item, _End):
                break
            yield item
        if self.final is not None:
            raise self.final

    # -- internals ----------------------------------------------------------------------------

    def _delay(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(attempt, 32))
        return random.uniform(ceiling / 2, ceiling)

    async def _run(self) -> None:
        try:
            await self._connect_loop()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug, not a network condition: stop loudly, do not spin
            _log.exception("kinline client stopped by an unexpected error")
            self._finish(ClientClosed(CloseCode.INTERNAL, "client error"))
        finally:
            self._finish(None)

    def _stopping(self) -> bool:
        return self._closing

    async def _connect_loop(self) -> None:
        attempt = 0
        while not self._stopping():
            self.state = ClientState.CONNECTING
            try:
                ws = await ws_connect(
                    self.url,
                    subprotocols=[Subprotocol(SUBPROTOCOL)],
                    additional_headers=self._headers,
                    origin=None if self._origin is None else Origin(self._origin),
                    compression=None,
                    open_timeout=self._open_timeout,
                    max_size=self._max_frame_bytes,
                )
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in _HTTP_FINAL:
                    self._finish(ClientClosed(_HTTP_FINAL[status], f"HTTP {status}"))
                    return
                _log.info("kinline handshake refused (HTTP %s); retrying", status)
            except InvalidURI as exc:
                self._finish(ClientClosed(None, str(exc)))
                return
            except (OSError, TimeoutError, WebSocketException) as exc:
                _log.info("kinline connect failed (%s); retrying", exc)
            else:
                code, reason, welcomed = await self._session(ws)
                if welcomed and code not in _KEEP_BACKING_OFF:
                    attempt = 0
                if self._stopping():
                    return
                if is_final_close(code):
                    self._finish(ClientClosed(code, reason))
                    return
                _log.info("kinline connection closed (%s %s); reconnecting", code, reason)
            self.state = ClientState.BACKOFF
            await asyncio.sleep(self._delay(attempt))
            attempt += 1

    async def _session(self, ws: ClientConnection) -> tuple[int, str, bool]:
        """Run one connection to its end; return (close code, reason, got a welcome)."""
        welcomed = False
        async with ws:
            self._ws = ws
            if ws.response is not None:  # which server process took us (X-Kinline-Worker)
                self.worker = ws.response.headers.get("X-Kinline-Worker")
            if self._opened:
                self.reconnects += 1
            self._opened += 1
            try:
                await self._say_hello(ws)
                self.state = ClientState.CONNECTED
                self.connected.set()
                while True:
                    data = await ws.recv()
                    if await self._handle(data):
                        welcomed = True
            except ConnectionClosed as exc:
                if exc.rcvd is None:
                    return _ABNORMAL, "", welcomed
                return exc.rcvd.code, exc.rcvd.reason, welcomed
            finally:
                self._ws = None
                self.connected.clear()
                if not self._finished:
                    self.state = ClientState.CONNECTING

    async def _say_hello(self, ws: ClientConnection) -> None:
        """``hello``, then watches, then every unacked send (same cid), in that order."""
        await ws.send(encode(Hello(resume=self._resume())), text=True)
        for conv in list(self.watching):
            await ws.send(encode(Watch(conv=conv, after=self.last_seq.get(conv))), text=True)
        resent: set[str] = set()
        while True:  # a send() may register a frame while we await; loop until none is new
            todo = [frame for cid, frame in self.unacked.items() if cid not in resent]
            if not todo:
                return  # no await between this check and state = CONNECTED in the caller
            for frame in todo:
                resent.add(frame.cid)
                await ws.send(encode(frame), text=True)

    def _resume(self) -> dict[int, int]:
        if len(self.last_seq) <= MAX_RESUME_ENTRIES:
            return dict(self.last_seq)
        items = list(self.last_seq.items())[-MAX_RESUME_ENTRIES:]  # most recently advanced
        return dict(items)

    async def _handle(self, data: str | bytes) -> bool:
        """Dispatch one received frame; return True if it was the ``welcome``."""
        frame = decode_server(data)
        if isinstance(frame, ProtocolError):
            _log.warning("kinline: skipping an undecodable frame: %s", frame.message)
            return False
        if isinstance(frame, Ack):
            future = self._pending.pop(frame.cid, None)
            self.unacked.pop(frame.cid, None)
            if future is not None and not future.done():
                future.set_result(frame)
            return False
        if isinstance(frame, ErrorFrame) and frame.cid is not None and frame.cid in self._pending:
            if frame.code in RETRY_LATER:
                self._retry_later(frame.cid, frame.retry_after)
                if self._on_retry is not None:
                    self._on_retry(frame)
                return False
            future = self._pending.pop(frame.cid)
            self.unacked.pop(frame.cid, None)
            if not future.done():
                future.set_exception(SendError(frame.code, frame.message, frame.cid))
            return False
        if isinstance(frame, MessageEvent):
            cursor = self.last_seq.pop(frame.conv, None)
            if cursor is not None and frame.seq <= cursor:
                self.last_seq[frame.conv] = cursor
                self.duplicates += 1
                return False
            self.last_seq[frame.conv] = frame.seq  # re-inserted: dict order = recency
        if isinstance(frame, Subscribed):  # a position the server could not resume from:
            for conv, seq in frame.convs.items():  # follow from where it really is, so the
                if self.last_seq.get(conv, 0) > seq:  # messages after it are not taken for
                    self.last_seq[conv] = seq  # duplicates (the caller reloads that history)
        welcomed = False
        if isinstance(frame, Welcome):
            self.welcome = frame
            welcomed = True
        await self._queue.put(frame)  # backpressure: stop reading while the caller lags
        return welcomed

    def _retry_later(self, cid: str, retry_after: float | None) -> None:
        refusals = self._refusals[cid] = self._refusals.get(cid, 0) + 1
        delay = retry_after if retry_after is not None else self._delay(refusals)
        self.resends += 1
        asyncio.get_running_loop().call_later(
            max(delay, 0.0) * random.uniform(1.0, 1.25), self._resend, cid
        )

    def _resend(self, cid: str) -> None:
        frame = self.unacked.get(cid)
        if frame is None or self.state is not ClientState.CONNECTED:
            return  # acked or abandoned meanwhile; or the next connection re-sends it
        task = asyncio.ensure_future(self._write(frame))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, frame: ClientFrame) -> None:
        ws = self._ws
        if ws is None:
            return
        with contextlib.suppress(ConnectionClosed):  # the session notices and reconnects;
            await ws.send(encode(frame), text=True)  # unacked frames are re-sent then

    async def _write_if_connected(self, frame: ClientFrame) -> None:
        if self.state is ClientState.CONNECTED:
            await self._write(frame)

    def _finish(self, final: ClientClosed | None) -> None:
        if self._finished:
            return
        self._finished = True
        self._closing = True
        self.final = final
        self.state = ClientState.CLOSED
        self.connected.clear()
        error = final or ClientClosed(CloseCode.NORMAL, "client closed")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        with contextlib.suppress(asyncio.QueueFull):  # if full, events() sees _finished
            self._queue.put_nowait(_END)  # once the queue is drained
