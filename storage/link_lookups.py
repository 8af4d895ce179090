"""Missed inmate numbers: a relative's link requests that named no inmate of the prison.

A request naming a number the prison does not hold is refused at once (it used to wait for an
officer to reject it), which tells the asker that the number does not exist there. So that
this cannot be used to list a prison's inmates, every miss is kept, as an audit entry
(``link.missed``, the relative as actor, the number it typed): the prison's officers and
supervisors see who is fishing, and past a few misses in a day a relative is refused every
request, real number or not, until the day has passed (``server/api/links.py``).
"""

from __future__ import annotations

from datetime import datetime

from storage import audit_trail
from storage.sql import Database

MISSED = "link.missed"


async def record_miss(
    db: Database, relative_id: int, prison_id: int, number: str, now: datetime
) -> None:
    async with db.write() as sql:
        await audit_trail.record(
            sql,
            at=now,
            actor_id=relative_id,
            action=MISSED,
            object_type="prison",
            object_id=prison_id,
            prison_id=prison_id,
            after={"inmate_number": number},
        )


async def misses_since(db: Database, relative_id: int, since: datetime) -> list[datetime]:
    """When the relative missed, at or after ``since``, oldest first."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT at FROM audit_entries WHERE actor_id = $1 AND action = $2 AND at >= $3"
            " ORDER BY at",
            relative_id,
            MISSED,
            since,
        )
        return [sql.when(row["at"]) for row in rows]
