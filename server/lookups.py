"""The reads of a socket's handshake and resume, batched across the sockets doing it at once.

A reconnect storm is thousands of sockets doing the same few reads in the same second: the
session behind the token, a relative's verified links, its threads, the conversations named
by its cursors and their last seqs. Each read here is :class:`channels.batched.Batched`: the
lookups made together are one statement, nothing is cached, and every answer is as fresh as
a read of its own (so a session revoked or a link removed before a lookup is never missed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from channels.batched import Batched
from domain.records import Conversation, User
from server.policy import Principal
from server.sessions import principal_of, token_hash
from storage import conversations, family, sessions
from storage.errors import NotFound
from storage.sql import Database


class Lookups:
    def __init__(self, store: Database) -> None:
        self._users: Batched[bytes, User | None] = Batched(
            lambda hashes: sessions.session_users(store, hashes, datetime.now(UTC)), None
        )
        self._access: Batched[int, family.Access] = Batched(
            lambda ids: family.access_of(store, ids), ({}, {})
        )
        self._conversations: Batched[int, Conversation | None] = Batched(
            lambda ids: conversations.conversations_by_id(store, ids), None
        )
        self._threads: Batched[int, list[Conversation]] = Batched(
            lambda ids: conversations.threads_of(store, ids), []
        )
        self._last_seqs: Batched[int, int | None] = Batched(
            lambda ids: conversations.last_seqs(store, ids), None
        )

    async def user_for(self, token: str) -> User | None:
        """The user of a live session with this token (``server.sessions.user_for``)."""
        if len(token) > 256:
            return None
        return await self._users.get(token_hash(token))

    async def principal_for(self, user: User) -> Principal:
        """``server.sessions.principal_for``: a relative's links read now."""
        if user.role != "relative":
            return Principal(user)
        return principal_of(user, await self._access.get(user.id))

    async def conversation(self, conversation_id: int) -> Conversation:
        conv = await self._conversations.get(conversation_id)
        if conv is None:
            raise NotFound(f"conversation {conversation_id}")
        return conv

    async def threads_of(self, relative_id: int) -> list[Conversation]:
        """The relative's own threads, then the shared ones it is a member of."""
        return list(await self._threads.get(relative_id))

    async def last_seqs(self, conversation_ids: Sequence[int]) -> dict[int, int]:
        """Each named conversation's last seq (those that do not exist are left out)."""
        seqs = await asyncio.gather(*(self._last_seqs.get(c) for c in conversation_ids))
        return {c: s for c, s in zip(conversation_ids, seqs, strict=True) if s is not None}
