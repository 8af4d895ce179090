"""Figures: response times and volumes per prison per local day, for the bureau, and public.

Written once over ``store`` (``storage/sql.py``), identical on both stores. There are no
SQL date functions here: a local day (``Settings.zone``) is the half-open UTC interval
``[local midnight, next local midnight)``, computed in Python; the functions fetch the rows
of the whole range and put each into its day by those same boundaries (``bisect``), so a
row is in exactly one day and both stores agree to the microsecond. The one exception is the
volume of messages, which can be large: it is counted in SQL, one ``count(*)`` per day over
the same boundaries (still no date function, and served by the ``messages (created_at)``
index of ``0006_figures``).

Definitions (the same words are in the API description, ``server/api/stats.py``):

- A *cycle* is a row of ``conversation_cycles``: a relative's question waiting from
  ``wait_started_at`` until ``first_reply_at`` (the first officer ``text``). A cycle belongs
  to the day its wait started. *Response seconds* = ``first_reply_at - wait_started_at``,
  over the cycles answered by ``now``.
- Median = ``statistics.median``; p90 = nearest rank, ``sorted(v)[ceil(0.9 * n) - 1]``;
  ``None`` when there are no values.
- *Within 5 minutes* (``within_share``): answered within 300 s counts as within; answered
  later, or unanswered more than 300 s after it started, as not within; an unanswered cycle
  that can still make it (300 s old or younger) is left out. ``None`` when no cycle counts.
- Per prison per day: ``conversations`` = distinct conversations with a cycle started that
  day; ``messages`` = messages created that day (``text`` and ``system``; staff ``note`` s
  excluded); ``cycles`` = cycles started that day, ``answered`` those of them answered by
  now; ``resolved`` = cycles resolved that day (whenever they started). Current queue:
  ``waiting`` = conversations in state ``waiting``, ``longest_wait_s`` = the oldest of their
  waits at ``now`` (``None`` when nobody waits).
- "As of the end of a day" means at ``cutoff = min(next local midnight, now)``: what
  happened strictly before the cutoff.
- Bureau per day (all prisons): ``followers`` = relatives with at least one verified link at
  the cutoff (a link counts from its verification until its revocation; see
  ``_verified_spans``); ``relatives`` = relative accounts created before the cutoff,
  ``new_relatives`` = created that day; ``messages``, ``conversations``, ``cycles``,
  ``answered``, ``median_s``, ``p90_s``, ``within_5_min`` as per prison but over all prisons;
  ``complaints_filed`` = complaints created that day; ``complaints_open`` = complaints filed
  before the cutoff whose state at the cutoff is neither ``answered`` nor ``closed``
  (``received``, ``in_review`` and ``escalated`` are open: escalated still waits for the
  bureau's answer); ``complaints_overdue`` = open ones whose deadline is before the cutoff.
  A complaint's state at a moment is that of its last ``complaint_events`` row before it
  (``received`` before the first); one with no events at all has had its current state since
  it was filed.
- Keyword flags per prison (``flags``): per review category, the flagged messages created in
  the range (``flagged``; a message matching two categories counts in both), those of them
  reviewed by now (``reviewed``) and not (``unreviewed``); ``flags_unreviewed`` = the
  prison's flagged messages not reviewed at ``now``, whenever they were sent (the queue).
- ``wechat_followers`` = WeChat users following the Official Account at the cutoff, from each
  follower's first subscription and its last change (following now: since that change;
  unfollowed now: until it), bound to a relative or not.
- ``comments`` = comments on announcements posted that day, ``comments_approved`` = those of
  them approved by now.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any

import msgspec

from domain.keywords import split_flags
from storage import comments
from storage.complaints import SETTLED  # open = not yet answered or closed
from storage.sql import Database, Sql, ids_in

WITHIN_S = 300.0  # "answered within 5 minutes"
PUBLIC_DAYS = 30

Wait = tuple[datetime, datetime | None]  # (wait_started_at, first_reply_at or None)


# pure helpers


def median(values: Sequence[float]) -> float | None:
    """``statistics.median``; ``None`` when there are no values."""
    if not values:
        return None
    return float(statistics.median(values))


def p90(values: Sequence[float]) -> float | None:
    """90th percentile, nearest rank: ``sorted(v)[ceil(0.9 * n) - 1]``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[math.ceil(0.9 * len(ordered)) - 1])


