"""Complaints to a prison's supervisors: filing, references, the state machine, history.

Written once over ``store`` (``storage/sql.py``), so both stores behave the same.

- **Reference** ``<prison code>-<year>-<6 digits>`` (``GM-2026-000123``): the year is the
  bureau's local year at filing, the number runs per prison and year from 000001. It is taken
  from ``complaint_counters`` with an upsert in the filing transaction: the counter row stays
  locked until commit (PostgreSQL) or the single writer holds it (SQLite), so concurrent
  filers never get the same number, and a rolled-back filing gives its number back.
- **Deadline**: filing time plus ``days`` (``Settings.complaint_days``). A complaint is
  *overdue* once its deadline has passed while it is neither answered nor closed.
- **States** ``received -> in_review -> answered -> closed``, or ``escalated`` to the bureau
  from received, in review or answered (once). Who may move a complaint is the policy's
  business (``server/policy.py``: the prison's supervisors, or the admin once escalated);
  which moves exist is decided here (``TRANSITIONS``), and a move is a conditional update,
  so of two concurrent moves from the same state exactly one succeeds.
- **About a decision**: a complaint may name the decision it contests (``about_kind`` link,
  visit or complaint, and ``about_id``); a closed complaint carries its reason code
  (``domain/reasons.py``), kept with the ``closed`` history entry too.
- **Escalation by the complainant**: ``transition(..., "escalated", only_from={"answered"})``
  takes an answered complaint to the bureau; a second escalation of any complaint is
  ``Conflict("already_escalated")``.
- **History**: every state a complaint takes is a ``complaint_events`` row with the message
  to the complainant, written with the change and its audit entry in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

import msgspec

from domain.records import Role
from storage import audit_trail
from storage.errors import Conflict, NotFound
from storage.sql import Database, Row, Sql, ids_in

AboutKind = Literal["link", "visit", "complaint"]
ComplaintState = Literal["received", "in_review", "answered", "closed", "escalated"]
STATES: tuple[ComplaintState, ...] = ("received", "in_review", "answered", "closed", "escalated")
SETTLED: frozenset[str] = frozenset({"answered", "closed"})  # never overdue

# The moves that exist, whoever makes them. ``escalated`` only once per complaint.
TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"in_review", "answered", "escalated"}),
    "in_review": frozenset({"answered", "escalated"}),
    "answered": frozenset({"closed", "escalated"}),
    "escalated": frozenset({"in_review", "answered"}),
    "closed": frozenset(),
}


class Complaint(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    prison_id: int
    complainant_id: int
    complainant_name: str
    complainant_role: Role
    inmate_id: int | None
    conversation_id: int | None
    category: str
    body: str
    state: ComplaintState
    deadline: datetime
    created_at: datetime
    updated_at: datetime
    escalated_at: datetime | None
    reason_code: str | None = None  # why it was closed (domain/reasons.py)
    about_kind: AboutKind | None = None  # the decision it contests, if any
    about_id: int | None = None

    @property
    def escalated(self) -> bool:
        """Escalated to the bureau at some point: the admin handles it from then on."""
        return self.escalated_at is not None

    @property
    def on_behalf(self) -> bool:
        """Filed by an officer on behalf of an inmate."""
        return self.complainant_role == "officer"

    def overdue(self, now: datetime) -> bool:
        return self.deadline < now and self.state not in SETTLED


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    state: ComplaintState
    message: str
    at: datetime
    actor_id: int
    actor_name: str
    actor_role: Role
    reason_code: str | None = None


class NewComplaint(msgspec.Struct, frozen=True, kw_only=True):
    prison_id: int
    complainant_id: int
    category: str
    body: str
    inmate_id: int | None = None
    conversation_id: int | None = None
    about_kind: AboutKind | None = None
    about_id: int | None = None


def allowed(complaint: Complaint, to_state: str) -> bool:
    """Whether the move exists from the complaint's state (not who may make it)."""
    if to_state == "escalated" and complaint.escalated:
        return False
    return to_state in TRANSITIONS[complaint.state]


def reference(code: str, year: int, number: int) -> str:
    return f"{code}-{year}-{number:06d}"


_SELECT = (
    "SELECT c.id, c.reference, c.prison_id, c.complainant_id, u.name AS complainant_name,"
    " u.role AS complainant_role, c.inmate_id, c.conversation_id, c.category, c.body, c.state,"
    " c.deadline, c.created_at, c.updated_at, c.escalated_at, c.reason_code, c.about_kind,"
    " c.about_id"
    " FROM complaints c JOIN users u ON u.id = c.complainant_id"
)


def _complaint(sql: Sql, row: Row) -> Complaint:
    created = sql.when(row["created_at"])
    return Complaint(
        id=row["id"],
        reference=row["reference"],
        prison_id=row["prison_id"],
        complainant_id=row["complainant_id"],
        complainant_name=row["complainant_name"],
        complainant_role=row["complainant_role"],
        inmate_id=row["inmate_id"],
        conversation_id=row["conversation_id"],
        category=row["category"],
        body=row["body"],
        state=row["state"],
        deadline=sql.when(row["deadline"]),
        created_at=created,
        updated_at=created if row["updated_at"] is None else sql.when(row["updated_at"]),
        escalated_at=None if row["escalated_at"] is None else sql.when(row["escalated_at"]),
        reason_code=row["reason_code"],
        about_kind=row["about_kind"],
        about_id=row["about_id"],
    )


