"""The ``/ws`` endpoint: the handshake, then every frame of a ``kinline.v1`` socket.

Before the upgrade (no 101 without these): an ``Origin`` not in the allowlist is refused 403
(aiohttp does not check it); a missing, expired or revoked session is refused 401. After it:
every frame is decoded by the sans-I/O protocol (bad input -> an ``error`` frame with a stable
code; the socket stays open) and authorized against the policy, frame by frame. One socket's
frames are handled in order, so its sends are acked, and sequenced, in the order it sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import defaultdict
from typing import Literal

import msgspec
from aiohttp import WSMsgType, web

from channels import metrics
from channels.broker import BrokerUnavailable
from channels.events import (
    BUREAU_TOPIC,
    conversation_of,
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
    Hello,
    Limits,
    ProtocolError,
    Read,
    ReadEvent,
    Send,
    Typing,
    TypingEvent,
    Unwatch,
    UserRef,
    Watch,
    Welcome,
    decode_client,
    encode,
)
from server import sessions
from server.authorize import authorize
from server.config import Settings
from server.connection import Connection
from server.duty import DutyRoster
from server.errors import json_error
from server.policy import Denied, Principal, audits_opening, sees_conversation
from server.ratelimit import RateLimiter
from server.sending import SendPath
from storage import audit_trail
from storage.base import NotFound, Store, StoreUnavailable, User
from storage.sql import utcnow

log = logging.getLogger(__name__)

TYPING_EVERY = 2.0  # seconds: one typing event per user and conversation, the rest dropped
CONTROL_TOPIC = "control"


class Control(msgspec.Struct, frozen=True):
    """A message to the gateways of every process about one user's sockets."""

    op: Literal["close", "refresh", "duty"]
    user: int
    code: int = CloseCode.NOT_AUTHENTICATED
    reason: str = ""
    session: str | None = None  # only the sockets of this session (hex of its token hash)


