"""Keyword review: the bureau's lists per category, and the flagged messages' review state.

- The lists (``keyword_lists``, migration 0025) are replaced as a whole by the admin
  (``replace_lists``): categories are data, so a category not in the new set is removed
  (messages it flagged keep their flag). Each change bumps ``keyword_version`` and is audited
  ``keywords.updated`` (before and after) in the same transaction.
- A message's flags are written by the append itself (``Database.append_messages``, from
  ``NewMessage.flags``): storing a message and flagging it are one statement.
- The queue (``flagged``) lists flagged messages of some prisons, newest first, paged by
  message id; ``review`` marks one reviewed with a note, once (``Conflict`` the second
  time), audited ``flag.reviewed`` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import msgspec

from domain.keywords import split_flags
from storage import audit_trail
from storage.errors import Conflict, NotFound
from storage.sql import Database, Row, Sql, clamp_limit, ids_in

ReviewState = Literal["unreviewed", "reviewed", "all"]


class KeywordList(msgspec.Struct, frozen=True):
    category: str
    label: str
    words: list[str]


class KeywordSet(msgspec.Struct, frozen=True):
    version: int
    lists: list[KeywordList]

    def as_mapping(self) -> dict[str, list[str]]:
        return {k.category: k.words for k in self.lists}


class Person(msgspec.Struct, frozen=True):
    id: int
    name: str
    role: str


class Review(msgspec.Struct, frozen=True):
    by: Person
    at: datetime
    note: str


class Flag(msgspec.Struct, frozen=True):
    """A flagged message (its id is the message's) and its review, if any."""

    id: int
    conversation_id: int
    prison_id: int
    inmate_id: int
    seq: int
    sender: Person
    kind: str
    body: str
    at: datetime
    categories: list[str]
    review: Review | None


_VERSION = "SELECT COALESCE(max(version), 0) FROM keyword_version"


async def version(db: Database) -> int:
    """The stored lists' version (0 before any: a database emptied by hand has no row)."""
    async with db.read() as sql:
        return int(await sql.fetchval(_VERSION))


async def _lists(sql: Sql) -> KeywordSet:
    """The version first, then the lists: read outside a transaction, a change committed in
    between gives newer lists under the older version, which the next version check reads
    again; never older lists under the newer version, which would stay."""
    current = int(await sql.fetchval(_VERSION))
    rows = await sql.fetch("SELECT category, label, words FROM keyword_lists ORDER BY category")
    lists = [KeywordList(r["category"], r["label"], list(sql.unjson(r["words"]))) for r in rows]
    return KeywordSet(current, lists)


async def lists(db: Database) -> KeywordSet:
    """The current lists and their version."""
    async with db.read() as sql:
        return await _lists(sql)


async def replace_lists(
    db: Database, new: Sequence[KeywordList], actor_id: int | None, at: datetime
) -> KeywordSet:
    """Replace every list by ``new`` (audited; ``actor_id`` ``None``: by the system, as a
    benchmark's setup); the stored set with its new version."""
    async with db.write() as sql:
        before = await _lists(sql)
        await sql.execute(
            "INSERT INTO keyword_version (id, version) VALUES (1, 1) ON CONFLICT (id)"
            " DO UPDATE SET version = keyword_version.version + 1"
        )
        await sql.execute("DELETE FROM keyword_lists")
        for item in new:
            await sql.execute(
                "INSERT INTO keyword_lists (category, label, words, updated_at)"
                " VALUES ($1, $2, $3, $4)",
                item.category,
                item.label,
                list(item.words),
                at,
            )
        after = await _lists(sql)
        await audit_trail.record(
            sql,
            at=at,
            actor_id=actor_id,
            action="keywords.updated",
            object_type="keywords",
            object_id=after.version,
            prison_id=None,
            before={"lists": [msgspec.to_builtins(k) for k in before.lists]},
            after={"lists": [msgspec.to_builtins(k) for k in after.lists]},
        )
    return after


_FLAG_SELECT = """
SELECT m.id, m.conversation_id, c.prison_id, c.inmate_id, m.seq, m.sender_id,
       s.name AS sender_name, s.role AS sender_role, m.kind, m.body, m.created_at, m.flags,
       r.reviewed_by, v.name AS reviewer_name, v.role AS reviewer_role, r.reviewed_at, r.note
FROM messages m
JOIN conversations c ON c.id = m.conversation_id
JOIN users s ON s.id = m.sender_id
LEFT JOIN flag_reviews r ON r.message_id = m.id
LEFT JOIN users v ON v.id = r.reviewed_by
WHERE m.flags IS NOT NULL
"""


def _flag(sql: Sql, row: Row) -> Flag:
    review = None
    if row["reviewed_by"] is not None:
        review = Review(
            Person(row["reviewed_by"], row["reviewer_name"], row["reviewer_role"]),
            sql.when(row["reviewed_at"]),
            row["note"],
        )
    return Flag(
        id=row["id"],
        conversation_id=row["conversation_id"],
        prison_id=row["prison_id"],
        inmate_id=row["inmate_id"],
        seq=row["seq"],
        sender=Person(row["sender_id"], row["sender_name"], row["sender_role"]),
        kind=row["kind"],
        body=row["body"],
        at=sql.when(row["created_at"]),
        categories=split_flags(row["flags"]),
        review=review,
    )


async def flagged(
    db: Database,
    prison_ids: Sequence[int],
    *,
    state: ReviewState = "unreviewed",
    before_id: int | None = None,
    limit: int = 50,
) -> list[Flag]:
    """Flagged messages of ``prison_ids``, newest first (by message id, below ``before_id``)."""
    args: list[object] = [clamp_limit(limit)]
    where = f" AND c.prison_id IN {ids_in(prison_ids)}"
    if state == "unreviewed":
        where += " AND r.message_id IS NULL"
    elif state == "reviewed":
        where += " AND r.message_id IS NOT NULL"
    if before_id is not None:
        args.append(before_id)
        where += " AND m.id < $2"
    async with db.read() as sql:
        rows = await sql.fetch(_FLAG_SELECT + where + " ORDER BY m.id DESC LIMIT $1", *args)
        return [_flag(sql, r) for r in rows]


async def flag(db: Database, message_id: int) -> Flag:
    """One flagged message; ``NotFound`` when it does not exist or carries no flag."""
    async with db.read() as sql:
        row = await sql.fetchrow(_FLAG_SELECT + " AND m.id = $1", message_id)
        if row is None:
            raise NotFound(f"flag {message_id}")
        return _flag(sql, row)


async def review(
    db: Database, flagged_message: Flag, reviewer_id: int, note: str, at: datetime
) -> None:
    """Mark a flagged message reviewed with ``note`` (audited ``flag.reviewed``). ``Conflict``
    when it was reviewed already (by anyone: the first review stands)."""
    async with db.write() as sql:
        done = await sql.execute(
            "INSERT INTO flag_reviews (message_id, conversation_id, reviewed_by, reviewed_at,"
            " note) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
            flagged_message.id,
            flagged_message.conversation_id,
            reviewer_id,
            at,
            note,
        )
        if not done:
            raise Conflict("flag_reviews")
        await audit_trail.record(
            sql,
            at=at,
            actor_id=reviewer_id,
            action="flag.reviewed",
            object_type="message",
            object_id=flagged_message.id,
            prison_id=flagged_message.prison_id,
            before={"reviewed": False},
            after={
                "reviewed": True,
                "note": note,
                "categories": flagged_message.categories,
                "conversation_id": flagged_message.conversation_id,
                "seq": flagged_message.seq,
            },
        )
