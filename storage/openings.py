"""Who opened a conversation: the supervisors' openings, as the family reads them.

Nothing new is stored: every opening a supervisor makes (socket ``watch``, REST history, a
transcript) is already an ``audit_entries`` row (``audit_trail.opened``, action
``conversation.opened``), written before anything is shown, and the schema refuses to change
or delete audit entries. This module only reads those rows for one conversation, with the
supervisor's name and public title (``users.profile``), newest first and paged by id.
Migration 0024 indexes them by conversation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from storage.audit_trail import OPENED
from storage.profiles import profile_from
from storage.sql import Database, clamp_limit

Via = Literal["watch", "history"]


class Opener(msgspec.Struct, frozen=True):
    name: str
    title: str  # the supervisor's public title ("" when its profile names none)


class Opening(msgspec.Struct, frozen=True):
    id: int  # the audit entry's: pass as ``before`` for the next, older page
    who: Opener
    at: datetime
    via: Via


_SELECT = (
    "SELECT a.id, a.at, a.after, u.name, u.profile FROM audit_entries a"
    " JOIN users u ON u.id = a.actor_id"
    " WHERE a.action = $1 AND a.object_type = 'conversation'"
)


async def openings(
    db: Database, conv_id: int, *, before: int | None = None, limit: int = 100
) -> list[Opening]:
    """The openings of ``conv_id``, newest first, at most ``limit``, older than ``before``."""
    return await _read(
        db,
        _SELECT + " AND a.object_id = $2 AND (CAST($3 AS bigint) IS NULL OR a.id < $3)"
        " ORDER BY a.id DESC LIMIT $4",
        conv_id,
        before,
        clamp_limit(limit),
    )


async def opening(db: Database, entry_id: int) -> Opening | None:
    """One opening by its audit entry's id (``None``: that entry is no opening)."""
    found = await _read(db, _SELECT + " AND a.id = $2", entry_id)
    return found[0] if found else None


async def _read(db: Database, query: str, *args: object) -> list[Opening]:
    async with db.read() as sql:
        rows = await sql.fetch(query, OPENED, *args)
        found = []
        for row in rows:
            after = sql.unjson(row["after"]) or {}
            via: Via = "watch" if after.get("via") == "watch" else "history"
            title = profile_from(sql.unjson(row["profile"])).title
            found.append(Opening(row["id"], Opener(row["name"], title), sql.when(row["at"]), via))
        return found