class Gateway:
    def __init__(
        self, settings: Settings, store: Store, hub: Hub, send_path: SendPath, roster: DutyRoster
    ) -> None:
        self.settings = settings
        self.store = store
        self.hub = hub
        self.roster = roster
        self.send_path = send_path
        self.by_user: dict[int, set[Connection]] = defaultdict(set)
        self.typing = RateLimiter(rate=1 / TYPING_EVERY, burst=1)
        self.closing = False
        self._handlers: set[asyncio.Task[object]] = set()
        self._refreshing: set[asyncio.Task[None]] = set()
        self._inflight = 0  # frames being handled; shutdown waits for them
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self.hub.listen(CONTROL_TOPIC, self._on_control)

    # handshake

    async def handle(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.rstrip("/") not in self.settings.origins:
            return json_error(403, "forbidden_origin", "this origin may not open a socket")
        token, _ = sessions.presented_token(request)
        if token is None:
            return json_error(401, "not_authenticated", "sign in first")
        try:
            user = await sessions.user_for(self.store, token)
            principal = await self.principal(user) if user else None
        except StoreUnavailable:
            return json_error(503, "unavailable", "storage is unavailable")
        if principal is None or self.closing:
            return (
                json_error(503, "unavailable", "server restarting")
                if self.closing
                else json_error(401, "not_authenticated", "session expired or revoked")
            )
        ws = web.WebSocketResponse(
            protocols=(SUBPROTOCOL,),
            compress=False,  # permessage-deflate costs far more memory than it saves here
            heartbeat=self.settings.heartbeat,
            max_msg_size=self.settings.max_frame_bytes * 4,  # up to this: error frame; past: 1009
        )
        ws.headers["X-Kinline-Worker"] = str(os.getpid())  # which process serves this socket
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        conn = Connection(
            ws,
            sessions.token_hash(token).hex(),
            transport,
            principal,
            max_buffer=self.settings.max_outbound_bytes,
        )
        if len(self.by_user[principal.id]) >= self.settings.max_sockets_per_user:
            conn.error(ErrorCode.TOO_MANY_CONNECTIONS, "too many open connections for this user")
            await ws.close(code=CloseCode.TOO_MANY_CONNECTIONS, message=b"too many connections")
            return ws
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self.by_user[principal.id].add(conn)
        metrics.open_sockets.inc()
        try:
            if not conn.is_staff:
                # Read the family links again now that control messages reach this socket: a
                # link revoked between the handshake's read and here is not missed.
                conn.principal = await self.principal(principal.user)
            await self._serve(conn)
        except StoreUnavailable:
            await ws.close(code=CloseCode.RESTARTING, message=b"storage unavailable")
        finally:
            conn.ended = True  # a refresh still running must not join anything any more
            metrics.open_sockets.dec()
            self.by_user[principal.id].discard(conn)
            if not self.by_user[principal.id]:
                del self.by_user[principal.id]
            for topic in list(conn.topics):
                await self.hub.leave(topic, conn)
            if task is not None:
                self._handlers.discard(task)
        return ws

    async def principal(self, user: User) -> Principal:
        return await sessions.principal_for(self.store, user)

    # frames

    async def _serve(self, conn: Connection) -> None:
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
        await self._join(conn, user_topic(user.id), None)
        arrived = False  # an officer counts on duty if it also said so (DutyRoster)
        try:
            await self._follow_prisons(conn)
            if user.role == "officer":
                await self.roster.arrive(UserRef(user.id, user.role, user.name), user.prison_ids)
                arrived = True
            await self._frames(conn)
        finally:
            for prison in conn.prisons:
                self.roster.unfollow(prison)
            if arrived:  # never a departure without its arrival (its other sockets count)
                await self.roster.depart(user.id, user.prison_ids)

    async def _follow_prisons(self, conn: Connection) -> None:
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
            conn.prisons.add(prison)
            self.roster.follow(prison)
            if not staff:
                await self._join(conn, BUREAU_TOPIC, None)  # bureau-wide announcements
            with contextlib.suppress(BrokerUnavailable):
                conn.send(await self.roster.now(prison, staff=staff))

    async def _frames(self, conn: Connection) -> None:
        async for msg in conn.ws:
            if conn.closed:
                break
            if msg.type == WSMsgType.TEXT:
                await self.frame(conn, msg.data, time.perf_counter())
            elif msg.type == WSMsgType.BINARY:
                conn.error(ErrorCode.BINARY_NOT_SUPPORTED, "kinline.v1 frames are JSON text")
            elif msg.type == WSMsgType.ERROR:
                break

    async def frame(self, conn: Connection, data: str, received: float) -> None:
        if self.closing:
            return  # not started, not acked: the client sends it again after reconnecting
        self._inflight += 1
        self._idle.clear()
        try:
            await self._frame(conn, data, received)
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._idle.set()

    async def _frame(self, conn: Connection, data: str, received: float) -> None:
        frame = decode_client(
            data,
            max_frame_bytes=self.settings.max_frame_bytes,
            max_body_chars=self.settings.max_body_chars,
        )
        if isinstance(frame, ProtocolError):
            metrics.frames_in.labels("invalid").inc()
            conn.error(frame.code, frame.message, frame.cid)
            return
        metrics.frames_in.labels(type(frame).__name__.lower()).inc()
        try:
            match frame:
                case Send():
                    await self.send_path.send(conn, frame, received)
                case Hello():
                    await self._hello(conn, frame)
                case Watch():
                    conv = await authorize(self.store, conn, frame.conv, "watch")
                    if audits_opening(conn.principal):  # audited before the look, or refused
                        await audit_trail.opened(
                            self.store.db, conn.user_id, conv, "watch", utcnow()
                        )
                    await self._join(conn, conversation_topic(frame.conv), frame.after)
                case Unwatch():
                    conn.topics.discard(conversation_topic(frame.conv))
                    await self.hub.leave(conversation_topic(frame.conv), conn)
                case Typing():
                    await self._typing(conn, frame)
                case Read():
                    await self._read(conn, frame)
        except Denied as denied:
            conn.error(denied.code, denied.message)
        except StoreUnavailable:
            conn.error(ErrorCode.UNAVAILABLE, "storage is unavailable; try again")
        except Exception:
            log.exception("frame handling failed", extra={"user": conn.user_id})
            conn.error(ErrorCode.INTERNAL, "internal error")

    async def _join(self, conn: Connection, topic: str, cursor: int | None) -> None:
        if topic in conn.topics:
            return
        await self.hub.join(topic, conn, cursor)
        if conn.ended:  # the socket's handler finished (and cleaned up) meanwhile
            await self.hub.leave(topic, conn)
            return
        conn.topics.add(topic)

    async def _hello(self, conn: Connection, hello: Hello) -> None:
        """Resume every conversation named with its cursor. A relative also follows all of
        its own conversations: one it names no cursor for it has seen nothing of, so it is
        replayed from the start (paged) and then streamed. "Live from now" would leave a gap
        the client cannot close: it cannot know when its hello took effect."""
        for conv_id, seq in hello.resume.items():
            try:
                conv = await authorize(self.store, conn, conv_id, "read")
            except Denied as denied:
                conn.error(denied.code, f"conversation {conv_id}: {denied.message}")
                continue
            if audits_opening(conn.principal):  # resuming is opening it again: audited first
                await audit_trail.opened(self.store.db, conn.user_id, conv, "watch", utcnow())
            await self._join(conn, conversation_topic(conv_id), seq)
        if conn.principal.user.role == "relative":
            for conv in await self.store.conversations_of(conn.user_id):
                if conv.inmate_id in conn.principal.verified_inmates:
                    conn.conversations.setdefault(conv.id, conv)
                    await self._join(conn, conversation_topic(conv.id), 0)

    async def _typing(self, conn: Connection, frame: Typing) -> None:
        await authorize(self.store, conn, frame.conv, "typing")
        if self.typing.allow((conn.user_id, frame.conv)):
            user = conn.principal.user
            event = TypingEvent(conv=frame.conv, user=UserRef(user.id, user.role, user.name))
            self.hub.publish(conversation_topic(frame.conv), encode(event))

    async def _read(self, conn: Connection, frame: Read) -> None:
        conv = await authorize(self.store, conn, frame.conv, "mark_read")
        last = (await self.store.last_seqs([conv.id])).get(conv.id, 0)
        seq = min(frame.seq, last)
        if seq and await self.store.mark_read(conv.id, conn.user_id, seq):
            event = ReadEvent(conv=conv.id, user=conn.user_id, seq=seq)
            self.hub.publish(conversation_topic(conv.id), encode(event))

    # operations, on every process

    def close_user(
        self,
        user_id: int,
        code: int = 4401,
        reason: str = "signed out",
        session: bytes | None = None,
    ) -> None:
        """Close a user's sockets on every process: all of them, or those of one session
        (its token hash) when ``session`` is given (logout, session or account revoked)."""
        control = Control("close", user_id, code, reason, session.hex() if session else None)
        self.hub.publish(CONTROL_TOPIC, msgspec.json.encode(control))

    def refresh_user(self, user_id: int) -> None:
        """Re-read a user's permissions on every process (a family link was decided or
        revoked): its sockets leave, at once, every conversation it may no longer see."""
        self.hub.publish(CONTROL_TOPIC, msgspec.json.encode(Control("refresh", user_id)))

    def duty_changed(self, user_id: int) -> None:
        """An officer's stored duty flag changed: every process holding its sockets reads it
        and updates the shared presence at once (``presence`` events follow)."""
        control = Control("duty", user_id)
        self.hub.publish(CONTROL_TOPIC, msgspec.json.encode(control))

    def _on_control(self, data: bytes) -> None:
        try:
            control = msgspec.json.decode(data, type=Control)
        except msgspec.ValidationError:
            log.warning("dropped a malformed control message")
            return
        conns = list(self.by_user.get(control.user, ()))
        if control.op == "close":
            for conn in conns:
                if control.session in (None, conn.session):
                    conn.kick(control.code, control.reason)
        elif control.op == "duty":
            user = conns[0].principal.user if conns else None
            if user is not None and user.role == "officer":
                changed = self.roster.duty_changed(user.id, user.prison_ids)
                task = asyncio.ensure_future(changed)
                self._refreshing.add(task)
                task.add_done_callback(self._refreshing.discard)
        elif conns:
            # Fail closed, now, before anything else runs: drop the user's conversations and
            # permissions; the re-read below gives back what it may still see, from the
            # cursor each subscription had reached (storage replays the meantime).
            dropped = {conn: self._drop_conversations(conn) for conn in conns}
            task = asyncio.ensure_future(self._refresh(conns[0].principal.user.id, dropped))
            self._refreshing.add(task)
            task.add_done_callback(self._refreshing.discard)

    def _drop_conversations(self, conn: Connection) -> dict[int, int]:
        cursors = {}
        for topic in [t for t in conn.topics if conversation_of(t) is not None]:
            conn.topics.discard(topic)
            cursor = self.hub.drop(topic, conn)
            conv_id = conversation_of(topic)
            if cursor is not None and conv_id is not None:
                cursors[conv_id] = cursor
        conn.principal = Principal(conn.principal.user)  # sees no conversation until re-read
        return cursors

    async def _refresh(self, user_id: int, dropped: dict[Connection, dict[int, int]]) -> None:
        try:
            principal = await self.principal(await self.store.user(user_id))
        except (StoreUnavailable, NotFound):
            for conn in dropped:  # cannot re-check: make them reconnect, which re-checks
                conn.kick(CloseCode.RESTARTING, "permissions changed")
            return
        for conn, cursors in dropped.items():
            conn.principal = principal
            for conv_id, cursor in cursors.items():
                conv = conn.conversations.get(conv_id)
                if conv is not None and sees_conversation(principal, conv) and not conn.closed:
                    await self._join(conn, conversation_topic(conv_id), cursor)
            if not conn.closed:
                await self._follow_prisons(conn)  # a newly verified inmate's prison

    @property
    def open_count(self) -> int:
        """Sockets open on this process (rebalancing compares it with the other processes')."""
        return sum(len(conns) for conns in self.by_user.values())

    def shed(self, count: int) -> int:
        """Close up to ``count`` sockets with 1012 (reconnect and resume, server/rebalance.py):
        those with no send awaiting its ack first, at random among equals; return how many.
        None while shutting down (shutdown closes them all)."""
        conns = [c for group in self.by_user.values() for c in group if not c.closed]
        if self.closing or count <= 0 or not conns:
            return 0
        random.shuffle(conns)
        conns.sort(key=self.send_path.unacked)  # stable: still random among equals
        for conn in conns[:count]:
            conn.kick(CloseCode.RESTARTING, "rebalancing: reconnect and resume")
        return min(count, len(conns))

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Refuse new sockets and new frames, let the frames in flight finish (their sends
        committed and acked), then close every socket with 1012 so clients reconnect (to
        another worker) and resume."""
        self.closing = True
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()  # frames being handled
                await self.send_path.idle()  # their sends committed and acked
        except TimeoutError:
            log.warning("shutdown: sends still unanswered after %.0f s", timeout)
        conns = [c for group in self.by_user.values() for c in group]
        await asyncio.gather(
            *(c.ws.close(code=CloseCode.RESTARTING, message=b"server restarting") for c in conns),
            return_exceptions=True,
        )
