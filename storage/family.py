"""A relative's verified family links, as its permissions need them."""

from __future__ import annotations

from collections.abc import Sequence

from storage.sql import Database, any_of


async def verified(db: Database, relative_id: int) -> dict[int, int]:
    """The inmates the relative is verified for, each with its prison (one query)."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT l.inmate_id, i.prison_id FROM family_links l"
            " JOIN inmates i ON i.id = l.inmate_id"
            " WHERE l.relative_id = $1 AND l.state = 'verified'",
            relative_id,
        )
    return {row["inmate_id"]: row["prison_id"] for row in rows}


Access = tuple[dict[int, int], dict[int, int]]  # inmate -> prison, shared thread -> joined seq


async def access(db: Database, relative_id: int) -> Access:
    """In one query: the inmates the relative is verified for, each with its prison, and the
    shared threads of enabled family cases it is a member of, each with its join seq (the
    thread's first relative is not a member: the thread is its own)."""
    return (await access_of(db, [relative_id])).get(relative_id, ({}, {}))


async def access_of(db: Database, relative_ids: Sequence[int]) -> dict[int, Access]:
    """:func:`access` for many relatives in one read (a relative with none is left out)."""
    matches, args = any_of(db, "l.relative_id", relative_ids)
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT l.relative_id, l.inmate_id, i.prison_id, m.conversation_id, m.joined_seq"
            " FROM family_links l JOIN inmates i ON i.id = l.inmate_id"
            " LEFT JOIN family_cases f ON f.inmate_id = l.inmate_id AND f.enabled"
            " LEFT JOIN family_members m ON m.conversation_id = f.conversation_id"
            f" AND m.relative_id = l.relative_id WHERE {matches} AND l.state = 'verified'",
            *args,
        )
    found: dict[int, Access] = {}
    for row in rows:
        inmates, joins = found.setdefault(row["relative_id"], ({}, {}))
        inmates[row["inmate_id"]] = row["prison_id"]
        if row["conversation_id"] is not None:
            joins[int(row["conversation_id"])] = int(row["joined_seq"])
    return found
