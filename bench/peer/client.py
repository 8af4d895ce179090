"""Engine.IO v4 / Socket.IO v5 over the bench's raw WebSocket client, for the peer.

:class:`PeerClient` is a :class:`bench.harness.WsClient` (same framing, same arrival time:
taken once per read, before any parsing) that maps Kinline's frames to Socket.IO packets
and back by moving bytes, without decoding or re-encoding JSON, so a workload runs unchanged
against either server and the client's cost per frame stays that of the raw client:

- out: ``send_text(b'{"type":"E",FIELDS}')`` sends the event ``42<id>["E",{FIELDS}]`` with an
  ack id (every event the peer handles answers one);
- in: the event ``42["E",{FIELDS}]`` reaches ``on_text`` as ``{"type":"E",FIELDS}``, the ack
  ``43<id>[{FIELDS}]`` as ``{"type":"ack",FIELDS}``. The peer's events and acks carry one
  object each, which this relies on.

Engine.IO's ping (``2``) is answered with a pong (``3``); the connect packet carries the
session token (``40{"token":...}``); ``welcome {pid}`` sets :attr:`worker` to the pid of the
process holding the socket, as ``X-Kinline-Worker`` does for Kinline's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time

from bench.harness import HOST, HandshakeError, TextHandler, WsClient

PATH = "/socket.io/?EIO=4&transport=websocket"
_TYPE = b'{"type":"'
_WELCOME = b'{"type":"welcome"'


def _as_frame(kind: bytes, args: bytes) -> bytes:
    """``{"type":KIND,...}`` from a Socket.IO argument list ``[{...}]`` (or ``[]``)."""
    if args.startswith(b"[{") and args.endswith(b"}]"):
        fields = args[2:-1]  # the object's members and its closing brace
        return _TYPE + kind + (b'"}' if fields == b"}" else b'",' + fields)
    if args == b"[]":
        return _TYPE + kind + b'"}'
    return _TYPE + kind + b'","args":' + args + b"}"


class PeerClient(WsClient):
    """One Socket.IO connection (default namespace) on the raw client."""

    def __init__(self, request: bytes, token: str) -> None:
        self._handler: TextHandler = WsClient._keep
        super().__init__(request)
        self._connect_packet = b"40" + json.dumps({"token": token}).encode()
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._last_id = 0
        self._pending: set[int] = set()  # ack ids not answered yet
        self._drained: asyncio.Future[None] | None = None
        self._read: TextHandler = self._packet

    # The workloads set ``on_text`` to their handler; the frames read go through ``_packet``
    # first (WsClient calls ``self.on_text(self, payload, arrived)`` for each text frame).

    @property
    def on_text(self) -> TextHandler:
        return self._read

    @on_text.setter
    def on_text(self, handler: TextHandler) -> None:
        self._handler = handler

    def _packet(self, _: WsClient, payload: bytes, arrived: float) -> None:
        kind = payload[:2]
        if kind == b"42" and payload[2:4] == b'["':  # an event, the frequent case
            end = payload.index(b'"', 4)
            rest = payload[end + 1 :]
            frame = _as_frame(payload[4:end], b"[" + rest[1:] if rest[:1] == b"," else b"[]")
            if frame.startswith(_WELCOME):
                self.worker = int(json.loads(frame)["pid"])
            self._handler(self, frame, arrived)
        elif kind == b"43":
            start = payload.index(b"[", 2)
            self._answered(int(payload[2:start]))
            self._handler(self, _as_frame(b"ack", payload[start:]), arrived)
        elif payload == b"2":
            self.send_packet(b"3")
        elif kind == b"40":
            if not self.joined.done():
                self.joined.set_result(None)
        elif kind == b"44":
            if not self.joined.done():
                reason = payload[2:].decode(errors="replace")
                self.joined.set_exception(HandshakeError(f"connect refused: {reason}"))
            self.close()
        elif payload[:1] == b"0":
            self.send_packet(self._connect_packet)
        elif kind == b"41" or payload[:1] == b"1":  # disconnected by the server
            self.close()

    def _answered(self, ack_id: int) -> None:
        self._pending.discard(ack_id)
        if not self._pending and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.joined.done():
            self.joined.set_exception(HandshakeError(f"connection lost: {exc}"))
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # sending

    def send_packet(self, packet: bytes) -> None:
        """One Engine.IO packet, as it is (one text frame)."""
        WsClient.send_text(self, packet)

    def send_text(self, payload: bytes) -> None:
        """Send the Kinline-shaped frame ``{"type":"E",FIELDS}`` as the event E with the object
        ``{FIELDS}``, asking for an ack."""
        if not payload.startswith(_TYPE):
            raise ValueError(f"not a frame with a type first: {payload[:40]!r}")
        end = payload.index(b'"', 9)
        rest = payload[end + 1 :]
        data = b"{" + rest[1:] if rest[:1] == b"," else b"{}"
        self._last_id += 1
        self._pending.add(self._last_id)
        self.send_packet(b'42%d["%s",%s]' % (self._last_id, payload[9:end], data))

    async def barrier(self, timeout: float = 15.0) -> None:
        """Wait until the server answered every event sent before (each asks for an ack)."""
        deadline = time.monotonic() + timeout
        while self._pending:
            if self.lost:
                raise HandshakeError(f"socket closed (code {self.close_code})")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(self._pending)} events not answered")
            self._drained = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained, left)
            self._drained = None

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.send_packet(b"41")  # leave the namespace, then close the socket
        super().close()


def _request(port: int) -> bytes:
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    return (
        f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def connect(port: int, token: str, timeout: float = 15.0) -> PeerClient:
    """Open a Socket.IO connection to the peer on ``port`` with ``token`` as its auth and wait
    for its ``welcome`` (then :attr:`PeerClient.worker` is the serving process's pid). Raises
    :class:`bench.harness.HandshakeError` if the peer refuses the token or closes."""
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: PeerClient(_request(port), token), HOST, port), timeout
    )
    try:
        await asyncio.wait_for(asyncio.shield(client.handshake), timeout)
        await asyncio.wait_for(asyncio.shield(client.joined), timeout)
        await client.expect(lambda f: f.startswith(_WELCOME), timeout)
    except BaseException:
        client.close()
        raise
    return client