def answered(waits: Iterable[Wait], now: datetime) -> list[float]:
    """First-response seconds of the cycles answered by ``now``."""
    return [
        (replied - started).total_seconds()
        for started, replied in waits
        if replied is not None and replied <= now
    ]


def within_share(waits: Iterable[Wait], now: datetime) -> float | None:
    """Share of cycles answered within 300 s, as of ``now`` (see the module docstring)."""
    within = counted = 0
    for started, replied in waits:
        if replied is not None and replied <= now:
            counted += 1
            if (replied - started).total_seconds() <= WITHIN_S:
                within += 1
        elif (now - started).total_seconds() > WITHIN_S:
            counted += 1
    return within / counted if counted else None


def local_days(first: date, last: date) -> list[date]:
    """Every date from ``first`` to ``last``, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def day_starts(first: date, last: date, zone: tzinfo) -> list[datetime]:
    """The UTC instants of local midnight of each day of ``first..last`` and of the day
    after ``last``: day ``i`` is ``[starts[i], starts[i + 1])``."""
    return [
        datetime.combine(first + timedelta(days=n), time(), zone).astimezone(UTC)
        for n in range((last - first).days + 2)
    ]


def day_index(moment: datetime, starts: Sequence[datetime]) -> int | None:
    """Which day of ``starts`` (``day_starts``) holds ``moment``; ``None`` outside them."""
    i = bisect.bisect_right(starts, moment) - 1
    return i if 0 <= i < len(starts) - 1 else None


class ResponseFigures(msgspec.Struct, frozen=True, kw_only=True):
    cycles: int
    answered: int
    median_s: float | None
    p90_s: float | None
    within_5_min: float | None


def response_figures(waits: Sequence[Wait], now: datetime) -> ResponseFigures:
    seconds = answered(waits, now)
    return ResponseFigures(
        cycles=len(waits),
        answered=len(seconds),
        median_s=median(seconds),
        p90_s=p90(seconds),
        within_5_min=within_share(waits, now),
    )


# public figures (the prisons area calls this for the public prison page)


class PublicFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Response figures of one prison over the last 30 days (the public prison page)."""

    days: int = PUBLIC_DAYS
    cycles: int  # cycles whose wait started in the 30 days before now
    answered: int  # of those, answered (first staff reply) by now
    median_s: float | None  # first-response seconds of the answered ones
    p90_s: float | None
    within_5_min: float | None  # share answered within 300 s (see ``within_share``)


async def public_figures(db: Database, prison_id: int, now: datetime) -> PublicFigures:
    """Cycles of ``prison_id`` whose wait started in the 30 days before ``now``
    (``now - 30 days <= wait_started_at <= now``)."""
    async with db.read() as sql:
        rows = await _cycles(sql, now - timedelta(days=PUBLIC_DAYS), None, (prison_id,))
    waits = [w for _, _, w in rows if w[0] <= now]
    r = response_figures(waits, now)
    return PublicFigures(
        days=PUBLIC_DAYS,
        cycles=r.cycles,
        answered=r.answered,
        median_s=r.median_s,
        p90_s=r.p90_s,
        within_5_min=r.within_5_min,
    )


# per prison per day


