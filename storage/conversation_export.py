"""A conversation's verifiable record (DESIGN.md section 9): every message with its hash.

``{conversation: {id, prison, inmate}, messages: [{seq, sender, kind, body, at_us,
attachments?, hash}], head}``, messages in ``seq`` order, hashes lowercase hex. Anyone can
check it with nothing but SHA-256 (``domain.chain`` says how): start from 32 zero bytes, and
for each message ``h = sha256(h || C(m))`` must equal its ``hash``; the last is ``head``.

- Without notes (a relative's record), a note is listed as ``{seq, kind: "note", hash}``
  only: its text stays staff's, yet the next message's link to it can still be checked.
- A message whose text retention purged is listed with ``purged: true``, an empty body and
  its stored hash: its own hash cannot be recomputed, the next one's link to it can.
"""

from __future__ import annotations

import msgspec

from domain import chain
from storage.chains import conversation_chain
from storage.errors import NotFound
from storage.sql import Database


class ExportedConversation(msgspec.Struct, frozen=True):
    id: int
    prison: int
    inmate: int


class ExportedMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    seq: int
    kind: str
    hash: str
    sender: int | msgspec.UnsetType = msgspec.UNSET
    body: str | msgspec.UnsetType = msgspec.UNSET
    at_us: int | msgspec.UnsetType = msgspec.UNSET
    attachments: list[str] | msgspec.UnsetType = msgspec.UNSET
    purged: bool = False


class ConversationRecord(msgspec.Struct, frozen=True):
    conversation: ExportedConversation
    messages: list[ExportedMessage]
    head: str


async def conversation_record(
    db: Database, conversation_id: int, *, with_notes: bool, floor: int = 0
) -> ConversationRecord:
    """The record of one conversation as of now (``NotFound`` if there is none). With a
    ``floor`` (a family case member's join seq, ``server.policy.history_floor``) it starts
    there: the message at the floor as its hash only (the link the next one is checked
    against), nothing before it."""
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT id, prison_id, inmate_id FROM conversations WHERE id = $1", conversation_id
        )
        if row is None:
            raise NotFound(f"conversation {conversation_id}")
        found = await conversation_chain(sql, conversation_id)
    listed = []
    for m in found:
        if m.seq < floor:
            continue
        if m.seq == floor or (m.kind == "note" and not with_notes):
            listed.append(ExportedMessage(m.seq, m.kind, m.hash.hex()))
            continue
        listed.append(
            ExportedMessage(
                m.seq,
                m.kind,
                m.hash.hex(),
                sender=m.sender,
                body=m.body,
                at_us=m.at_us,
                attachments=list(m.attachments) if m.attachments else msgspec.UNSET,
                purged=m.purged,
            )
        )
    head = found[-1].hash if found else chain.GENESIS
    return ConversationRecord(
        ExportedConversation(row["id"], row["prison_id"], row["inmate_id"]), listed, head.hex()
    )
