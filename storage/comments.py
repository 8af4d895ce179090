"""Comments on announcements: posted by verified relatives, shown to others once approved.

Written once over ``store`` (``storage/sql.py``). A comment is ``pending`` when posted
(audited ``comment.posted``), then ``approved`` or ``rejected`` once, by a moderator
(audited ``comment.approved`` / ``comment.rejected`` with before and after, in the same
transaction). Deciding a comment already decided is ``WrongState``: two moderators at once
are serialised by the row lock and the second is told. Who may post, read and moderate is
the policy's (``server/policy.py``); these functions take the scope it gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import msgspec

from storage import audit_trail
from storage.errors import NotFound
from storage.sql import Database, Row, Sql, for_update, ids_in

CommentState = Literal["pending", "approved", "rejected"]
Decision = Literal["approved", "rejected"]


class Comment(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    announcement_id: int
    announcement_title: str
    prison_id: int | None  # the announcement's (None: bureau-wide)
    author_id: int
    author_name: str
    body: str
    state: CommentState
    created_at: datetime
    decided_at: datetime | None


class WrongState(Exception):
    def __init__(self, state: str) -> None:
        super().__init__(f"this comment is {state} already")
        self.state = state


_SELECT = """
SELECT k.id, k.announcement_id, a.title, a.prison_id, k.author_id, u.name AS author_name,
       k.body, k.state, k.created_at, k.decided_at
FROM announcement_comments k
JOIN announcements a ON a.id = k.announcement_id
JOIN users u ON u.id = k.author_id
"""


def _comment(sql: Sql, row: Row) -> Comment:
    return Comment(
        id=row["id"],
        announcement_id=row["announcement_id"],
        announcement_title=row["title"],
        prison_id=row["prison_id"],
        author_id=row["author_id"],
        author_name=row["author_name"],
        body=row["body"],
        state=row["state"],
        created_at=sql.when(row["created_at"]),
        decided_at=None if row["decided_at"] is None else sql.when(row["decided_at"]),
    )


async def announcement_prison(db: Database, announcement_id: int) -> int | None:
    """The announcement's prison (``None``: bureau-wide); ``NotFound`` if there is none."""
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT prison_id FROM announcements WHERE id = $1", announcement_id
        )
    if row is None:
        raise NotFound(f"announcement {announcement_id}")
    prison: int | None = row["prison_id"]
    return prison


async def post(
    db: Database, announcement_id: int, author_id: int, body: str, now: datetime
) -> Comment:
    """A pending comment. ``NotFound`` if there is no such announcement."""
    async with db.write() as sql:
        prison = await sql.fetchrow(
            "SELECT prison_id FROM announcements WHERE id = $1", announcement_id
        )
        if prison is None:
            raise NotFound(f"announcement {announcement_id}")
        comment_id = await sql.fetchval(
            "INSERT INTO announcement_comments (announcement_id, author_id, body, state,"
            " created_at) VALUES ($1, $2, $3, 'pending', $4) RETURNING id",
            announcement_id,
            author_id,
            body,
            now,
        )
        await audit_trail.record(
            sql,
            at=now,
            actor_id=author_id,
            action="comment.posted",
            object_type="comment",
            object_id=comment_id,
            prison_id=prison["prison_id"],
            after={"announcement_id": announcement_id, "state": "pending"},
        )
        row = await sql.fetchrow(_SELECT + " WHERE k.id = $1", comment_id)
        assert row is not None
        return _comment(sql, row)


async def comment(db: Database, comment_id: int) -> Comment:
    async with db.read() as sql:
        row = await sql.fetchrow(_SELECT + " WHERE k.id = $1", comment_id)
        if row is None:
            raise NotFound(f"comment {comment_id}")
        return _comment(sql, row)


async def of_announcement(
    db: Database, announcement_id: int, *, viewer_id: int | None, everything: bool, limit: int = 200
) -> list[Comment]:
    """The announcement's comments, oldest first: the approved ones, the viewer's own in any
    state, and (``everything``: a moderator) all of them."""
    where = "k.announcement_id = $1"
    args: list[object] = [announcement_id]
    if not everything:
        args.append(viewer_id or 0)
        where += " AND (k.state = 'approved' OR k.author_id = $2)"
    args.append(max(1, min(limit, 500)))
    async with db.read() as sql:
        rows = await sql.fetch(_SELECT + f" WHERE {where} ORDER BY k.id LIMIT ${len(args)}", *args)
        return [_comment(sql, r) for r in rows]


async def moderation_queue(
    db: Database,
    prison_ids: Sequence[int] | None,
    state: CommentState = "pending",
    *,
    before: int | None = None,
    limit: int = 50,
) -> list[Comment]:
    """Comments in ``state`` of the prisons' announcements (``None``: every announcement,
    bureau-wide ones too), newest first, paged by id."""
    where = ["k.state = $1"]
    args: list[object] = [state]
    if prison_ids is not None:
        where.append(f"a.prison_id IN {ids_in(prison_ids)}")
    if before is not None:
        args.append(before)
        where.append(f"k.id < ${len(args)}")
    args.append(max(1, min(limit, 200)))
    async with db.read() as sql:
        rows = await sql.fetch(
            _SELECT + f" WHERE {' AND '.join(where)} ORDER BY k.id DESC LIMIT ${len(args)}",
            *args,
        )
        return [_comment(sql, r) for r in rows]


async def decide(
    db: Database, comment_id: int, decision: Decision, by: int, now: datetime
) -> Comment:
    """Approve or reject a pending comment, audited. ``NotFound``; ``WrongState`` if it was
    decided already."""
    async with db.write() as sql:
        row = await sql.fetchrow(
            "SELECT k.state, a.prison_id FROM announcement_comments k"
            " JOIN announcements a ON a.id = k.announcement_id WHERE k.id = $1"
            + (" FOR UPDATE OF k" if db.dialect == "postgres" else for_update(db)),
            comment_id,
        )
        if row is None:
            raise NotFound(f"comment {comment_id}")
        if row["state"] != "pending":
            raise WrongState(row["state"])
        await sql.execute(
            "UPDATE announcement_comments SET state = $2, decided_by = $3, decided_at = $4"
            " WHERE id = $1",
            comment_id,
            decision,
            by,
            now,
        )
        await audit_trail.record(
            sql,
            at=now,
            actor_id=by,
            action=f"comment.{decision}",
            object_type="comment",
            object_id=comment_id,
            prison_id=row["prison_id"],
            before={"state": "pending"},
            after={"state": decision},
        )
        got = await sql.fetchrow(_SELECT + " WHERE k.id = $1", comment_id)
        assert got is not None
        return _comment(sql, got)


async def counts_between(sql: Sql, lo: datetime, hi: datetime) -> tuple[int, int]:
    """Comments posted in ``[lo, hi)``, and how many of them are approved now."""
    row = await sql.fetchrow(
        "SELECT count(*) AS n, COALESCE(SUM(CASE WHEN state = 'approved' THEN 1 ELSE 0 END), 0)"
        " AS approved FROM announcement_comments WHERE created_at >= $1 AND created_at < $2",
        lo,
        hi,
    )
    assert row is not None
    return int(row["n"]), int(row["approved"])
