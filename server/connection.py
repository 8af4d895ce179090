"""One live WebSocket, as the hub and the gateway see it.

Writes go straight to the transport: the frame bytes were built once for every socket, and
nothing is queued per socket in Python. The transport's unsent bytes are the socket's outbound
queue; past ``max_buffer`` the reader is too slow and is closed with 4008 (it resumes from its
cursor when it reconnects). No task is kept per socket beyond its handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Any

from aiohttp import web

from channels import metrics
from channels.events import text_frame
from channels.protocol import CloseCode, ErrorCode, ErrorFrame, ServerFrame, encode
from server.policy import Principal
from storage.base import Conversation

ABORT_AFTER = 2.0  # seconds a kicked socket gets to take its close frame before it is cut


def close_frame(code: int, reason: str = "") -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:120]
    return bytes((0x88, len(payload))) + payload


class Connection:
    __slots__ = (
        "conversations",
        "ended",
        "kicked",
        "max_buffer",
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
    ) -> None:
        self.ws = ws
        self.session = session  # hex of the session's token hash
        self.transport = transport
        self.principal = principal
        self.max_buffer = max_buffer
        self.topics: set[str] = set()
        self.prisons: set[int] = set()  # prisons whose staff or relatives topic it follows
        self.conversations: dict[int, Conversation] = {}  # looked up once, checked every frame
        self.kicked: int | None = None
        self.ended = False  # its handler finished: it follows nothing any more

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

    async def drain(self) -> None:
        """Wait for the transport to take what is queued (between replay pages)."""
        protocol: Any = self.transport.get_protocol()
        if not self.closed and getattr(protocol, "_paused", False):
            with contextlib.suppress(ConnectionError):
                await protocol._drain_helper()  # aiohttp's flow control: wakes on resume_writing
