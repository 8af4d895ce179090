"""The send path, in one place: authorize, append (atomic seq, idempotent cid), ack, publish.

- The ack is written only after the message's transaction committed (group commit may carry
  it with others; the ack is written from the commit's completion callback).
- Pipelined: a socket's sends are authorized and queued in the order they arrived, and the
  socket goes on reading while they commit. Group commit keeps one batch in flight per
  conversation, so a sender's messages to a conversation get seqs, and acks, in the order it
  sent them; other conversations commit meanwhile in other batches (a locked or slow one holds
  up only itself). Sends not yet acked are capped per socket (``MAX_UNACKED``); past the cap,
  or when the server really is behind (group commit's drain-time estimate), a send is refused
  with ``rate_limited`` and its ``retry_after`` at once instead of queueing without bound.
- Storage down (anything ``server.faults.unavailable`` classifies so: unreachable, out of
  connection slots, timed out): ``error {code: unavailable, cid, retry_after}`` and no ack,
  logged once per episode (``server.faults.STORAGE``); the client keeps the message and sends
  it again with the same cid, which can never store it twice.
- A message the database refuses fails alone (group commit retries its batch without it):
  ``error {code: internal, cid}``, logged with its traceback, since decoding should have
  refused it (``invalid_text``).
- A retried cid that was already stored is acked again with the original seq and not
  published again (its readers have it, or will replay it from storage).
- A relative's question that opens a cycle (the thread was ``new`` or ``resolved``; the
  life-cycle trigger of migration 0007 made it ``waiting`` in the same transaction) is
  announced as a ``conversation`` event (``created`` / ``reopened``) to the prison's staff
  and to the relative; an officer's answer that claimed a waiting thread, as ``claimed``. The
  database says so with the append's result (``effect``, ``cycle``), so the hot path makes
  no extra round trip for it and never re-derives the rule.
- Keyword review (``server/keywords.py``): a text message's body is matched in memory
  against the bureau's lists before the append, and the categories it matched travel with
  it into the same append statement (``NewMessage.flags``). Nothing else changes: the same
  ack, the same frames to the same readers, at the same time; flags are read only by the
  staff's review queue (``GET /flags``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable

import msgspec

from channels import metrics
from channels.hub import Hub
from channels.protocol import Ack, ConversationEvent, ErrorCode, Send
from domain.records import Appended, Attachment, Conversation, Message, NewMessage
from server import attaching, faults
from server.audience import MessageStored, ThreadChanged, tell
from server.authorize import authorize
from server.connection import Connection
from server.keywords import LiveKeywords
from server.policy import Denied, ThreadChange
from server.ratelimit import RateLimiter
from storage import conversations, desk
from storage.errors import NotFound, StoreUnavailable
from storage.group_commit import GroupCommit, Overloaded
from storage.sql import Database

log = logging.getLogger(__name__)


MAX_UNACKED = 256  # per socket
UNAVAILABLE_RETRY = 1.0  # seconds: the retry_after of "unavailable" (an outage's length is unknown)


class SendPath:
    def __init__(
        self,
        store: Database,
        commit: GroupCommit,
        hub: Hub,
        limiter: RateLimiter,
        *,
        max_attachments: int = 4,
    ) -> None:
        self._store = store
        self._conversation = functools.partial(conversations.conversation, store)
        self.max_attachments = max_attachments  # files one message may carry (issue 18)
        self._commit = commit
        self._hub = hub
        self._limiter = limiter
        self._unacked: Counter[Connection] = Counter()
        self._rechecks: set[asyncio.Future[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        # told of every message this process stored (the outbox relay looks at once)
        self.on_stored: Callable[[Message], None] | None = None
        self.keywords: LiveKeywords | None = None  # flags text messages for review
        # told of every question this process stored that opened a cycle (server/routing.py)
        self.on_question: Callable[[Conversation, int], None] | None = None

    def _flagged(self, item: NewMessage) -> NewMessage:
        """``item`` with the keyword categories its body matches (text messages only)."""
        if self.keywords is None or item.kind != "text" or item.flags is not None:
            return item
        matcher = self.keywords.matcher
        flags = matcher.flags(item.body) if matcher else None
        return item if flags is None else msgspec.structs.replace(item, flags=flags)

    async def send(self, conn: Connection, frame: Send, received: float) -> None:
        """Authorize and queue the message; its ack (or error) follows once it is committed."""
        try:
            conv = await authorize(self._conversation, conn, frame.conv, frame.kind)
        except Denied as denied:
            conn.error(denied.code, denied.message, frame.cid)
            return
        except Exception as exc:
            if not faults.unavailable(exc):
                raise
            self._unavailable(conn, frame, exc)
            return
        if not self._limiter.allow(conn.user_id):
            wait = self._limiter.retry_after(conn.user_id)
            conn.error(
                ErrorCode.RATE_LIMITED,
                f"sending too fast; retry in {wait:.1f} s",
                frame.cid,
                retry_after=round(wait, 3),
            )
            return
        if self._unacked[conn] >= MAX_UNACKED:
            conn.error(ErrorCode.RATE_LIMITED, "too many messages awaiting their ack", frame.cid)
            return
        user = conn.principal.user
        attached: tuple[Attachment, ...] = ()
        if frame.attachments:  # bound to the message's key before it is appended
            try:
                attached = await attaching.bind(
                    self._store,
                    owner_id=user.id,
                    conversation_id=conv.id,
                    cid=frame.cid,
                    ids=frame.attachments,
                    limit=self.max_attachments,
                )
            except attaching.AttachRefused as refused:
                conn.error(refused.code, refused.message, frame.cid)
                return
            except Exception as exc:
                if not faults.unavailable(exc):
                    raise
                self._unavailable(conn, frame, exc)
                return
        item = self._flagged(
            NewMessage(
                conv.id, user.id, user.role, frame.cid, frame.body, frame.kind, user.name, attached
            )
        )
        try:
            committed = self._commit.submit(item)
        except Overloaded as busy:
            conn.error(
                ErrorCode.RATE_LIMITED,
                f"server busy; retry in {busy.retry_after:.1f} s",
                frame.cid,
                retry_after=round(busy.retry_after, 3),
            )
            return
        self._unacked[conn] += 1
        self._idle.clear()
        committed.add_done_callback(functools.partial(self._settle, conn, frame, received, conv))

    def unacked(self, conn: Connection) -> int:
        """Sends of ``conn`` admitted and not yet answered."""
        return self._unacked.get(conn, 0)

    def _settle(
        self,
        conn: Connection,
        frame: Send,
        received: float,
        conv: Conversation,
        committed: asyncio.Future[Appended | None],
    ) -> None:
        self._unacked[conn] -= 1
        if self._unacked[conn] <= 0:
            del self._unacked[conn]
            if not self._unacked:
                self._idle.set()
        if committed.cancelled():
            return
        error = committed.exception()
        if error is not None and faults.unavailable(error):
            self._unavailable(conn, frame, error)
            return
        if error is not None:
            log.error("append failed", exc_info=error)
            conn.error(ErrorCode.INTERNAL, "internal error; not stored", frame.cid)
            return
        faults.STORAGE.recovered()
        appended = committed.result()
        if appended is None:
            conn.error(ErrorCode.NOT_FOUND, "no such conversation", frame.cid)
            return
        message = appended.message
        conn.send(
            Ack(
                cid=frame.cid,
                conv=message.conversation_id,
                seq=message.seq,
                id=message.id,
                at=message.created_at,
            )
        )
        metrics.messages_acked.inc()
        metrics.ack_latency.observe(time.perf_counter() - received)
        self._publish(appended, conv)

    @staticmethod
    def _unavailable(conn: Connection, frame: Send, error: BaseException) -> None:
        faults.STORAGE.failed(error)
        conn.error(
            ErrorCode.UNAVAILABLE,
            "storage is unavailable; not stored",
            frame.cid,
            retry_after=UNAVAILABLE_RETRY,
        )

    def _publish(self, appended: Appended, conv: Conversation) -> None:
        """Once committed: the message to its readers, and the change it made to the queue."""
        message = appended.message
        if appended.created:
            tell(self._hub, MessageStored(message))
            if self.on_stored is not None:
                self.on_stored(message)
            self._announce(appended, conv)
        elif message.kind == "text" and message.sender_role == "relative":  # a retried question
            self._recheck(message, conv)

    def _recheck(self, message: Message, conv: Conversation) -> None:
        """A question sent again with its cid (its first try committed, but the ack or the
        announcement may have been lost with a connection or a killed process): announce its
        cycle again if that cycle is still waiting. A repeat announcement is harmless."""

        async def recheck() -> None:
            try:
                thread = await desk.thread(self._store, conv.id)
            except (StoreUnavailable, NotFound):
                return
            if thread.state == "waiting" and thread.wait_started_at == message.created_at:
                self._announce(Appended(message, True, "opened", thread.cycle), conv)

        task = asyncio.ensure_future(recheck())
        self._rechecks.add(task)
        task.add_done_callback(self._rechecks.discard)

    def _announce(self, appended: Appended, conv: Conversation) -> None:
        """The change of the thread's state that the message made in its own transaction
        (its ``effect``): a question that opened cycle 1 created the thread's first question,
        a later one reopened it; an answer claimed it. Who is told is the policy's
        (``thread_change_audience``). Nothing for any other message."""
        message = appended.message
        if appended.effect == "opened":
            event = ConversationEvent(
                event="created" if appended.cycle == 1 else "reopened",
                conv=conv.id,
                state="waiting",
                by=message.sender_id,
                inmate=conv.inmate_id,
                relative=conv.relative_id,
                cycle=appended.cycle,
                waiting_since=message.created_at,
            )
            if self.on_question is not None and appended.cycle is not None:
                self.on_question(conv, appended.cycle)
        elif appended.effect == "claimed":
            event = ConversationEvent(
                event="claimed",
                conv=conv.id,
                state="active",
                officer=message.sender_id,
                by=message.sender_id,
                inmate=conv.inmate_id,
                relative=conv.relative_id,
                cycle=appended.cycle,
            )
        else:
            return
        tell(self._hub, ThreadChanged(ThreadChange(conv, event.event, by_message=True), event))

    def admit(self, user_id: int) -> float | None:
        """The per-user send rate, for sends that do not come over a socket (REST): ``None``
        if ``user_id`` may send now (a token is taken), else the seconds to wait."""
        if self._limiter.allow(user_id):
            return None
        return self._limiter.retry_after(user_id)

    async def post(self, item: NewMessage, conversation: Conversation | None = None) -> Message:
        """Append a message on the server's own behalf (a ``system`` fact card, an officer's
        message sent over REST) through the same group commit, and publish it once committed.
        A change of the thread's state it makes is announced like one sent over a socket
        (``conversation``, when the caller has it, saves looking it up).
        Raises ``StoreUnavailable`` (nothing stored) or ``NotFound`` (no such conversation)."""
        item = self._flagged(item)
        try:
            committed = self._commit.submit(item)
        except Overloaded:
            raise StoreUnavailable("the store is not keeping up; try again") from None
        appended = await committed
        if appended is None:
            raise NotFound(f"conversation {item.conversation_id}")
        conv = conversation or await conversations.conversation(self._store, item.conversation_id)
        self._publish(appended, conv)
        return appended.message

    async def idle(self) -> None:
        """Wait until every queued send is committed and answered (graceful shutdown)."""
        await self._idle.wait()
