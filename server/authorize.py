"""Checking a frame's conversation against the policy, with the lookup done once per socket.

The conversation facts the policy reads (relative, inmate, prison) never change, so each
socket looks a conversation up once; the *decision* is made again on every frame, against
the socket's current principal (whose verified links change when staff decide or revoke).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from domain.records import Conversation
from server.connection import Connection
from server.policy import ConversationAction, Denied, check_conversation
from storage.errors import NotFound


async def authorize(
    lookup: Callable[[int], Awaitable[Conversation]],
    conn: Connection,
    conv_id: int,
    action: ConversationAction | Literal["text"],
) -> Conversation:
    """The conversation if ``conn`` may do ``action`` on it; else ``Denied`` (``not_found`` for
    one it may not see, exactly as for one that does not exist). ``text`` means ``send``.
    ``lookup`` reads a conversation (``NotFound`` if there is none): the process's batched
    read (server/lookups.py), or ``storage.conversations.conversation`` over a store."""
    known = conn.conversations
    conv = known.get(conv_id) if known else None
    if conv is None:
        try:
            conv = await lookup(conv_id)
        except NotFound:
            raise Denied("not_found", "no such conversation") from None
        if conn.conversations is None or len(conn.conversations) < 1000:
            conn.remember(conv)
    check_conversation(conn.principal, conv, "send" if action == "text" else action)
    return conv
