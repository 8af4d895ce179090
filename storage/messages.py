"""Messages: reading a conversation's history and moving read cursors.

Appending is the adaptor's (``Database.append_messages``): it is the one hot path whose best
form differs by dialect. History pages are by ``seq``: the first ``limit`` after ``after``,
or else the last ``limit`` before ``before`` (the latest when neither is given), always
returned in ascending ``seq``.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from domain.records import Message, NewMessage
from storage.attachments import of_messages
from storage.sql import Database, Row, Sql, clamp_limit, utcnow

MESSAGE_SELECT = """
SELECT m.id, m.conversation_id, m.seq, m.sender_id, m.sender_role, u.name AS sender_name,
       m.cid, m.kind, m.body, m.created_at
FROM messages m JOIN users u ON u.id = m.sender_id
"""


def stored(item: NewMessage, message_id: int, seq: int, created_at: datetime) -> Message:
    """The message ``item`` became once appended, with what the database gave it."""
    return Message(
        message_id,
        item.conversation_id,
        seq,
        item.sender_id,
        item.sender_role,
        item.sender_name,
        item.cid,
        item.kind,
        item.body,
        created_at,
        item.attachments,
    )


def message_of(sql: Sql, row: Row) -> Message:
    return Message(
        row["id"],
        row["conversation_id"],
        row["seq"],
        row["sender_id"],
        row["sender_role"],
        row["sender_name"],
        row["cid"],
        row["kind"],
        row["body"],
        sql.when(row["created_at"]),
    )


async def messages(
    db: Database,
    conversation_id: int,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int = 50,
    include_notes: bool = True,
    floor: int = 0,
) -> list[Message]:
    """A page of history in ascending ``seq`` (see the module docstring); nothing at or
    below ``floor`` (a family case member's join seq: ``server.policy.history_floor``)."""
    args: list[object] = [conversation_id]
    where = ""
    if floor:
        args.append(floor)
        where += f" AND m.seq > ${len(args)}"
    for op, value in (("m.seq >", after), ("m.seq <", before)):
        if value is not None:
            args.append(value)
            where += f" AND {op} ${len(args)}"
    newest_first = after is None
    args.append(clamp_limit(limit))
    sql_text = (
        MESSAGE_SELECT
        + " WHERE m.conversation_id = $1"
        + where
        + ("" if include_notes else " AND m.kind <> 'note'")
        + f" ORDER BY m.seq {'DESC' if newest_first else 'ASC'} LIMIT ${len(args)}"
    )
    async with db.read() as sql:
        page = [message_of(sql, r) for r in await sql.fetch(sql_text, *args)]
        page = await with_attachments(sql, page)
    return page[::-1] if newest_first else page


async def with_attachments(sql: Sql, page: list[Message]) -> list[Message]:
    """``page`` with each message's attachments (one query for the page; none without any)."""
    found = await of_messages(sql, [m.id for m in page])
    if not found:
        return page
    return [
        msgspec.structs.replace(m, attachments=found[m.id]) if m.id in found else m for m in page
    ]


async def mark_read(db: Database, conversation_id: int, user_id: int, seq: int) -> bool:
    """Move the user's read cursor forward to ``seq``; False if it was there or further."""
    async with db.write() as sql:
        moved = await sql.execute(
            "INSERT INTO read_cursors (conversation_id, user_id, seq, updated_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (conversation_id, user_id) DO UPDATE"
            " SET seq = excluded.seq, updated_at = excluded.updated_at"
            " WHERE read_cursors.seq < excluded.seq",
            conversation_id,
            user_id,
            seq,
            utcnow(),
        )
    return moved > 0


async def read_cursors(db: Database, conversation_id: int) -> dict[int, int]:
    """Each reader's cursor in the conversation: user id -> the last seq it read."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT user_id, seq FROM read_cursors WHERE conversation_id = $1", conversation_id
        )
    return {r["user_id"]: r["seq"] for r in rows}
