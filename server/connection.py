"""One live WebSocket, as the hub and the gateway see it.

Writes go straight to the transport: the frame bytes were built once for every socket, and
nothing is queued per socket in Python. The transport's unsent bytes are the socket's outbound
queue; past ``max_buffer`` the reader is too slow and is closed with 4008 (it resumes from its
cursor when it reconnects). No task is kept per socket beyond its handler.

The kernel's send buffer is capped (``SO_SNDBUF``, :func:`cap_send_buffer`): left to
autotuning it grows to megabytes per socket (``tcp_wmem``), which absorbs a stopped reader's
backlog where the transport cannot see it, so 4008 never fired and the reader sat stuck until
its heartbeat timed out. With the cap, what a stopped reader holds on the server is bounded by
about ``max_buffer`` + one frame in the transport plus the capped kernel buffer.
Only public asyncio and aiohttp API is used (``get_write_buffer_size``, no private flow
control). Heartbeats are one sweep over every socket (``server/heartbeat.py``): ``heard``,
``pinged`` and ``busy`` are its state, :meth:`Connection.ping` and :meth:`Connection.cut`
what it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from aiohttp import web

from channels import metrics
from channels.events import text_frame
from channels.protocol import CloseCode, ErrorCode, ErrorFrame, ServerFrame, encode
from channels.session import Session
from domain.records import Conversation
from server.policy import Principal

ABORT_AFTER = 2.0  # seconds a kicked socket gets to take its close frame before it is cut
DRAIN_POLL = 0.005  # seconds between two looks at the unsent bytes while draining
DRAIN_TIMEOUT = 10.0  # seconds a replay waits for a reader that takes nothing


def cap_send_buffer(transport: asyncio.BaseTransport, size: int) -> None:
    """Fix the kernel send buffer of the transport's socket at ``size`` bytes (Linux doubles
    it for its bookkeeping); no-op for a transport without a socket."""
    sock = transport.get_extra_info("socket")
    if sock is not None and size > 0:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def close_frame(code: int, reason: str = "") -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:120]
    return bytes((0x88, len(payload))) + payload


PING_FRAME = b"\x89\x00"  # a server ping, empty payload (RFC 6455 5.5.2; unmasked: from the server)


class Connection:
    __slots__ = (
        "busy",
        "conversations",
        "core",
        "ended",
        "heard",
        "kicked",
        "max_buffer",
        "pinged",
        "principal",
        "prisons",
        "session",
        "topics",
        "transport",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        session: str,
        transport: asyncio.Transport,
        principal: Principal,
        *,
        max_buffer: int,
        core: Session | None = None,
    ) -> None:
        self.ws = ws
        self.session = session  # hex of the session's token hash
        self.transport = transport
        self.principal = principal
        self.max_buffer = max_buffer
        # Tuples, not sets: a socket follows a few topics, and an empty set costs 216 bytes
        # (a tuple 40 + 8 per item), for every socket held (:meth:`joined`, :meth:`left`).
        self.topics: tuple[str, ...] = ()
        self.prisons: tuple[int, ...] = ()  # prisons whose staff or relatives topic it follows
        # looked up once, checked every frame (server/authorize.py); made at its first
        self.conversations: dict[int, Conversation] | None = None
        self.kicked: int | None = None
        self.ended = False  # its handler finished: it follows nothing any more
        self.heard = True  # since the last heartbeat tick (the handshake counts)
        self.pinged = False  # pinged at the last tick, not heard since
        self.busy = False  # its handler is handling one of its frames
        self.core = core or Session(is_relative=principal.user.role == "relative")

    def joined(self, topic: str) -> None:
        if topic not in self.topics:
            self.topics += (topic,)

    def left(self, topic: str) -> None:
        if topic in self.topics:
            self.topics = tuple(t for t in self.topics if t != topic)

    def remember(self, conv: Conversation) -> None:
        """Keep ``conv``'s facts for the socket's later frames (the first one kept wins)."""
        if self.conversations is None:
            self.conversations = {}  # made at the first: most sockets never look one up
        self.conversations.setdefault(conv.id, conv)

    @property
    def user_id(self) -> int:
        return self.principal.user.id

    @property
    def is_staff(self) -> bool:
        return self.principal.is_staff

    @property
    def closed(self) -> bool:
        return self.kicked is not None or self.ws.closed or self.transport.is_closing()

    def write(self, frame: bytes) -> None:
        if self.closed:
            return
        if self.transport.get_write_buffer_size() > self.max_buffer:
            metrics.slow_consumer_closes.inc()
            self.kick(CloseCode.TOO_SLOW, "too slow: reconnect and resume")
            return
        self.transport.write(frame)

    def send(self, frame: ServerFrame) -> None:
        self.write(text_frame(encode(frame)))
        metrics.frames_out.inc()

    def error(
        self,
        code: ErrorCode | str,
        message: str,
        cid: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        metrics.errors.labels(str(code)).inc()
        self.send(ErrorFrame(code=str(code), message=message, cid=cid, retry_after=retry_after))

    def kick(self, code: int, reason: str) -> None:
        """Close now, without waiting on the client: queue the close frame behind what is
        unsent and cut the connection if it is not taken in time."""
        if self.closed:
            return
        self.kicked = code
        self.transport.write(close_frame(code, reason))
        asyncio.get_running_loop().call_later(ABORT_AFTER, self.transport.abort)

    def ping(self) -> None:
        self.write(PING_FRAME)

    def cut(self) -> None:
        """Drop the connection now, without a close frame: the peer stopped answering."""
        metrics.heartbeat_cuts.inc()
        self.transport.abort()

    async def drain(self) -> None:
        """Wait until the transport's unsent bytes are below half of ``max_buffer`` (between
        replay pages, so a replay never trips 4008 by itself). Polls the public
        ``get_write_buffer_size`` every few ms: this runs only between pages of a replay.
        A reader that takes nothing for ``DRAIN_TIMEOUT`` seconds is closed with 4008."""
        low = self.max_buffer // 2
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT
        while not self.closed and self.transport.get_write_buffer_size() > low:
            if loop.time() > deadline:
                metrics.slow_consumer_closes.inc()
                self.kick(CloseCode.TOO_SLOW, "too slow: reconnect and resume")
                return
            await asyncio.sleep(DRAIN_POLL)
