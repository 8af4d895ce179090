"""A relative's verified family links, as its permissions need them."""

from __future__ import annotations

from storage.sql import Database


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
