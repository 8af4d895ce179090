"""The ``/ws`` endpoint: the handshake, then a thin driver over the sans-I/O session.

Before the upgrade (no 101 without these): an ``Origin`` not in the allowlist is refused 403
(aiohttp does not check it); a missing, expired or revoked session is refused 401; storage
that cannot answer the session lookup is 503 ``unavailable`` (never a 500). After it, every
frame is decoded by :mod:`channels.protocol` and handed to the socket's
:class:`channels.session.Session`, which owns the rules; this module carries out what it
asks (policy checks, storage, hub joins, audit entries, the send path) and feeds the outcome
back. One socket's frames are handled in order, so its sends are acked, and sequenced, in
the order it sent them. The control plane (one user's sockets on every process) is
``server/control.py``; the registry of this process's sockets ``server/sockets.py``;
graceful shutdown ``server/shutdown.py``.

Expected faults (storage or broker unavailable: ``server.faults``) are logged once per
episode, without a traceback (:func:`fault`); anything else is a bug, logged with its
traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Literal

from aiohttp import WSMsgType, web

from channels import metrics
from channels.broker import BrokerUnavailable
from channels.events import (
    BUREAU_TOPIC,
    conversation_topic,
    prison_relatives_topic,
    prison_staff_topic,
    user_topic,
)
from channels.hub import Hub
from channels.protocol import (
    SUBPROTOCOL,
    CloseCode,
    ErrorCode,
    Limits,
    ProtocolError,
    UserRef,
    Welcome,
    decode_client,
)
from channels.session import (
    Close,
    MarkRead,
    Output,
    RelayTyping,
    Session,
    SessionLimits,
    Submit,
    Subscribe,
    Unsubscribe,
)
from domain.records import Conversation, User
from server import faults, openings, sessions
from server.audience import ReadMarked, Typed, tell
from server.authorize import authorize
from server.config import Settings
from server.connection import Connection, cap_send_buffer
from server.control import ControlPlane
from server.duty import DutyRoster
from server.errors import json_error
from server.lookups import Lookups
from server.online import Online
from server.policy import Denied, Principal, audits_opening, history_floor, sees_conversation
from server.sending import SendPath
from server.shutdown import Draining
from server.sockets import Sockets
from storage import messages
from storage.sql import Database, utcnow

log = logging.getLogger(__name__)


_BROKER = faults.Episodes("broker")
# what ends a socket's frames (``async for`` over a WebSocketResponse stops on these too)
_ENDED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)


def fault(exc: BaseException) -> bool:
    """Whether ``exc`` means storage or the broker cannot serve now (``server.faults``
    classifies storage faults; a ``BrokerUnavailable`` is one too). Such a fault is logged
    once per episode of its dependency, without a traceback: it is expected, not a bug."""
    if isinstance(exc, BrokerUnavailable):
        _BROKER.failed(exc)
        return True
    if faults.unavailable(exc):
        faults.STORAGE.failed(exc)
        return True
    return False


class Gateway:
    def __init__(
        self, settings: Settings, store: Database, hub: Hub, send_path: SendPath, roster: DutyRoster
    ) -> None:
        self.settings = settings
        self.store = store
        self.lookups = Lookups(store)  # handshakes' reads, batched when concurrent
        self.hub = hub
        self.roster = roster
        self.send_path = send_path
        self.sockets = Sockets()
        self.control = ControlPlane(hub, store, self.sockets, roster, self._join, self._follow)
        self.limits = SessionLimits(
            max_hello_cursors=settings.max_hello_cursors,
            subscribe_rate=settings.subscribe_rate,
            subscribe_burst=settings.subscribe_burst,
            look_window=settings.look_window,
        )
        self.draining = Draining()
        self.online: Online | None = None  # relatives connected anywhere (server/online.py)
        # the control plane, on every process (server/control.py)
        self.close_user = self.control.close_user
        self.refresh_user = self.control.refresh_user
        self.duty_changed = self.control.duty_changed

    def start(self) -> None:
        self.control.start()

    @property
    def open_count(self) -> int:
        """Sockets open on this process (server/rebalance.py compares it across processes)."""
        return self.sockets.count

    # handshake

    async def handle(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.rstrip("/") not in self.settings.origins:
            return json_error(403, "forbidden_origin", "this origin may not open a socket")
        token, _ = sessions.presented_token(request)
        if token is None:
            return json_error(401, "not_authenticated", "sign in first")
        if self.draining.closing:
            return json_error(503, "unavailable", "server restarting", **{"Retry-After": "1"})
        try:
            user = await self.lookups.user_for(token)
            principal = await self.principal(user) if user else None
        except Exception as exc:
            if not fault(exc):
                raise
            return json_error(503, "unavailable", "storage is unavailable", **{"Retry-After": "1"})
        if principal is None:
            return json_error(401, "not_authenticated", "session expired or revoked")
        ws = web.WebSocketResponse(
            protocols=(SUBPROTOCOL,),
            compress=False,  # permessage-deflate costs far more memory than it saves here
            autoping=False,  # pings and pongs come to the frame loop: heartbeats are one sweep
            max_msg_size=self.settings.max_frame_bytes * 4,  # up to this: error frame; past: 1009
        )
        ws.headers["X-Kinline-Worker"] = str(os.getpid())  # which process serves this socket
        await ws.prepare(request)
        ws.headers.clear()  # sent with the 101; not kept for the socket's life
        transport = request.transport
        assert transport is not None
        cap_send_buffer(transport, self.settings.socket_send_buffer)
        core = Session(self.limits, is_relative=principal.user.role == "relative")
        session = sessions.token_hash(token).hex()
        conn = Connection(
            ws,
            session,
            transport,
            principal,
            max_buffer=self.settings.max_outbound_bytes,
            core=core,
        )
        if self.sockets.count_of(principal.id) >= self.settings.max_sockets_per_user:
            conn.error(ErrorCode.TOO_MANY_CONNECTIONS, "too many open connections for this user")
            await ws.close(code=CloseCode.TOO_MANY_CONNECTIONS, message=b"too many connections")
            return ws
        self.sockets.add(conn)
        metrics.open_sockets.inc()
        relative = principal.user.role == "relative"
        if relative and self.online is not None:
            self.online.joined(principal.id)  # the outbox holds its notifications meanwhile
        del token  # not kept for the socket's life (its hash is ``session``)
        arrived = False  # an officer counts on duty if it also said so (DutyRoster)
        try:
            try:
                opened = await self._open(conn)
                if opened is None:
                    return ws
                arrived = opened
                # The frames, in order, read here in the handler's own frame: no coroutine
                # frame of a helper (nor ``async for``'s ``__anext__``) kept for the socket's
                # whole life. Anything read counts as heard for the heartbeat sweep
                # (server/heartbeat.py), and so does the time spent handling a frame (a pong
                # may be waiting unread behind it).
                while True:
                    msg = await ws.receive()
                    conn.heard = True
                    if msg.type in _ENDED or conn.closed or conn.core.closed:
                        break
                    if msg.type == WSMsgType.TEXT:
                        conn.busy = True
                        try:
                            await self.frame(conn, msg.data, time.perf_counter())
                        finally:
                            conn.busy = False
                            conn.heard = True
                    elif msg.type == WSMsgType.PING:
                        await ws.pong(msg.data)
                    elif msg.type == WSMsgType.PONG:
                        pass
                    elif msg.type == WSMsgType.BINARY:
                        error = ProtocolError(
                            ErrorCode.BINARY_NOT_SUPPORTED, "kinline.v1 frames are JSON text"
                        )
                        await self._perform(conn, conn.core.receive(error, time.monotonic()))
                    elif msg.type == WSMsgType.ERROR:
                        break
            finally:
                for prison in conn.prisons:
                    self.roster.unfollow(prison)
                if arrived:  # never a departure without its arrival (its other sockets count)
                    await self.roster.depart(principal.user.id, principal.user.prison_ids)
        finally:
            conn.ended = True  # a refresh still running must not join anything any more
            metrics.open_sockets.dec()
            self.sockets.remove(conn, principal.id)
            if relative and self.online is not None:
                self.online.left(principal.id)
            for topic in list(conn.topics):
                await self.hub.leave(topic, conn)
        return ws

    async def principal(self, user: User) -> Principal:
        return await self.lookups.principal_for(user)

    # the socket's life

    async def _open(self, conn: Connection) -> bool | None:
        """Welcome the socket, join its user's and prisons' topics and, for an officer,
        arrive on duty: whether it arrived, or ``None`` if storage or the broker cannot serve
        (the socket was told so and is to close)."""
        user = conn.principal.user
        limits = Limits(
            max_frame_bytes=self.settings.max_frame_bytes,
            max_body_chars=self.settings.max_body_chars,
        )
        conn.send(
            Welcome(
                user=UserRef(user.id, user.role, user.name),
                heartbeat=self.settings.heartbeat,
                limits=limits,
            )
        )
        try:
            await self._join(conn, user_topic(user.id), None)
            if not conn.is_staff:
                # Read the family links again now that control messages reach this socket:
                # a link revoked between the handshake's read and here is not missed.
                conn.principal = await self.principal(user)
            await self._follow(conn)
        except Exception as exc:
            if not fault(exc):
                raise
            await self._perform(conn, conn.core.unavailable())
            return None
        if user.role == "officer":
            await self.roster.arrive(UserRef(user.id, user.role, user.name), user.prison_ids)
            return True
        return False

    async def _follow(self, conn: Connection) -> None:
        """Join the topics of the prisons ``conn`` follows and is not following yet (at the
        start, and when a relative is verified for an inmate of another prison while
        connected), each with the prison's on-duty state now. A relative following any
        prison also gets the bureau-wide announcements."""
        for prison in conn.principal.followed_prisons:
            if prison in conn.prisons:
                continue
            staff = conn.is_staff
            await self._join(
                conn, prison_staff_topic(prison) if staff else prison_relatives_topic(prison), None
            )
            if conn.ended:
                return
            conn.prisons += (prison,)
            self.roster.follow(prison)
            if not staff:
                await self._join(conn, BUREAU_TOPIC, None)  # bureau-wide announcements
            with contextlib.suppress(BrokerUnavailable):
                conn.send(await self.roster.now(prison, staff=staff))

    async def frame(self, conn: Connection, data: str, received: float) -> None:
        """Handle one text frame (``received``: its ``perf_counter`` time, for ack latency)."""
        if self.draining.closing:
            return  # not started, not acked: the client sends it again after reconnecting
        with self.draining.frame():
            frame = decode_client(
                data,
                max_frame_bytes=self.settings.max_frame_bytes,
                max_body_chars=self.settings.max_body_chars,
            )
            label = "invalid" if isinstance(frame, ProtocolError) else type(frame).__name__
            metrics.frames_in.labels(label.lower()).inc()
            await self._perform(conn, conn.core.receive(frame, time.monotonic()), received)

    # carrying out what the session asks

    async def _perform(
        self, conn: Connection, outputs: list[Output], received: float | None = None
    ) -> None:
        """Carry out ``outputs`` in order (``received``: the frame's ``perf_counter`` time,
        the start of a send's ack latency)."""
        for output in outputs:
            try:
                match output:
                    case Close(code=code, reason=reason):
                        conn.kick(code, reason)
                    case Subscribe():
                        await self._subscribe(conn, output)
                    case Unsubscribe(conv=conv):
                        conn.left(conversation_topic(conv))
                        await self.hub.leave(conversation_topic(conv), conn)
                    case RelayTyping(conv=conv, tell=tell):
                        await authorize(self.lookups.conversation, conn, conv, "typing")
                        if tell:
                            self._tell_typing(conn, conv)
                    case MarkRead():
                        await self._read(conn, output)
                    case Submit():
                        start = time.perf_counter() if received is None else received
                        await self.send_path.send(conn, output.frame, start)
                    case _:
                        conn.send(output)
            except Denied as denied:
                conn.error(denied.code, denied.message)
            except Exception as exc:
                expected = fault(exc)
                if not expected:
                    log.exception("frame handling failed", extra={"user": conn.user_id})
                if isinstance(output, Subscribe):  # never left open following half of it
                    failure = conn.core.unavailable() if expected else conn.core.failed()
                    await self._perform(conn, failure)
                elif expected:
                    conn.error(ErrorCode.UNAVAILABLE, "storage is unavailable; try again")
                else:
                    conn.error(ErrorCode.INTERNAL, "internal error")

    async def _subscribe(self, conn: Connection, request: Subscribe) -> None:
        """Authorize, audit where due, join from the session's start cursors, answer."""
        action: Literal["read", "watch"] = "read" if request.via == "hello" else "watch"
        wanted: dict[int, int | None] = {}
        convs: dict[int, Conversation] = {}
        refused: dict[int, tuple[str, str]] = {}
        for conv_id, cursor in request.cursors.items():
            try:
                convs[conv_id] = await authorize(self.lookups.conversation, conn, conv_id, action)
                wanted[conv_id] = cursor
            except Denied as denied:
                refused[conv_id] = (denied.code, denied.message)
        if request.own:  # a relative's own conversations: from the start if not named
            for conv in await self.lookups.threads_of(conn.user_id):
                if sees_conversation(conn.principal, conv):
                    conn.remember(conv)
                    convs.setdefault(conv.id, conv)
                    wanted.setdefault(conv.id, 0)
        for conv_id, cursor in wanted.items():  # a family case member: from its join on
            if cursor is not None:
                wanted[conv_id] = max(cursor, history_floor(conn.principal, convs[conv_id]))
        last = await self.lookups.last_seqs(list(wanted)) if wanted else {}
        if audits_opening(conn.principal):  # audited before anything is shown, or refused
            now = time.monotonic()
            for conv_id in wanted:
                if conn.core.audit_due(conv_id, now):
                    await openings.opened(
                        self.store, self.hub, conn.user_id, convs[conv_id], "watch", utcnow()
                    )
                    conn.core.audited(conv_id, now)
        starts, lost = Session.starts(wanted, last)
        reached: dict[int, int] = {}
        for conv_id, start in starts.items():
            seq = await self._join(conn, conversation_topic(conv_id), start)
            if seq is not None:
                reached[conv_id] = seq
        if not conn.ended:
            await self._perform(conn, conn.core.subscribed(request, reached, lost, refused))

    async def _join(self, conn: Connection, topic: str, cursor: int | None) -> int | None:
        """Join ``topic``; the seq ``conn`` has been written up to, or ``None`` if its
        handler finished meanwhile (then nothing stays joined)."""
        seq = await self.hub.join(topic, conn, cursor)
        if conn.ended:  # the socket's handler finished (and cleaned up) meanwhile
            await self.hub.leave(topic, conn)
            return None
        conn.joined(topic)
        return seq

    def _tell_typing(self, conn: Connection, conv: int) -> None:
        user = conn.principal.user
        tell(self.hub, Typed(conv, UserRef(user.id, user.role, user.name)))

    async def _read(self, conn: Connection, frame: MarkRead) -> None:
        conv = await authorize(self.lookups.conversation, conn, frame.conv, "mark_read")
        last = (await self.lookups.last_seqs([conv.id])).get(conv.id, 0)
        seq = min(frame.seq, last)
        if seq and await messages.mark_read(self.store, conv.id, conn.user_id, seq):
            tell(self.hub, ReadMarked(conv.id, conn.user_id, seq))
        conn.core.marked(conv.id, seq)

    # shutdown

    def shed(self, count: int) -> int:
        """Close up to ``count`` sockets with 1012 (reconnect and resume elsewhere,
        server/rebalance.py), those with the fewest sends awaiting their ack first; none while
        shutting down (shutdown closes them all). Returns how many were closed."""
        if self.draining.closing:
            return 0
        return self.sockets.shed(count, key=self.send_path.unacked)

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Graceful shutdown (``server/shutdown.py``): frames in flight finish, their sends are
        acked, then every socket is closed with 1012."""
        await self.draining.shutdown(self.send_path.idle, self.sockets, timeout)
