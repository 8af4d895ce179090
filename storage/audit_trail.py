"""The audit trail: appending an entry and reading entries back.

Entries are append-only. This module offers an append and a read and nothing else, and the
schema refuses ``UPDATE`` and ``DELETE`` on ``audit_entries`` with a trigger on both dialects
(storage/migrations/*/0001_initial.sql), so not even a bug or a hand-typed statement through
the application's connection can rewrite history. (A table owner can still ``TRUNCATE`` or
drop triggers on PostgreSQL: that is the database operator's privilege, outside the service;
what it changes that way is still told: every entry is hash-chained as it is inserted,
migration 0014, and ``kinline verify`` recomputes the chain, ``storage/chains.py``.)

Reading is newest first, paged by id (``before_id``): ids only grow, so a page boundary never
moves when new entries arrive while someone pages back in time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

import msgspec

from domain.records import AuditEntry
from storage.sql import Database, Row, Sql, clamp_limit, ids_in

OPENED = "conversation.opened"


class Actor(msgspec.Struct, frozen=True):
    id: int
    name: str
    role: str


class TrailEntry(msgspec.Struct, frozen=True):
    id: int
    at: datetime
    actor: Actor | None  # None: done by the system, not by a person
    action: str
    object_type: str
    object_id: int | None
    prison_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class TrailQuery(msgspec.Struct, frozen=True):
    """Which entries to read; every ``None`` does not filter.

    ``prison_ids`` is the reader's scope (``None``: every entry, entries of no prison
    included; an empty tuple: none). ``since`` is inclusive, ``until`` exclusive.
    ``action`` matches exactly, ``action_prefix`` by its start (``"conversation."``).
    """

    prison_ids: tuple[int, ...] | None = None
    actor_id: int | None = None
    action: str | None = None
    action_prefix: str | None = None
    object_type: str | None = None
    object_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 100


_SELECT = """
SELECT a.id, a.at, a.actor_id, u.name AS actor_name, u.role AS actor_role, a.action,
       a.object_type, a.object_id, a.prison_id, a.before, a.after
FROM audit_entries a LEFT JOIN users u ON u.id = a.actor_id
"""


def _entry(sql: Sql, row: Row) -> TrailEntry:
    actor = (
        Actor(row["actor_id"], row["actor_name"], row["actor_role"])
        if row["actor_id"] is not None
        else None
    )
    return TrailEntry(
        id=row["id"],
        at=sql.when(row["at"]),
        actor=actor,
        action=row["action"],
        object_type=row["object_type"],
        object_id=row["object_id"],
        prison_id=row["prison_id"],
        before=sql.unjson(row["before"]),
        after=sql.unjson(row["after"]),
    )


async def record(
    sql: Sql,
    *,
    at: datetime,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: int | None,
    prison_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> int:
    """Append one entry inside the caller's transaction, so a change and its entry commit
    together or not at all (every area audits its changes this way); its id."""
    entry_id: int = await sql.fetchval(
        "INSERT INTO audit_entries (at, actor_id, action, object_type, object_id, prison_id,"
        " before, after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        at,
        actor_id,
        action,
        object_type,
        object_id,
        prison_id,
        before,
        after,
    )
    return entry_id


async def append(db: Database, **entry: Any) -> int:
    """``record`` in a transaction of its own (an access, not a change: nothing to join)."""
    async with db.write() as sql:
        return await record(sql, **entry)


class Opened(Protocol):
    """What is audited of an opened conversation (a ``Conversation`` or a desk ``Thread``)."""

    @property
    def id(self) -> int: ...
    @property
    def prison_id(self) -> int: ...


async def opened(
    db: Database,
    actor_id: int,
    conversation: Opened,
    via: Literal["watch", "history"],
    at: datetime,
) -> int:
    """Record that ``actor_id`` opened ``conversation`` (a supervisor's look, by socket
    ``watch`` or REST ``history``). Raises ``StoreUnavailable`` when it cannot be recorded:
    the caller must then refuse the look, never allow an unaudited one."""
    return await append(
        db,
        at=at,
        actor_id=actor_id,
        action=OPENED,
        object_type="conversation",
        object_id=conversation.id,
        prison_id=conversation.prison_id,
        after={"via": via},
    )


def _where(query: TrailQuery) -> tuple[str, list[Any]]:
    conditions: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if query.prison_ids is not None:
        conditions.append(f"a.prison_id IN {ids_in(query.prison_ids)}")
    if query.actor_id is not None:
        conditions.append(f"a.actor_id = {arg(query.actor_id)}")
    if query.action is not None:
        conditions.append(f"a.action = {arg(query.action)}")
    if query.action_prefix:
        length = arg(len(query.action_prefix))
        conditions.append(f"substr(a.action, 1, {length}) = {arg(query.action_prefix)}")
    if query.object_type is not None:
        conditions.append(f"a.object_type = {arg(query.object_type)}")
    if query.object_id is not None:
        conditions.append(f"a.object_id = {arg(query.object_id)}")
    if query.since is not None:
        conditions.append(f"a.at >= {arg(query.since)}")
    if query.until is not None:
        conditions.append(f"a.at < {arg(query.until)}")
    if query.before_id is not None:
        conditions.append(f"a.id < {arg(query.before_id)}")
    where = " WHERE " + " AND ".join(conditions) if conditions else ""
    return where + f" ORDER BY a.id DESC LIMIT {arg(clamp_limit(query.limit))}", args


async def entries(db: Database, query: TrailQuery) -> list[TrailEntry]:
    """Entries matching ``query``, newest (highest id) first, at most ``query.limit``."""
    tail, args = _where(query)
    async with db.read() as sql:
        rows = await sql.fetch(_SELECT + tail, *args)
        return [_entry(sql, row) for row in rows]


async def audit_entries(
    db: Database,
    *,
    prison_id: int | None = None,
    actor_id: int | None = None,
    action: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """``entries`` as plain records (the actor as its id), newest first: what an operator's
    tool or a test compares."""
    query = TrailQuery(
        prison_ids=None if prison_id is None else (prison_id,),
        actor_id=actor_id,
        action=action,
        limit=limit,
    )
    return [
        AuditEntry(
            e.id,
            e.at,
            None if e.actor is None else e.actor.id,
            e.action,
            e.object_type,
            e.object_id,
            e.prison_id,
            e.before,
            e.after,
        )
        for e in await entries(db, query)
    ]


async def actors(db: Database, prison_ids: tuple[int, ...] | None) -> list[Actor]:
    """Everyone who has an entry in the trail of these prisons (``None``: every entry), by
    name: the audit page's "who" filter names people, not user ids."""
    where = "" if prison_ids is None else f" AND a.prison_id IN {ids_in(prison_ids)}"
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT DISTINCT u.id, u.name, u.role FROM audit_entries a"
            " JOIN users u ON u.id = a.actor_id WHERE a.actor_id IS NOT NULL"
            + where
            + " ORDER BY u.name, u.id"
        )
        return [Actor(row["id"], row["name"], row["role"]) for row in rows]
