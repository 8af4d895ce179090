"""The thread list, paged by a cursor and filtered (issue 18): what ``GET /conversations``
serves, in the desk's two orders (``storage.desk``):

- the queue (staff): waiting, then active, then new, then resolved; each oldest wait first,
  threads that never waited last; then by id;
- a relative's threads: most recently active first, then by id.

Paging is by keyset, not offset: the cursor is the sort key of a page's last thread, so a
thread that moves while someone pages (a claim, a new message) is never shown twice on the
same page boundary, and a page costs the same however deep it is. The cursor is opaque to
clients (base64url of the key, tagged with its order; one of the other order, or anything
else, is ``BadCursor``).

Filters: state(s), inmate number (prefix, case-insensitive), relative name (substring,
case-insensitive; SQLite folds ASCII only), and last activity (``updated_at``) between two
days, both inclusive, in UTC.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec

from domain.records import ConversationState
from storage.desk import _THREAD, Thread, _thread
from storage.sql import Database, clamp_limit, ids_in

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RANK = "(CASE c.state WHEN 'waiting' THEN 0 WHEN 'active' THEN 1 WHEN 'new' THEN 2 ELSE 3 END)"
_QUEUE_ORDER = f" ORDER BY {_RANK}, c.wait_started_at IS NULL, c.wait_started_at, c.id"
_RECENT_ORDER = " ORDER BY c.updated_at DESC, c.id DESC"
_RANKS: dict[str, int] = {"waiting": 0, "active": 1, "new": 2, "resolved": 3}


class BadCursor(ValueError):
    """A cursor this list did not hand out (or one of the other order)."""


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    """Which threads; ``None`` fields do not filter. The first three are the policy's scope."""

    relative_id: int | None = None
    prison_ids: Sequence[int] | None = None
    inmate_ids: Sequence[int] | None = None
    states: Sequence[ConversationState] | None = None
    inmate_number: str | None = None  # prefix
    relative_name: str | None = None  # substring
    since: date | None = None  # last activity on or after this day (UTC)
    until: date | None = None  # last activity on or before this day (UTC)


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _moment(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")


def _decode(cursor: str, tag: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key: list[Any] = msgspec.json.decode(raw, type=list)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise BadCursor("not a cursor of this list") from None

    def number(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62

    shape_ok = len(key) == (3 if tag == "r" else 4) and key[0] == tag
    if not shape_ok or not all(number(v) for v in key[1:] if not (tag == "q" and v is None)):
        raise BadCursor("not a cursor of this list")
    if tag == "q" and (key[1] is None or key[3] is None):
        raise BadCursor("not a cursor of this list")
    return key


def _cursor(thread: Thread, recent: bool) -> str:
    if recent:
        return _encode(["r", _us(thread.updated_at), thread.id])
    wait = thread.wait_started_at
    return _encode(["q", _RANKS[thread.state], None if wait is None else _us(wait), thread.id])


def _like(text: str, *, prefix: bool) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return ("" if prefix else "%") + escaped + "%"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


async def page(
    db: Database, filters: Filters, *, cursor: str | None = None, limit: int = 100
) -> tuple[list[Thread], str | None]:
    """A page of threads after ``cursor`` (the first page without one), and the cursor of the
    next page (None when this is the last). ``BadCursor`` for a cursor it did not give."""
    recent = filters.relative_id is not None
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    like = "ILIKE" if db.dialect == "postgres" else "LIKE"  # SQLite's LIKE folds ASCII case
    if filters.relative_id is not None:  # its own threads and its family cases' (issue 15)
        relative = arg(filters.relative_id)
        where.append(
            f"(c.relative_id = {relative} OR c.id IN (SELECT m.conversation_id"
            " FROM family_members m JOIN family_cases f ON f.conversation_id = m.conversation_id"
            f" AND f.enabled WHERE m.relative_id = {relative}))"
        )
    if filters.prison_ids is not None:
        where.append(f"c.prison_id IN {ids_in(filters.prison_ids)}")
    if filters.inmate_ids is not None:
        where.append(f"c.inmate_id IN {ids_in(filters.inmate_ids)}")
    if filters.states is not None:
        where.append(f"c.state IN ({', '.join(arg(s) for s in filters.states) or 'NULL'})")
    if filters.inmate_number:
        pattern = arg(_like(filters.inmate_number, prefix=True))
        where.append(f"i.number {like} {pattern} ESCAPE '\\'")
    if filters.relative_name:
        pattern = arg(_like(filters.relative_name, prefix=False))
        where.append(f"r.name {like} {pattern} ESCAPE '\\'")
    if filters.since is not None:
        where.append(f"c.updated_at >= {arg(_day_start(filters.since))}")
    if filters.until is not None:
        where.append(f"c.updated_at < {arg(_day_start(filters.until) + timedelta(days=1))}")
    if cursor is not None:
        where.append(_after(_decode(cursor, "r" if recent else "q"), arg))
    size = clamp_limit(limit)
    statement = (
        _THREAD
        + (" WHERE " + " AND ".join(where) if where else "")
        + (_RECENT_ORDER if recent else _QUEUE_ORDER)
        + f" LIMIT {arg(size + 1)}"
    )
    async with db.read() as sql:
        rows = await sql.fetch(statement, *args)
        threads = [_thread(sql, row) for row in rows[:size]]
    following = _cursor(threads[-1], recent) if len(rows) > size else None
    return threads, following


def _after(key: list[Any], arg: Any) -> str:
    """The keyset condition: strictly after ``key`` in the list's order."""
    if key[0] == "r":
        at = arg(_moment(key[1]))
        return f"(c.updated_at < {at} OR (c.updated_at = {at} AND c.id < {arg(key[2])}))"
    _, rank, wait, conv = key
    rank_mark, conv_mark = arg(rank), arg(conv)
    if wait is None:
        later_in_rank = f"c.wait_started_at IS NULL AND c.id > {conv_mark}"
    else:
        at = arg(_moment(wait))
        later_in_rank = (
            f"c.wait_started_at IS NULL OR c.wait_started_at > {at}"
            f" OR (c.wait_started_at = {at} AND c.id > {conv_mark})"
        )
    return f"({_RANK} > {rank_mark} OR ({_RANK} = {rank_mark} AND ({later_in_rank})))"
