"""Search: the messages whose text contains a query, newest first, paged by message id.

A match is a substring match, case-insensitive for Latin text, from two characters (a
Chinese word is usually two: 身体 finds 他最近身体怎么样). Each database answers through its
own index (migration 0019), which is why this module has one dialect branch:

- PostgreSQL: a GIN index over ``kinline_bigrams(body)`` (the two-character substrings
  of ``lower(body)``); the rows whose bigrams contain all of the query's are rechecked for
  the exact substring with ``strpos``. pg_trgm would miss two-character queries (no trigram
  in them); the migration says more, the README has the measurements.

  Newest first is the hard part: an index of words cannot hand rows out by id. So the search
  first counts, through the index, up to ``DENSE`` candidates. Fewer (a rare term): the
  candidates are fetched by the index and sorted, a few milliseconds. That many (a term in
  every other message): the newest messages are walked backwards by id with only the cheap
  ``strpos`` test, and a page fills after a few hundred rows. The choice is made from the
  count, not from the planner's estimate, which for several bigrams of one word multiplies
  frequencies that are not independent and was off by a factor of 60 on a million rows.
- SQLite: an FTS5 table with the trigram tokenizer, kept in sync by triggers; a query of
  three characters or more is a quoted FTS5 phrase (a substring, case-folded), a
  two-character one a ``LIKE`` over the messages (SQLite's ``LIKE`` folds ASCII only).

Only text and notes are searched (system lines are the service's own), notes only when the
scope says so, never a purged message (retention). Pages are by message id, descending:
``before`` is the id of the last hit of the previous page, so a page boundary never moves
when new messages arrive. Who may search what is the policy's (``server.policy.SearchScope``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from domain.records import MessageKind, Role
from storage import audit_trail
from storage.sql import Database, Row, Sql, clamp_limit, ids_in

SEARCHED = "messages.searched"

MIN_QUERY = 2  # characters: a Chinese word
DENSE = 2000  # index candidates from which a term counts as found everywhere (PostgreSQL)
MAX_QUERY = 100
SNIPPET_BEFORE = 24  # characters of context around the first match
SNIPPET_AFTER = 60


class Hit(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    conversation_id: int
    seq: int
    prison_id: int
    inmate_id: int
    inmate_name: str
    inmate_number: str
    relative_id: int
    relative_name: str
    sender_id: int
    sender_role: Role
    sender_name: str
    kind: MessageKind
    body: str
    created_at: datetime


class Where(msgspec.Struct, frozen=True, kw_only=True):
    """Which conversations to search; ``None`` fields do not filter (see the policy)."""

    prison_ids: tuple[int, ...] | None = None
    relative_id: int | None = None
    inmate_ids: tuple[int, ...] | None = None
    include_notes: bool = False


_SELECT = """
SELECT m.id, m.conversation_id, m.seq, c.prison_id, c.inmate_id, i.name AS inmate_name,
       i.number AS inmate_number, c.relative_id, r.name AS relative_name, m.sender_id,
       m.sender_role, u.name AS sender_name, m.kind, m.body, m.created_at
