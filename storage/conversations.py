"""Conversations: the thread between one relative and one inmate's prison.

A conversation is made on first use (``open_conversation``) and never deleted; its ``state``,
``cycle`` and ``last_seq`` are moved only by the append's life-cycle trigger (migration 0007)
and by the desk's claims, transfers and resolutions (``storage/desk.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.records import Conversation
from storage import consent
from storage.errors import NotFound
from storage.sql import Database, Row, Sql, any_of, ids_in

_COLUMNS = "id, prison_id, inmate_id, relative_id, state, assigned_officer_id, last_seq, created_at"
_SELECT = f"SELECT {_COLUMNS} FROM conversations"


def _conversation(sql: Sql, row: Row) -> Conversation:
    return Conversation(
        row["id"],
        row["prison_id"],
        row["inmate_id"],
        row["relative_id"],
        row["state"],
        row["assigned_officer_id"],
        row["last_seq"],
        sql.when(row["created_at"]),
    )


async def open_conversation(db: Database, relative_id: int, inmate_id: int) -> Conversation:
    """The thread between this relative and the inmate's prison; created on first use.
    ``NotFound`` if there is no such inmate. A member of an enabled family case gets the
    shared thread (``storage.consent``)."""
    async with db.write() as sql:
        shared = await consent.family_thread(sql, relative_id, inmate_id)
        if shared is not None:
            row = await sql.fetchrow(_SELECT + " WHERE id = $1", shared)
            if row is not None:
                return _conversation(sql, row)
        await sql.execute(
            "INSERT INTO conversations (prison_id, inmate_id, relative_id)"
            " SELECT prison_id, id, $1 FROM inmates WHERE id = $2"
            " ON CONFLICT (relative_id, inmate_id) DO NOTHING",
            relative_id,
            inmate_id,
        )
        row = await sql.fetchrow(
            _SELECT + " WHERE relative_id = $1 AND inmate_id = $2", relative_id, inmate_id
        )
        if row is None:
            raise NotFound(f"inmate {inmate_id}")
        return _conversation(sql, row)


async def conversation(db: Database, conversation_id: int) -> Conversation:
    async with db.read() as sql:
        row = await sql.fetchrow(_SELECT + " WHERE id = $1", conversation_id)
        if row is None:
            raise NotFound(f"conversation {conversation_id}")
        return _conversation(sql, row)


async def conversations_of(db: Database, relative_id: int) -> list[Conversation]:
    async with db.read() as sql:
        rows = await sql.fetch(_SELECT + " WHERE relative_id = $1 ORDER BY id", relative_id)
        return [_conversation(sql, r) for r in rows]


async def family_threads_of(db: Database, relative_id: int) -> list[Conversation]:
    """The shared threads of the enabled family cases this relative is a member of (its own
    threads are ``conversations_of``)."""
    async with db.read() as sql:
        rows = await sql.fetch(
            _SELECT + " WHERE id IN (SELECT m.conversation_id FROM family_members m"
            " JOIN family_cases f ON f.conversation_id = m.conversation_id AND f.enabled"
            " WHERE m.relative_id = $1) ORDER BY id",
            relative_id,
        )
        return [_conversation(sql, r) for r in rows]


async def conversations_by_id(
    db: Database, conversation_ids: Sequence[int]
) -> dict[int, Conversation]:
    """Many :func:`conversation` in one read (those that do not exist are left out)."""
    matches, args = any_of(db, "id", conversation_ids)
    async with db.read() as sql:
        rows = await sql.fetch(_SELECT + f" WHERE {matches}", *args)
        return {r["id"]: _conversation(sql, r) for r in rows}


async def threads_of(db: Database, relative_ids: Sequence[int]) -> dict[int, list[Conversation]]:
    """For many relatives in one read: each one's :func:`conversations_of` followed by its
    :func:`family_threads_of` (a relative with neither is left out)."""
    own, args = any_of(db, "c.relative_id", relative_ids)
    member, _ = any_of(db, "m.relative_id", relative_ids)  # the same parameters again
    columns = ", ".join(f"c.{name.strip()}" for name in _COLUMNS.split(","))
    async with db.read() as sql:
        rows = await sql.fetch(
            f"SELECT c.relative_id AS reader, 0 AS shared, {columns} FROM conversations c"
            f" WHERE {own} UNION ALL SELECT m.relative_id, 1, {columns} FROM family_members m"
            " JOIN family_cases f ON f.conversation_id = m.conversation_id AND f.enabled"
            f" JOIN conversations c ON c.id = m.conversation_id WHERE {member}"
            " ORDER BY reader, shared, id",
            *args,
        )
        found: dict[int, list[Conversation]] = {}
        for r in rows:
            found.setdefault(r["reader"], []).append(_conversation(sql, r))
        return found


async def last_seqs(db: Database, conversation_ids: Sequence[int]) -> dict[int, int]:
    """Each named conversation's last seq (those that do not exist are left out)."""
    if not conversation_ids:
        return {}
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT id, last_seq FROM conversations WHERE id IN " + ids_in(conversation_ids)
        )
    return {r["id"]: r["last_seq"] for r in rows}