async def _load(sql: Sql, complaint_id: int) -> Complaint:
    row = await sql.fetchrow(_SELECT + " WHERE c.id = $1", complaint_id)
    if row is None:
        raise NotFound(f"complaint {complaint_id}")
    return _complaint(sql, row)


async def _audit(
    sql: Sql,
    at: datetime,
    actor_id: int,
    action: str,
    complaint: Complaint,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> None:
    await audit_trail.record(
        sql,
        at=at,
        actor_id=actor_id,
        action=action,
        object_type="complaint",
        object_id=complaint.id,
        prison_id=complaint.prison_id,
        before=before,
        after=after,
    )


async def file_complaint(
    db: Database, new: NewComplaint, *, now: datetime, zone: tzinfo, days: int
) -> Complaint:
    """Store a complaint in state ``received`` with its reference, deadline, first history
    entry and audit entry (``complaint.filed``), in one transaction. ``NotFound`` if the
    prison does not exist. Whether the complainant may file it is the policy's business."""
    year = now.astimezone(zone).year
    async with db.write() as sql:
        code = await sql.fetchval("SELECT code FROM prisons WHERE id = $1", new.prison_id)
        if code is None:
            raise NotFound(f"prison {new.prison_id}")
        number = await sql.fetchval(
            "INSERT INTO complaint_counters (prison_id, year, last) VALUES ($1, $2, 1)"
            " ON CONFLICT (prison_id, year) DO UPDATE SET last = complaint_counters.last + 1"
            " RETURNING last",
            new.prison_id,
            year,
        )
        complaint_id = await sql.fetchval(
            "INSERT INTO complaints (reference, prison_id, complainant_id, inmate_id,"
            " conversation_id, category, body, state, deadline, created_at, updated_at,"
            " about_kind, about_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, 'received', $8, $9, $9, $10, $11)"
            " RETURNING id",
            reference(code, year, int(number)),
            new.prison_id,
            new.complainant_id,
            new.inmate_id,
            new.conversation_id,
            new.category,
            new.body,
            now + timedelta(days=days),
            now,
            new.about_kind,
            new.about_id,
        )
        await sql.execute(
            "INSERT INTO complaint_events (complaint_id, actor_id, state, message, created_at)"
            " VALUES ($1, $2, 'received', '', $3)",
            complaint_id,
            new.complainant_id,
            now,
        )
        complaint = await _load(sql, complaint_id)
        await _audit(
            sql,
            now,
            new.complainant_id,
            "complaint.filed",
            complaint,
            None,
            {
                "reference": complaint.reference,
                "state": "received",
                "category": complaint.category,
                "inmate_id": complaint.inmate_id,
                "conversation_id": complaint.conversation_id,
                "on_behalf": complaint.on_behalf,
                "deadline": complaint.deadline.isoformat(),
            }
            | (
                {"about": {"kind": new.about_kind, "id": new.about_id}}
                if new.about_kind is not None
                else {}
            ),
        )
    return complaint


async def complaint(db: Database, complaint_id: int) -> Complaint:
    """``NotFound`` if there is no such complaint."""
    async with db.read() as sql:
        return await _load(sql, complaint_id)


async def history(db: Database, complaint_id: int) -> list[HistoryEntry]:
    """The complaint's states, oldest first, each with its message and who set it."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT e.state, e.message, e.created_at, e.actor_id, u.name, u.role, e.reason_code"
            " FROM complaint_events e JOIN users u ON u.id = e.actor_id"
            " WHERE e.complaint_id = $1 ORDER BY e.id",
            complaint_id,
        )
        return [
            HistoryEntry(
                state=r["state"],
                message=r["message"],
                at=sql.when(r["created_at"]),
                actor_id=r["actor_id"],
                actor_name=r["name"],
                actor_role=r["role"],
                reason_code=r["reason_code"],
            )
            for r in rows
        ]


async def transition(
    db: Database,
    complaint_id: int,
    to_state: ComplaintState,
    *,
    actor_id: int,
    message: str,
    now: datetime,
    reason_code: str | None = None,
    only_from: frozenset[str] | None = None,
) -> Complaint:
    """Move a complaint to ``to_state`` with a message to the complainant: the change, its
    history entry and its audit entry (``complaint.<to_state>``) in one transaction.
    ``reason_code``: why (a closing's, ``domain/reasons.py``), kept on the complaint when it
    closes and on the history entry. ``NotFound`` if there is no such complaint;
    ``Conflict("already_escalated")`` for a second escalation; ``Conflict("state")`` if the
    move does not exist from its current state, or from a state not in ``only_from`` (or
    another move got there first)."""
    async with db.write() as sql:
        current = await _load(sql, complaint_id)
        if to_state == "escalated" and current.escalated:
            raise Conflict("already_escalated")
        if not allowed(current, to_state) or (
            only_from is not None and current.state not in only_from
        ):
            raise Conflict("state")
        moved = await sql.execute(
            "UPDATE complaints SET state = $1, updated_at = $2,"
            " escalated_at = CASE WHEN $1 = 'escalated' THEN $2 ELSE escalated_at END,"
            " reason_code = CASE WHEN $1 = 'closed' THEN $5 ELSE reason_code END"
            " WHERE id = $3 AND state = $4",
            to_state,
            now,
            complaint_id,
            current.state,
            reason_code,
        )
        if moved != 1:
            raise Conflict("state")
        await sql.execute(
            "INSERT INTO complaint_events (complaint_id, actor_id, state, message, created_at,"
            " reason_code) VALUES ($1, $2, $3, $4, $5, $6)",
            complaint_id,
            actor_id,
            to_state,
            message,
            now,
            reason_code,
        )
        changed = await _load(sql, complaint_id)
        await _audit(
            sql,
            now,
            actor_id,
            f"complaint.{to_state}",
            changed,
            {"state": current.state},
            {"state": to_state, "message": message}
            | ({"reason_code": reason_code} if reason_code is not None else {}),
        )
    return changed


class ComplaintScope(msgspec.Struct, frozen=True):
    """Which complaints a listing covers: ``None`` fields do not filter."""

    complainant_id: int | None = None
    prison_ids: tuple[int, ...] | None = None


def _overdue(now: str) -> str:
    """SQL: the complaint is overdue as of the placeholder ``now``."""
    return f"(c.deadline < {now} AND c.state NOT IN ('answered', 'closed'))"


async def complaints(
    db: Database,
    scope: ComplaintScope,
    *,
    now: datetime,
    state: ComplaintState | None = None,
    overdue: bool | None = None,
    prison_id: int | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[Complaint]:
    """Complaints in ``scope``, newest first, filtered by whichever arguments are given
    (``overdue`` as of ``now``); ``before`` pages by id."""
    where = ["1 = 1"]
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if scope.complainant_id is not None:
        where.append(f"c.complainant_id = {arg(scope.complainant_id)}")
    if scope.prison_ids is not None:
        where.append(f"c.prison_id IN {ids_in(scope.prison_ids)}")
    if prison_id is not None:
        where.append(f"c.prison_id = {arg(prison_id)}")
    if state is not None:
        where.append(f"c.state = {arg(state)}")
    if overdue is not None:
        late = _overdue(arg(now))
        where.append(late if overdue else f"NOT {late}")
    if before is not None:
        where.append(f"c.id < {arg(before)}")
    cap = arg(max(1, min(limit, 500)))
    async with db.read() as sql:
        rows = await sql.fetch(
            f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY c.id DESC LIMIT {cap}", *args
        )
        return [_complaint(sql, r) for r in rows]


async def overdue_count(db: Database, prison_ids: Sequence[int], now: datetime) -> dict[int, int]:
    """Overdue complaints per prison as of ``now`` (every prison named, zeros included): the
    supervisors' overview flags these."""
    counts = dict.fromkeys(prison_ids, 0)
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT c.prison_id, count(*) AS n FROM complaints c"
            f" WHERE c.prison_id IN {ids_in(prison_ids)} AND {_overdue('$1')}"
            " GROUP BY c.prison_id",
            now,
        )
    for row in rows:
        counts[int(row["prison_id"])] = int(row["n"])
    return counts


class OpenCounts(msgspec.Struct, frozen=True):
    open: int  # neither answered nor closed
    overdue: int  # open, and past the deadline


async def open_counts(
    db: Database, prison_ids: Sequence[int], now: datetime
) -> dict[int, OpenCounts]:
    """Open and overdue complaints per prison as of ``now`` (for the bureau's figures)."""
    found: dict[int, OpenCounts] = {p: OpenCounts(0, 0) for p in prison_ids}
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT c.prison_id, count(*) AS n,"
            " sum(CASE WHEN c.deadline < $1 THEN 1 ELSE 0 END) AS late FROM complaints c"
            f" WHERE c.prison_id IN {ids_in(prison_ids)}"
            " AND c.state NOT IN ('answered', 'closed') GROUP BY c.prison_id",
            now,
        )
    for row in rows:
        found[int(row["prison_id"])] = OpenCounts(int(row["n"]), int(row["late"] or 0))
    return found


async def candidates(db: Database, complaint: Complaint) -> list[int]:
    """Everyone who might be told of a complaint's changes live: the staff of its prison, the
    admins and the complainant. ``policy.complaint_audience`` decides who is (never an
    officer)."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT u.id FROM users u JOIN user_prisons up ON up.user_id = u.id"
            " WHERE up.prison_id = $1 AND NOT u.disabled"
            " UNION SELECT u.id FROM users u WHERE u.role = 'admin' AND NOT u.disabled"
            " UNION SELECT u.id FROM users u WHERE u.id = $2 AND NOT u.disabled",
            complaint.prison_id,
            complaint.complainant_id,
        )
    return sorted(int(r["id"]) for r in rows)
