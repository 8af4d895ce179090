"""The send path, in one place: authorize, append (atomic seq, idempotent cid), ack, publish.

- The ack is written only after the message's transaction committed (group commit may carry
  it with others; ``GroupCommit.append`` returns after the commit).
- Storage down: ``error {code: unavailable, cid}`` and no ack; the client keeps the message
  and sends it again with the same cid, which can never store it twice.
- A retried cid that was already stored is acked again with the original seq and not
  published again (its readers have it, or will replay it from storage).
"""

from __future__ import annotations

import time

from channels import metrics
from channels.events import audience, conversation_topic, message_bytes
from channels.hub import Hub
from channels.protocol import Ack, ErrorCode, Send
from server.authorize import authorize
from server.connection import Connection
from server.policy import Denied
from server.ratelimit import RateLimiter
from storage.base import NewMessage, Store, StoreUnavailable
from storage.group_commit import GroupCommit, Overloaded


class SendPath:
    def __init__(self, store: Store, commit: GroupCommit, hub: Hub, limiter: RateLimiter) -> None:
        self._store = store
        self._commit = commit
        self._hub = hub
        self._limiter = limiter

    async def send(self, conn: Connection, frame: Send, received: float) -> None:
        try:
            conv = await authorize(self._store, conn, frame.conv, frame.kind)
        except Denied as denied:
            conn.error(denied.code, denied.message, frame.cid)
            return
        except StoreUnavailable:
            conn.error(ErrorCode.UNAVAILABLE, "storage is unavailable; not stored", frame.cid)
            return
        if not self._limiter.allow(conn.user_id):
            wait = self._limiter.retry_after(conn.user_id)
            conn.error(
                ErrorCode.RATE_LIMITED, f"sending too fast; retry in {wait:.1f} s", frame.cid
            )
            return
        user = conn.principal.user
        item = NewMessage(conv.id, user.id, user.role, frame.cid, frame.body, frame.kind, user.name)
        try:
            appended = await self._commit.append(item)
        except StoreUnavailable:
            conn.error(ErrorCode.UNAVAILABLE, "storage is unavailable; not stored", frame.cid)
            return
        except Overloaded:
            conn.error(ErrorCode.RATE_LIMITED, "server busy; retry shortly", frame.cid)
            return
        if appended is None:
            conn.error(ErrorCode.NOT_FOUND, "no such conversation", frame.cid)
            return
        message = appended.message
        conn.send(
            Ack(cid=frame.cid, conv=conv.id, seq=message.seq, id=message.id, at=message.created_at)
        )
        metrics.messages_acked.inc()
        metrics.ack_latency.observe(time.perf_counter() - received)
        if appended.created:
            self._hub.publish(
                conversation_topic(conv.id),
                message_bytes(message),
                seq=message.seq,
                audience_=audience(message),
            )
