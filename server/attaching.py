"""Binding uploaded files to the message they are sent with, for every way a message comes
in (the socket's ``send``, REST, WeChat): at most ``limit`` files, each the sender's own and
free to send (``storage.attachments.bind_to_message``), bound to the message's key before
it is appended so the append's own transaction records them (migration 0018)."""

from __future__ import annotations

from collections.abc import Sequence

from channels.protocol import ErrorCode
from domain.records import Attachment
from storage import attachments
from storage.errors import NotFound
from storage.sql import Database


class AttachRefused(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def bind(
    store: Database,
    *,
    owner_id: int,
    conversation_id: int,
    cid: str,
    ids: Sequence[int],
    limit: int,
) -> tuple[Attachment, ...]:
    """The files bound to ``(conversation, owner, cid)``, in the order named."""
    if not ids:
        return ()
    if len(set(ids)) > limit:
        raise AttachRefused(
            ErrorCode.TOO_MANY_ATTACHMENTS, f"a message carries at most {limit} files"
        )
    try:
        return await attachments.bind_to_message(
            store, ids, owner_id=owner_id, conversation_id=conversation_id, cid=cid
        )
    except NotFound:
        raise AttachRefused(
            ErrorCode.ATTACHMENT_NOT_FOUND,
            "an attachment is unknown, not yours, or sent with another message already",
        ) from None
