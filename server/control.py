"""The cross-process control plane: one user's sockets, on every process.

A staff decision taken by one process (a session revoked, a family link decided, a duty flag
changed) must reach that user's sockets wherever they are. The process publishes a
:class:`Control` message on the ``control`` topic; every process (itself included, at once)
applies it to the sockets it holds (:class:`~server.sockets.Sockets`).

- ``close``: the user's sockets (or one session's) are kicked with the given code.
- ``refresh``: fail closed first: the sockets drop every conversation at once and see none
  until the permissions are read again; then those it may still see are joined again from the
  cursor each had reached (storage replays the meantime). If they cannot be re-read, the
  sockets are closed with 1012 (reconnecting re-checks).
- ``duty``: the duty roster reads the officer's stored flag again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec

from channels.events import conversation_of, conversation_topic
from channels.hub import Hub
from channels.protocol import CloseCode
from server import sessions
from server.connection import Connection
from server.duty import DutyRoster
from server.policy import Principal, sees_conversation
from server.sockets import Sockets
from storage import accounts
from storage.errors import NotFound, StoreUnavailable
from storage.sql import Database

log = logging.getLogger(__name__)

CONTROL_TOPIC = "control"


class Control(msgspec.Struct, frozen=True):
    """A message to the gateways of every process about one user's sockets."""

    op: Literal["close", "refresh", "duty"]
    user: int
    code: int = CloseCode.NOT_AUTHENTICATED
    reason: str = ""
    session: str | None = None  # only the sockets of this session (hex of its token hash)
    keep: str | None = None  # all but the sockets of this session (a password change)


class ControlPlane:
    def __init__(
        self,
        hub: Hub,
        store: Database,
        sockets: Sockets,
        roster: DutyRoster,
        rejoin: Callable[[Connection, str, int | None], Awaitable[int | None]],
        follow_prisons: Callable[[Connection], Awaitable[None]],
    ) -> None:
        self.hub = hub
        self.store = store
        self.sockets = sockets
        self.roster = roster
        self._rejoin = rejoin
        self._follow_prisons = follow_prisons
        self._tasks: set[asyncio.Future[None]] = set()

    def start(self) -> None:
        self.hub.listen(CONTROL_TOPIC, self._on_control)

    def close_user(
        self,
        user_id: int,
        code: int = 4401,
        reason: str = "signed out",
        session: bytes | None = None,
        keep: bytes | None = None,
    ) -> None:
        """Close a user's sockets on every process: all of them, or those of one session
        (its token hash) when ``session`` is given (logout, session or account revoked), or
        all but those of the session ``keep`` (a password change from that session)."""
        control = Control(
            "close",
            user_id,
            code,
            reason,
            session.hex() if session else None,
            keep.hex() if keep else None,
        )
        self.hub.publish(CONTROL_TOPIC, msgspec.json.encode(control))

    def refresh_user(self, user_id: int) -> None:
        """Re-read a user's permissions on every process (a family link was decided or
        revoked): its sockets leave, at once, every conversation it may no longer see."""
        self.hub.publish(CONTROL_TOPIC, msgspec.json.encode(Control("refresh", user_id)))

    def duty_changed(self, user_id: int) -> None:
        """An officer's stored duty flag changed: every process holding its sockets reads it
        and updates the shared presence at once (``presence`` events follow)."""
        self.hub.publish(CONTROL_TOPIC, msgspec.json.encode(Control("duty", user_id)))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_control(self, data: bytes) -> None:
        try:
            control = msgspec.json.decode(data, type=Control)
        except msgspec.ValidationError:
            log.warning("dropped a malformed control message")
            return
        conns = self.sockets.of_user(control.user)
        if control.op == "close":
            for conn in conns:
                if control.session in (None, conn.session) and conn.session != control.keep:
                    conn.kick(control.code, control.reason)
        elif control.op == "duty":
            user = conns[0].principal.user if conns else None
            if user is not None and user.role == "officer":
                self._spawn(self.roster.duty_changed(user.id, user.prison_ids))
        elif conns:
            dropped = {conn: self._drop_conversations(conn) for conn in conns}
            self._spawn(self._refresh(conns[0].principal.user.id, dropped))

    def _drop_conversations(self, conn: Connection) -> dict[int, int]:
        cursors = {}
        for topic in [t for t in conn.topics if conversation_of(t) is not None]:
            conn.left(topic)
            cursor = self.hub.drop(topic, conn)
            conv_id = conversation_of(topic)
            if cursor is not None and conv_id is not None:
                cursors[conv_id] = cursor
        conn.principal = Principal(conn.principal.user)  # sees no conversation until re-read
        return cursors

    async def _refresh(self, user_id: int, dropped: dict[Connection, dict[int, int]]) -> None:
        try:
            principal = await sessions.principal_for(
                self.store, await accounts.user(self.store, user_id)
            )
        except (StoreUnavailable, NotFound):
            for conn in dropped:  # cannot re-check: make them reconnect, which re-checks
                conn.kick(CloseCode.RESTARTING, "permissions changed")
            return
        for conn, cursors in dropped.items():
            conn.principal = principal
            for conv_id, cursor in cursors.items():
                conv = conn.conversations.get(conv_id) if conn.conversations else None
                if conv is not None and sees_conversation(principal, conv) and not conn.closed:
                    await self._rejoin(conn, conversation_topic(conv_id), cursor)
            if not conn.closed:
                await self._follow_prisons(conn)  # a newly verified inmate's prison
