"""A supervisor's opening of a conversation: audited first, then told to the family.

Every place a supervisor opens a conversation (the socket's ``watch`` and ``hello``, REST
history, the transcript) calls ``opened`` here: the audit entry is written before anything
is shown (``audit_trail.opened``: when it cannot be written the look is refused), and then
an ``opening`` frame goes to whoever watches the conversation (``policy.opening_audience``),
so a relative connected at that moment sees who looked, with the supervisor's title. The
relative reads every opening later over ``GET /conversations/{id}/access``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from channels.protocol import OpenerRef, OpeningEvent
from server.audience import ConversationOpened, Publisher, tell
from storage import audit_trail, openings
from storage.audit_trail import Opened
from storage.errors import StoreUnavailable
from storage.sql import Database


async def opened(
    db: Database,
    hub: Publisher,
    actor_id: int,
    conversation: Opened,
    via: Literal["watch", "history"],
    at: datetime,
) -> int:
    """Audit the opening (raises ``StoreUnavailable`` when it cannot), then tell it; the
    audit entry's id."""
    entry_id = await audit_trail.opened(db, actor_id, conversation, via, at)
    try:
        found = await openings.opening(db, entry_id)
    except StoreUnavailable:  # audited: the look goes ahead; the live hint is lost
        return entry_id
    if found is not None:
        who = OpenerRef(found.who.name, found.who.title)
        tell(hub, ConversationOpened(OpeningEvent(conversation.id, who, found.at, via)))
    return entry_id