class DayFigures(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    conversations: int
    messages: int
    cycles: int
    answered: int
    median_s: float | None
    p90_s: float | None
    within_5_min: float | None
    resolved: int


class FlagFigures(msgspec.Struct, frozen=True, kw_only=True):
    category: str
    flagged: int
    reviewed: int
    unreviewed: int


class PrisonFigures(msgspec.Struct, frozen=True, kw_only=True):
    prison_id: int
    code: str
    name: str
    waiting: int  # now: conversations in state waiting
    longest_wait_s: float | None  # now: the oldest of their waits
    days: list[DayFigures]
    flags: list[FlagFigures] = []  # keyword flags in the range, per category
    flags_unreviewed: int = 0  # now: flagged messages not yet reviewed (the review queue)


@dataclass(frozen=True)
class PrisonName:
    id: int
    code: str
    name: str


async def prisons(db: Database, ids: Sequence[int] | None) -> list[PrisonName]:
    """The prisons named (those that exist), or every prison (``None``), by id."""
    where = "" if ids is None else f" WHERE id IN {ids_in(ids)}"
    async with db.read() as sql:
        rows = await sql.fetch("SELECT id, code, name FROM prisons" + where + " ORDER BY id")
    return [PrisonName(r["id"], r["code"], r["name"]) for r in rows]


async def prison_figures(
    db: Database,
    named: Sequence[PrisonName],
    first: date,
    last: date,
    zone: tzinfo,
    now: datetime,
) -> list[PrisonFigures]:
    """Per prison of ``named``, per local day of ``first..last``, and the queue at ``now``."""
    ids = [p.id for p in named]
    starts = day_starts(first, last, zone)
    async with db.read() as sql:
        cycles = await _cycles(sql, starts[0], starts[-1], ids)
        resolved = await sql.fetch(
            "SELECT prison_id, resolved_at FROM conversation_cycles"
            f" WHERE prison_id IN {ids_in(ids)} AND resolved_at >= $1 AND resolved_at < $2",
            starts[0],
            starts[-1],
        )
        messages = await _message_counts(sql, starts, ids)
        flags = await _flag_counts(sql, starts[0], starts[-1], ids)
        queued = {
            r["prison_id"]: int(r["n"])
            for r in await sql.fetch(
                "SELECT c.prison_id, count(*) AS n FROM messages m"
                " JOIN conversations c ON c.id = m.conversation_id"
                " LEFT JOIN flag_reviews r ON r.message_id = m.id"
                " WHERE m.flags IS NOT NULL AND r.message_id IS NULL"
                f" AND c.prison_id IN {ids_in(ids)} GROUP BY c.prison_id"
            )
        }
        queue = {
            r["prison_id"]: (r["waiting"], r["oldest"])
            for r in await sql.fetch(
                "SELECT prison_id, count(*) AS waiting, min(wait_started_at) AS oldest"
                f" FROM conversations WHERE prison_id IN {ids_in(ids)} AND state = 'waiting'"
                " GROUP BY prison_id"
            )
        }
        oldest = {prison: None if at is None else sql.when(at) for prison, (_, at) in queue.items()}
        resolved_days = [
            (r["prison_id"], day_index(sql.when(r["resolved_at"]), starts)) for r in resolved
        ]

    waits: dict[tuple[int, int], list[Wait]] = defaultdict(list)
    convs: dict[tuple[int, int], set[int]] = defaultdict(set)
    for conv, prison, wait in cycles:
        i = day_index(wait[0], starts)
        if i is not None:
            waits[prison, i].append(wait)
            convs[prison, i].add(conv)
    solved: dict[tuple[int, int], int] = defaultdict(int)
    for prison, i in resolved_days:
        if i is not None:
            solved[prison, i] += 1

    out = []
    for p in named:
        days = []
        for i, day in enumerate(local_days(first, last)):
            r = response_figures(waits[p.id, i], now)
            days.append(
                DayFigures(
                    day=day,
                    conversations=len(convs[p.id, i]),
                    messages=messages[i].get(p.id, 0),
                    cycles=r.cycles,
                    answered=r.answered,
                    median_s=r.median_s,
                    p90_s=r.p90_s,
                    within_5_min=r.within_5_min,
                    resolved=solved[p.id, i],
                )
            )
        since = oldest.get(p.id)
        out.append(
            PrisonFigures(
                prison_id=p.id,
                code=p.code,
                name=p.name,
                waiting=queue.get(p.id, (0, None))[0],
                longest_wait_s=None if since is None else (now - since).total_seconds(),
                days=days,
                flags=flags.get(p.id, []),
                flags_unreviewed=queued.get(p.id, 0),
            )
        )
    return out


async def _flag_counts(
    sql: Sql, lo: datetime, hi: datetime, prison_ids: Sequence[int]
) -> dict[int, list[FlagFigures]]:
    """Per prison: ``FlagFigures`` per category of the flagged messages created in
    ``[lo, hi)``. Counted in SQL by stored flag set (few distinct ones), split in Python."""
    rows = await sql.fetch(
        "SELECT c.prison_id, m.flags, count(*) AS n, count(r.message_id) AS reviewed"
        " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " LEFT JOIN flag_reviews r ON r.message_id = m.id"
        " WHERE m.flags IS NOT NULL AND m.created_at >= $1 AND m.created_at < $2"
        f" AND c.prison_id IN {ids_in(prison_ids)} GROUP BY c.prison_id, m.flags",
        lo,
        hi,
    )
    counts: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for r in rows:
        for category in split_flags(r["flags"]):
            tally = counts[r["prison_id"]][category]
            tally[0] += int(r["n"])
            tally[1] += int(r["reviewed"])
    return {
        prison: [
            FlagFigures(category=c, flagged=n, reviewed=done, unreviewed=n - done)
            for c, (n, done) in sorted(per.items())
        ]
        for prison, per in counts.items()
    }


# bureau


class BureauDay(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    followers: int
    relatives: int
    new_relatives: int
    messages: int
    conversations: int
    cycles: int
    answered: int
    median_s: float | None
    p90_s: float | None
    within_5_min: float | None
    complaints_filed: int
    complaints_open: int
    complaints_overdue: int
    wechat_followers: int = 0  # following the WeChat Official Account at the cutoff
    comments: int = 0  # comments on announcements posted that day (storage/comments.py)
    comments_approved: int = 0  # of them, approved by now


async def bureau_figures(
    db: Database, first: date, last: date, zone: tzinfo, now: datetime
) -> list[BureauDay]:
    """Across every prison, per local day of ``first..last`` (see the module docstring)."""
    starts = day_starts(first, last, zone)
    cutoffs = [min(end, now) for end in starts[1:]]
    async with db.read() as sql:
        cycles = await _cycles(sql, starts[0], starts[-1], None)
        messages = await _message_counts(sql, starts, None)
        relatives_before = int(
            await sql.fetchval(
                "SELECT count(*) FROM users WHERE role = 'relative' AND created_at < $1",
                starts[0],
            )
        )
        joined = sorted(
            sql.when(r["created_at"])
            for r in await sql.fetch(
                "SELECT created_at FROM users WHERE role = 'relative'"
                " AND created_at >= $1 AND created_at < $2",
                starts[0],
                starts[-1],
            )
        )
        spans = await _verified_spans(sql, starts[-1])
        comment_counts = [await comments.counts_between(sql, lo, hi) for lo, hi in pairwise(starts)]
        complaints = await _complaint_histories(sql, starts[-1])
        wechat = [
            (sql.when(r["first_at"]), bool(r["following"]), sql.when(r["changed_at"]))
            for r in await sql.fetch(
                "SELECT first_at, following, changed_at FROM wechat_followers WHERE first_at < $1",
                starts[-1],
            )
        ]

    waits: list[list[Wait]] = [[] for _ in cutoffs]
    convs: list[set[int]] = [set() for _ in cutoffs]
    for conv, _, wait in cycles:
        i = day_index(wait[0], starts)
        if i is not None:
            waits[i].append(wait)
            convs[i].add(conv)

    out = []
    for i, day in enumerate(local_days(first, last)):
        cutoff = cutoffs[i]
        r = response_figures(waits[i], now)
        followers = {
            relative
            for relative, since, until in spans
            if since < cutoff and (until is None or until >= cutoff)
        }
        filed = opened = overdue = 0
        for complaint in complaints:
            if starts[i] <= complaint.filed < starts[i + 1]:
                filed += 1
            if complaint.filed < cutoff and complaint.state_at(cutoff) not in (SETTLED):
                opened += 1
                if complaint.deadline < cutoff:
                    overdue += 1
        out.append(
            BureauDay(
                day=day,
                followers=len(followers),
                relatives=relatives_before + bisect.bisect_left(joined, cutoff),
                new_relatives=bisect.bisect_left(joined, starts[i + 1])
                - bisect.bisect_left(joined, starts[i]),
                messages=sum(messages[i].values()),
                conversations=len(convs[i]),
                cycles=r.cycles,
                answered=r.answered,
                median_s=r.median_s,
                p90_s=r.p90_s,
                within_5_min=r.within_5_min,
                complaints_filed=filed,
                complaints_open=opened,
                complaints_overdue=overdue,
                wechat_followers=sum(
                    1
                    for first_at, following, changed_at in wechat
                    if first_at < cutoff and following == (changed_at < cutoff)
                ),
                comments=comment_counts[i][0],
                comments_approved=comment_counts[i][1],
            )
        )
    return out


# queries


async def _cycles(
    sql: Sql, since: datetime, until: datetime | None, prison_ids: Sequence[int] | None
) -> list[tuple[int, int, Wait]]:
    """``(conversation_id, prison_id, (wait_started_at, first_reply_at))`` of the cycles
    whose wait started in ``[since, until)`` (``until`` None: no upper bound)."""
    where = ["wait_started_at >= $1"]
    args: list[Any] = [since]
    if until is not None:
        where.append("wait_started_at < $2")
        args.append(until)
    if prison_ids is not None:
        where.append(f"prison_id IN {ids_in(prison_ids)}")
    rows = await sql.fetch(
        "SELECT conversation_id, prison_id, wait_started_at, first_reply_at"
        " FROM conversation_cycles WHERE " + " AND ".join(where),
        *args,
    )
    return [
        (
            r["conversation_id"],
            r["prison_id"],
            (
                sql.when(r["wait_started_at"]),
                None if r["first_reply_at"] is None else sql.when(r["first_reply_at"]),
            ),
        )
        for r in rows
    ]


async def _message_counts(
    sql: Sql, starts: Sequence[datetime], prison_ids: Sequence[int] | None
) -> list[dict[int, int]]:
    """Per day of ``starts``: messages (notes excluded) by prison."""
    scope = "" if prison_ids is None else f" AND c.prison_id IN {ids_in(prison_ids)}"
    counts = []
    for lo, hi in pairwise(starts):
        rows = await sql.fetch(
            "SELECT c.prison_id, count(*) AS n FROM messages m"
            " JOIN conversations c ON c.id = m.conversation_id"
            " WHERE m.created_at >= $1 AND m.created_at < $2 AND m.kind <> 'note'"
            + scope
            + " GROUP BY c.prison_id",
            lo,
            hi,
        )
        counts.append({r["prison_id"]: int(r["n"]) for r in rows})
    return counts


async def _verified_spans(sql: Sql, until: datetime) -> list[tuple[int, datetime, datetime | None]]:
    """``(relative_id, verified_at, revoked_at or None)`` of every link ever verified before
    ``until``. A verified link was verified at ``decided_at``. A revoked link was revoked at
    ``decided_at`` (the revocation overwrites it) and verified at its ``link.verified`` audit
    entry; without one (a link decided outside the API) it counts from its request."""
    links = await sql.fetch(
        "SELECT id, relative_id, state, decided_at, created_at FROM family_links"
        " WHERE state IN ('verified', 'revoked')"
    )
    verified_at: dict[int, datetime] = {}
    if any(r["state"] == "revoked" for r in links):
        for r in await sql.fetch(
            "SELECT object_id, at FROM audit_entries"
            " WHERE object_type = 'family_link' AND action = 'link.verified'"
        ):
            verified_at.setdefault(r["object_id"], sql.when(r["at"]))
    spans = []
    for r in links:
        created = sql.when(r["created_at"])
        decided = None if r["decided_at"] is None else sql.when(r["decided_at"])
        if r["state"] == "verified":
            since, revoked = decided or created, None
        else:
            since, revoked = verified_at.get(r["id"], created), decided
        if since < until:
            spans.append((int(r["relative_id"]), since, revoked))
    return spans


@dataclass
class _Complaint:
    filed: datetime
    deadline: datetime
    state: str  # current
    events: list[tuple[datetime, str]]  # (at, state after), in order

    def state_at(self, cutoff: datetime) -> str:
        """The state at ``cutoff``: of the last event before it."""
        if not self.events:
            return self.state
        i = bisect.bisect_left([at for at, _ in self.events], cutoff)
        return self.events[i - 1][1] if i else "received"


async def _complaint_histories(sql: Sql, until: datetime) -> list[_Complaint]:
    """Every complaint filed before ``until``, with its state changes."""
    complaints = {
        r["id"]: _Complaint(sql.when(r["created_at"]), sql.when(r["deadline"]), r["state"], [])
        for r in await sql.fetch(
            "SELECT id, created_at, deadline, state FROM complaints WHERE created_at < $1", until
        )
    }
    for r in await sql.fetch(
        "SELECT e.complaint_id, e.state, e.created_at FROM complaint_events e"
        " JOIN complaints c ON c.id = e.complaint_id WHERE c.created_at < $1"
        " ORDER BY e.created_at, e.id",
        until,
    ):
        complaints[r["complaint_id"]].events.append((sql.when(r["created_at"]), r["state"]))
    return list(complaints.values())
