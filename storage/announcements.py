"""Announcements: bureau-wide (no prison) or for one prison; public, newest first.

Written once over ``store`` (``storage/sql.py``). Posting stores the announcement and its
audit entry (``announcement.posted``) in one transaction; the caller fans it out live
(``server/api/announcements.py``). A prison's list includes the bureau-wide ones. Nothing
about the author is public: the records carry the author's id for the audit trail only.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from storage import audit_trail
from storage.errors import NotFound
from storage.sql import Database, Row, Sql


class Announcement(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    prison_id: int | None  # None: bureau-wide
    author_id: int
    title: str
    body: str
    open_day: date | None
    created_at: datetime


class NewAnnouncement(msgspec.Struct, frozen=True, kw_only=True):
    author_id: int
    title: str
    body: str
    prison_id: int | None = None
    open_day: date | None = None


_SELECT = "SELECT id, prison_id, author_id, title, body, open_day, created_at FROM announcements"


def _announcement(sql: Sql, row: Row) -> Announcement:
    return Announcement(
        id=row["id"],
        prison_id=row["prison_id"],
        author_id=row["author_id"],
        title=row["title"],
        body=row["body"],
        open_day=None if row["open_day"] is None else sql.day(row["open_day"]),
        created_at=sql.when(row["created_at"]),
    )


async def post(db: Database, new: NewAnnouncement, *, now: datetime) -> Announcement:
    """Store an announcement and its audit entry. ``NotFound`` if ``prison_id`` names no
    prison. Whether the author may post it is the policy's business."""
    async with db.write() as sql:
        if new.prison_id is not None and not await sql.fetchval(
            "SELECT count(*) FROM prisons WHERE id = $1", new.prison_id
        ):
            raise NotFound(f"prison {new.prison_id}")
        row = await sql.fetchrow(
            "INSERT INTO announcements (prison_id, author_id, title, body, open_day, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)"
            " RETURNING id, prison_id, author_id, title, body, open_day, created_at",
            new.prison_id,
            new.author_id,
            new.title,
            new.body,
            new.open_day,
            now,
        )
        assert row is not None
        posted = _announcement(sql, row)
        await audit_trail.record(
            sql,
            at=now,
            actor_id=new.author_id,
            action="announcement.posted",
            object_type="announcement",
            object_id=posted.id,
            prison_id=posted.prison_id,
            after={
                "title": posted.title,
                "prison_id": posted.prison_id,
                "open_day": None if posted.open_day is None else posted.open_day.isoformat(),
            },
        )
    return posted


async def announcements(
    db: Database,
    *,
    prison_id: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[Announcement]:
    """Newest first. With ``prison_id``: that prison's and the bureau-wide ones; without:
    every announcement. ``before`` pages by id."""
    where = ["1 = 1"]
    args: list[object] = []
    if prison_id is not None:
        args.append(prison_id)
        where.append(f"(prison_id = ${len(args)} OR prison_id IS NULL)")
    if before is not None:
        args.append(before)
        where.append(f"id < ${len(args)}")
    args.append(max(1, min(limit, 200)))
    async with db.read() as sql:
        rows = await sql.fetch(
            f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ${len(args)}", *args
        )
        return [_announcement(sql, r) for r in rows]
