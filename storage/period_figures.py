"""Figures for a whole period, per prison: totals, ratings and each officer's response figures.

Written once over ``store``, identical on both stores, with the definitions of
``storage/figures.py`` (a cycle belongs to the period its wait started in; median, p90 and
"within 5 minutes" as there). Over ``[since, until)`` (UTC instants: the caller's local days):

- ``totals``: ``conversations`` with a cycle started, ``messages`` (notes excluded),
  ``cycles``, ``answered`` by now, ``median_s`` / ``p90_s`` / ``within_5_min`` over all of
  them (not an average of daily medians), ``late`` = cycles answered after the prison's
  response target or still unanswered past it, ``resolved`` = cycles resolved in the period.
- ``ratings``: the cycles of the period that were rated: ``count``, ``average`` (``None``
  without any) and ``distribution`` (how many gave 1, 2, 3, 4, 5 stars: five numbers).
- ``officers``: each officer of the prison (also one who answered nothing, so a desk sees who
  did not): ``answered`` = cycles whose *first* answer was its text, their response figures,
  ``messages`` = its texts in the period, ``resolved`` = cycles it resolved in the period,
  ``rated`` and ``rating_average`` over the rated cycles it resolved.
A system message (a fact card, the away reply) is no answer: only officers' texts count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import msgspec

from storage.figures import PrisonName, Wait, answered, median, p90, within_share
from storage.sql import Database, ids_in


class Ratings(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    average: float | None
    distribution: list[int]  # 1 to 5 stars


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    conversations: int
    messages: int
    cycles: int
    answered: int
    median_s: float | None
    p90_s: float | None
    within_5_min: float | None
    late: int
    resolved: int
    target_s: int  # the prison's response target


class OfficerFigures(msgspec.Struct, frozen=True, kw_only=True):
    officer_id: int
    name: str
    answered: int
    median_s: float | None
    p90_s: float | None
    within_5_min: float | None
    messages: int
    resolved: int
    rated: int
    rating_average: float | None


class PeriodFigures(msgspec.Struct, frozen=True, kw_only=True):
    prison_id: int
    code: str
    name: str
    totals: Totals
    ratings: Ratings
    officers: list[OfficerFigures]


def ratings_of(stars: Sequence[int]) -> Ratings:
    """Count, average and 1-to-5 distribution of ``stars``."""
    distribution = [0] * 5
    for s in stars:
        distribution[s - 1] += 1
    average = round(sum(stars) / len(stars), 2) if stars else None
    return Ratings(count=len(stars), average=average, distribution=distribution)


def late_count(waits: Sequence[Wait], target_s: float, now: datetime) -> int:
    """Cycles answered after ``target_s``, or unanswered by now and older than it."""
    late = 0
    for started, replied in waits:
        end = replied if replied is not None and replied <= now else now
        if (end - started).total_seconds() > target_s:
            late += 1
    return late


async def period_figures(
    db: Database, named: Sequence[PrisonName], since: datetime, until: datetime, now: datetime
) -> list[PeriodFigures]:
    ids = [p.id for p in named]
    if not ids:
        return []
    scope = ids_in(ids)
    async with db.read() as sql:
        targets = {
            r["id"]: int(r["response_target_s"])
            for r in await sql.fetch(
                f"SELECT id, response_target_s FROM prisons WHERE id IN {scope}"
            )
        }
        cycles = await sql.fetch(
            "SELECT cc.conversation_id, cc.prison_id, cc.wait_started_at, cc.first_reply_at,"
            " cc.rating, cc.resolved_by,"
            " (SELECT m.sender_id FROM messages m WHERE m.conversation_id = cc.conversation_id"
            "  AND m.created_at = cc.first_reply_at AND m.kind = 'text'"
            "  AND m.sender_role = 'officer' ORDER BY m.seq LIMIT 1) AS first_by"
            f" FROM conversation_cycles cc WHERE cc.prison_id IN {scope}"
            " AND cc.wait_started_at >= $1 AND cc.wait_started_at < $2",
            since,
            until,
        )
        resolved = await sql.fetch(
            "SELECT prison_id, resolved_by, rating FROM conversation_cycles"
            f" WHERE prison_id IN {scope} AND resolved_at >= $1 AND resolved_at < $2",
            since,
            until,
        )
        sent = await sql.fetch(
            "SELECT c.prison_id, m.sender_id, m.sender_role, count(*) AS n FROM messages m"
            " JOIN conversations c ON c.id = m.conversation_id"
            f" WHERE c.prison_id IN {scope} AND m.created_at >= $1 AND m.created_at < $2"
            " AND m.kind <> 'note' GROUP BY c.prison_id, m.sender_id, m.sender_role",
            since,
            until,
        )
        staff = await sql.fetch(
            "SELECT p.prison_id, u.id, u.name FROM users u JOIN user_prisons p ON p.user_id = u.id"
            f" WHERE u.role = 'officer' AND p.prison_id IN {scope} ORDER BY u.name, u.id"
        )
        waits: dict[int, list[Wait]] = defaultdict(list)
        by_officer: dict[tuple[int, int], list[Wait]] = defaultdict(list)
        convs: dict[int, set[int]] = defaultdict(set)
        stars: dict[int, list[int]] = defaultdict(list)
        for r in cycles:
            wait: Wait = (
                sql.when(r["wait_started_at"]),
                None if r["first_reply_at"] is None else sql.when(r["first_reply_at"]),
            )
            waits[r["prison_id"]].append(wait)
            convs[r["prison_id"]].add(r["conversation_id"])
            if r["first_by"] is not None:
                by_officer[r["prison_id"], int(r["first_by"])].append(wait)
            if r["rating"] is not None:
                stars[r["prison_id"]].append(int(r["rating"]))
    solved: dict[int, int] = defaultdict(int)
    solved_by: dict[tuple[int, int], int] = defaultdict(int)
    rated_by: dict[tuple[int, int], list[int]] = defaultdict(list)
    for r in resolved:
        solved[r["prison_id"]] += 1
        if r["resolved_by"] is not None:
            key = (r["prison_id"], int(r["resolved_by"]))
            solved_by[key] += 1
            if r["rating"] is not None:
                rated_by[key].append(int(r["rating"]))
    messages: dict[int, int] = defaultdict(int)
    texts_by: dict[tuple[int, int], int] = defaultdict(int)
    for r in sent:
        messages[r["prison_id"]] += int(r["n"])
        if r["sender_role"] == "officer":
            texts_by[r["prison_id"], int(r["sender_id"])] += int(r["n"])

    out = []
    for p in named:
        all_waits = waits[p.id]
        seconds = answered(all_waits, now)
        officers = []
        for s in staff:
            if s["prison_id"] != p.id:
                continue
            key = (p.id, int(s["id"]))
            mine = by_officer[key]
            own_seconds = answered(mine, now)
            own_stars = rated_by[key]
            officers.append(
                OfficerFigures(
                    officer_id=int(s["id"]),
                    name=s["name"],
                    answered=len(own_seconds),
                    median_s=median(own_seconds),
                    p90_s=p90(own_seconds),
                    within_5_min=within_share(mine, now) if mine else None,
                    messages=texts_by[key],
                    resolved=solved_by[key],
                    rated=len(own_stars),
                    rating_average=ratings_of(own_stars).average,
                )
            )
        target = targets.get(p.id, 300)
        out.append(
            PeriodFigures(
                prison_id=p.id,
                code=p.code,
                name=p.name,
                totals=Totals(
                    conversations=len(convs[p.id]),
                    messages=messages[p.id],
                    cycles=len(all_waits),
                    answered=len(seconds),
                    median_s=median(seconds),
                    p90_s=p90(seconds),
                    within_5_min=within_share(all_waits, now),
                    late=late_count(all_waits, target, now),
                    resolved=solved[p.id],
                    target_s=target,
                ),
                ratings=ratings_of(stars[p.id]),
                officers=officers,
            )
        )
    return out
