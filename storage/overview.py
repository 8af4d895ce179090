"""The supervisor's live overview of one prison, as of a given moment, over ``store``.

What the monitor loads when it opens; afterwards it follows the ``conversation`` and
``presence`` events of the prison's staff topic (which a supervisor's socket joins on
connect). A monitor should therefore open its socket first and load the overview second:
an event that arrives while the overview loads is then applied on top, never missed.

Definitions (``target`` is ``prisons.response_target_s``, 300 s by default; "longer than"
is strict, so an answer at exactly the target is on time):

- **queue**: the conversations in state ``waiting``, the longest wait first, with
  ``wait_s`` = whole seconds from the cycle's ``wait_started_at`` to ``now``.
- **late_now**: the current cycles still without a first response (state ``waiting``, or
  ``active``: claimed but not yet answered, which the family cannot tell from waiting) whose
  wait is longer than ``target``; the longest first.
- **late_today**: the cycles that started today (the bureau's local day of ``now``) and whose
  first response (``first_reply_at - wait_started_at``) took longer than ``target``; in the
  order they started.
- **conversations**: the prison's conversations counted by state (every state named).
- **complaints_overdue**: the prison's overdue complaints (``storage.complaints``).

The queries run one after another on one connection without a shared snapshot: a change
committed meanwhile may show in one part and not yet in another. The events that follow
bring the monitor up to date either way.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

import msgspec

from storage.complaints import overdue_count
from storage.errors import NotFound
from storage.sql import Database

DEFAULT_TARGET_S = 300


class StateCounts(msgspec.Struct, frozen=True):
    new: int = 0
    waiting: int = 0
    active: int = 0
    resolved: int = 0


class Waiting(msgspec.Struct, frozen=True):
    """A conversation of the queue."""

    conversation_id: int
    cycle: int
    inmate_id: int
    inmate_name: str
    relative_id: int
    relative_name: str
    waiting_since: datetime
    wait_s: int
    over_target: bool


class Unanswered(msgspec.Struct, frozen=True):
    """A current cycle waiting for its first response longer than the target."""

    conversation_id: int
    cycle: int
    state: str  # waiting | active
    assigned_officer_id: int | None
    waiting_since: datetime
    wait_s: int


class AnsweredLate(msgspec.Struct, frozen=True):
    """A cycle of today whose first response took longer than the target."""

    conversation_id: int
    cycle: int
    waiting_since: datetime
    first_reply_at: datetime
    response_s: int


class PrisonOverview(msgspec.Struct, frozen=True):
    prison_id: int
    at: datetime  # the moment it describes
    response_target_s: int
    conversations: StateCounts
    queue: list[Waiting]
    late_now: list[Unanswered]
    late_today: list[AnsweredLate]
    complaints_overdue: int


def _seconds(span: timedelta) -> int:
    return int(span.total_seconds())  # whole seconds, rounded down (spans are not negative)


def start_of_day(now: datetime, zone: tzinfo) -> datetime:
    """Local midnight (in ``zone``) of the day ``now`` falls on."""
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def prison_overview(
    db: Database, prison_id: int, now: datetime, zone: tzinfo
) -> PrisonOverview:
    """The overview of ``prison_id`` as of ``now``; ``NotFound`` if there is no such prison."""
    async with db.read() as sql:
        stored_target = await sql.fetchval(
            "SELECT response_target_s FROM prisons WHERE id = $1", prison_id
        )
        if stored_target is None:
            raise NotFound(f"prison {prison_id}")
        target_s = int(stored_target) if stored_target > 0 else DEFAULT_TARGET_S
        target = timedelta(seconds=target_s)

        counted = await sql.fetch(
            "SELECT state, count(*) AS n FROM conversations WHERE prison_id = $1 GROUP BY state",
            prison_id,
        )
        states = {row["state"]: int(row["n"]) for row in counted}

        queue = []
        for row in await sql.fetch(
            "SELECT c.id, c.cycle, c.inmate_id, i.name AS inmate_name, c.relative_id,"
            " u.name AS relative_name, c.wait_started_at"
            " FROM conversations c JOIN inmates i ON i.id = c.inmate_id"
            " JOIN users u ON u.id = c.relative_id"
            " WHERE c.prison_id = $1 AND c.state = 'waiting' AND c.wait_started_at IS NOT NULL"
            " ORDER BY c.wait_started_at, c.id",
            prison_id,
        ):
            since = sql.when(row["wait_started_at"])
            queue.append(
                Waiting(
                    conversation_id=row["id"],
                    cycle=row["cycle"],
                    inmate_id=row["inmate_id"],
                    inmate_name=row["inmate_name"],
                    relative_id=row["relative_id"],
                    relative_name=row["relative_name"],
                    waiting_since=since,
                    wait_s=_seconds(now - since),
                    over_target=now - since > target,
                )
            )

        late_now = []
        for row in await sql.fetch(
            "SELECT id, cycle, state, assigned_officer_id, wait_started_at FROM conversations"
            " WHERE prison_id = $1 AND state IN ('waiting', 'active')"
            " AND first_reply_at IS NULL AND wait_started_at < $2"
            " ORDER BY wait_started_at, id",
            prison_id,
            now - target,
        ):
            since = sql.when(row["wait_started_at"])
            late_now.append(
                Unanswered(
                    conversation_id=row["id"],
                    cycle=row["cycle"],
                    state=row["state"],
                    assigned_officer_id=row["assigned_officer_id"],
                    waiting_since=since,
                    wait_s=_seconds(now - since),
                )
            )

        late_today = []
        for row in await sql.fetch(
            "SELECT conversation_id, cycle, wait_started_at, first_reply_at"
            " FROM conversation_cycles WHERE prison_id = $1 AND wait_started_at >= $2"
            " AND wait_started_at <= $3 AND first_reply_at IS NOT NULL"
            " ORDER BY wait_started_at, conversation_id, cycle",
            prison_id,
            start_of_day(now, zone),
            now,
        ):
            since = sql.when(row["wait_started_at"])
            answered = sql.when(row["first_reply_at"])
            if answered - since > target:
                late_today.append(
                    AnsweredLate(
                        conversation_id=row["conversation_id"],
                        cycle=row["cycle"],
                        waiting_since=since,
                        first_reply_at=answered,
                        response_s=_seconds(answered - since),
                    )
                )

    overdue = (await overdue_count(db, [prison_id], now)).get(prison_id, 0)
    return PrisonOverview(
        prison_id=prison_id,
        at=now,
        response_target_s=target_s,
        conversations=StateCounts(
            new=states.get("new", 0),
            waiting=states.get("waiting", 0),
            active=states.get("active", 0),
            resolved=states.get("resolved", 0),
        ),
        queue=queue,
        late_now=late_now,
        late_today=late_today,
        complaints_overdue=overdue,
    )