"""
_JOINS = """
JOIN conversations c ON c.id = m.conversation_id
JOIN inmates i ON i.id = c.inmate_id
JOIN users r ON r.id = c.relative_id
JOIN users u ON u.id = m.sender_id
"""


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _fts_phrase(text: str) -> str:
    """``text`` as one FTS5 phrase: with the trigram tokenizer, a substring."""
    return '"' + text.replace('"', '""') + '"'


_CANDIDATE = "kinline_bigrams(m.body) @> kinline_bigrams({mark})"
_SUBSTRING = "strpos(lower(m.body), lower({mark})) > 0"


def probe_sql(text: str, before: int | None) -> tuple[str, list[Any]]:
    """PostgreSQL: how many index candidates ``text`` has (up to ``DENSE``)."""
    args: list[Any] = [text]
    older = ""
    if before is not None:
        args.append(before)
        older = " AND m.id < $2"
    return (
        "SELECT count(*) FROM (SELECT 1 FROM messages m WHERE "
        + _CANDIDATE.format(mark="$1")
        + older
        + f" LIMIT {DENSE}) AS candidates",
        args,
    )


def _matching(
    db: Database, text: str, args: list[Any], *, dense: bool = False
) -> tuple[str, str]:
    """The FROM clause and the match condition for ``text``, for this dialect (``dense``:
    PostgreSQL's walk by id, without the index)."""
    args.append(text)
    mark = f"${len(args)}"
    if db.dialect == "postgres":
        substring = _SUBSTRING.format(mark=mark)
        if dense:
            return " FROM messages m", substring
        return " FROM messages m", _CANDIDATE.format(mark=mark) + " AND " + substring
    if len(text) >= 3:
        args[-1] = _fts_phrase(text)
        return (
            " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid",
            f"messages_fts MATCH {mark}",
        )
    args[-1] = _like_pattern(text)
    return " FROM messages m", f"m.body LIKE {mark} ESCAPE '\\'"


def _hit(sql: Sql, row: Row) -> Hit:
    return Hit(
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        prison_id=row["prison_id"],
        inmate_id=row["inmate_id"],
        inmate_name=row["inmate_name"],
        inmate_number=row["inmate_number"],
        relative_id=row["relative_id"],
        relative_name=row["relative_name"],
        sender_id=row["sender_id"],
        sender_role=row["sender_role"],
        sender_name=row["sender_name"],
        kind=row["kind"],
        body=row["body"],
        created_at=sql.when(row["created_at"]),
    )


def search_sql(
    db: Database, text: str, where: Where, before: int | None, limit: int, *, dense: bool = False
) -> tuple[str, list[Any]]:
    """The statement and its arguments (the benchmark explains this same statement)."""
    args: list[Any] = []
    source, match = _matching(db, text, args, dense=dense)
    conditions = [match, "m.purged_at IS NULL"]
    conditions.append("m.kind IN ('text', 'note')" if where.include_notes else "m.kind = 'text'")
    if where.prison_ids is not None:
        conditions.append(f"c.prison_id IN {ids_in(where.prison_ids)}")
    if where.relative_id is not None:
        args.append(where.relative_id)
        conditions.append(f"c.relative_id = ${len(args)}")
    if where.inmate_ids is not None:
        conditions.append(f"c.inmate_id IN {ids_in(where.inmate_ids)}")
    if before is not None:
        args.append(before)
        conditions.append(f"m.id < ${len(args)}")
    args.append(limit)
    statement = (
        _SELECT
        + source
        + _JOINS
        + " WHERE "
        + " AND ".join(conditions)
        + f" ORDER BY m.id DESC LIMIT ${len(args)}"
    )
    return statement, args


async def search(
    db: Database, text: str, where: Where, *, before: int | None = None, limit: int = 20
) -> tuple[list[Hit], int | None]:
    """The newest hits of ``text`` (already checked: ``MIN_QUERY``..``MAX_QUERY`` characters)
    in ``where``, older than message ``before``; and the ``before`` of the next page (None
    when this page is the last)."""
    size = clamp_limit(limit)
    async with db.read() as sql:
        dense = False
        if db.dialect == "postgres":
            probe, probe_args = probe_sql(text, before)
            dense = await sql.fetchval(probe, *probe_args) >= DENSE
        statement, args = search_sql(db, text, where, before, size + 1, dense=dense)
        rows = await sql.fetch(statement, *args)
        hits = [_hit(sql, row) for row in rows[:size]]
    return hits, (hits[-1].id if len(rows) > size else None)


def snippet(body: str, text: str) -> str:
    """A short piece of ``body`` around the first match of ``text``, as plain text (the
    caller renders it as text, never as markup), with an ellipsis where it was cut."""
    at = body.lower().find(text.lower())
    at = max(at, 0)
    start = max(0, at - SNIPPET_BEFORE)
    end = min(len(body), at + len(text) + SNIPPET_AFTER)
    return ("…" if start > 0 else "") + body[start:end] + ("…" if end < len(body) else "")


def conversations_of(hits: Sequence[Hit]) -> dict[int, list[int]]:
    """Per prison, the conversations the hits are in (what an audited search records)."""
    found: dict[int, list[int]] = {}
    for hit in hits:
        convs = found.setdefault(hit.prison_id, [])
        if hit.conversation_id not in convs:
            convs.append(hit.conversation_id)
    return found


async def audit_searched(
    db: Database,
    actor_id: int,
    text: str,
    prison_ids: tuple[int, ...] | None,
    hits: Sequence[Hit],
    at: datetime,
    before: int | None = None,
) -> None:
    """Record a search (what was asked, over which prisons, in which conversations it found
    something), one entry per prison searched so each prison's trail shows it; a search of
    every prison (the admin's) is one bureau entry. One transaction. Raises
    ``StoreUnavailable`` when it cannot be recorded: the caller then shows nothing."""
    found = conversations_of(hits)
    async with db.write() as sql:
        for prison_id in prison_ids if prison_ids is not None else (None,):
            convs = (
                found.get(prison_id, [])
                if prison_id is not None
                else [c for convs in found.values() for c in convs]
            )
            await audit_trail.record(
                sql,
                at=at,
                actor_id=actor_id,
                action=SEARCHED,
                object_type="messages",
                object_id=None,
                prison_id=prison_id,
                after={"q": text, "before": before, "conversations": convs},
            )
