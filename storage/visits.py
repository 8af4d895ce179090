"""Visits: a prison's rules, a relative's requests, and the officers' decisions.

Rules live in ``prisons.visit_rules`` (``VisitRules``). Days and hours are the bureau's local
time (the caller passes the zone): a slot is allowed when its local ISO weekday is one of
``days`` and its local start time falls in one of the ``hours`` windows (``start <= t <
end``). An empty ``days`` or ``hours`` list does not restrict (the prison has not published
one). ``min_days_between`` counts local calendar days between two approved visits of the same
inmate, whoever asked for them.

A request is checked against the rules and the inmate's card (``visits.next_visit_date``)
inside the transaction that stores it; a relative has at most one pending request per inmate
(a partial unique index, so racing requests cannot both pass). An approval locks the inmate's
row and checks again against the visits approved meanwhile, so two approvals racing for the
same inmate cannot break ``min_days_between``. Decisions and rule changes are audited in
their own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from domain.records import Visit, VisitState
from storage import audit_trail
from storage.errors import Conflict, NotFound
from storage.inmate_info import Refused, info_from
from storage.sql import Database, Sql, for_update, ids_in
from storage.visit_rules import VisitRules, rules_from

_SELECT = """
SELECT v.id, v.inmate_id, i.prison_id, v.relative_id, u.name AS relative_name, v.slot_start,
       v.visitors, v.visitor_names, v.state, v.reason, v.decided_by, v.decided_at, v.created_at,
       v.reason_code
FROM visit_requests v JOIN inmates i ON i.id = v.inmate_id JOIN users u ON u.id = v.relative_id
"""


def _visit(sql: Sql, row: Any) -> Visit:
    decided_at = row["decided_at"]
    return Visit(
        id=row["id"],
        inmate_id=row["inmate_id"],
        prison_id=row["prison_id"],
        relative_id=row["relative_id"],
        relative_name=row["relative_name"],
        slot_start=sql.when(row["slot_start"]),
        visitors=row["visitors"],
        visitor_names=list(sql.unjson(row["visitor_names"]) or []),
        state=row["state"],
        reason=row["reason"],
        decided_by=row["decided_by"],
        decided_at=None if decided_at is None else sql.when(decided_at),
        created_at=sql.when(row["created_at"]),
        reason_code=row["reason_code"],
    )


# -- rules -------------------------------------------------------------------------------------


async def visit_rules(db: Database, prison_id: int) -> VisitRules:
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT visit_rules FROM prisons WHERE id = $1" + for_update(db), prison_id
        )
        if row is None:
            raise NotFound(f"prison {prison_id}")
        return rules_from(sql.unjson(row["visit_rules"]))


async def set_visit_rules(
    db: Database, prison_id: int, rules: VisitRules, actor_id: int, now: datetime
) -> VisitRules:
    """Replace the prison's rules, audited (``prison.visit_rules_set``) in one transaction."""
    async with db.write() as sql:
        row = await sql.fetchrow("SELECT visit_rules FROM prisons WHERE id = $1", prison_id)
        if row is None:
            raise NotFound(f"prison {prison_id}")
        before = msgspec.to_builtins(rules_from(sql.unjson(row["visit_rules"])))
        after = msgspec.to_builtins(rules)
        await sql.execute("UPDATE prisons SET visit_rules = $1 WHERE id = $2", after, prison_id)
        await audit_trail.record(
            sql,
            at=now,
            actor_id=actor_id,
            action="prison.visit_rules_set",
            object_type="prison",
            object_id=prison_id,
            prison_id=prison_id,
            before=before,
            after=after,
        )
    return rules


def _days_apart(a: datetime, b: datetime, zone: ZoneInfo) -> int:
    return abs((a.astimezone(zone).date() - b.astimezone(zone).date()).days)


def check_slot(
    rules: VisitRules,
    *,
    slot_start: datetime,
    visitors: int,
    next_visit_date: date | None,
    approved: Iterable[datetime],
    now: datetime,
    zone: ZoneInfo,
) -> None:
    """Raise ``Refused`` naming the first rule the slot breaks (checked in this order:
    past, day, hours, visitors, eligibility, frequency)."""
    local = slot_start.astimezone(zone)
    if slot_start <= now:
        raise Refused("visit_in_past", "slot_start", "the slot has already started")
    if rules.days and local.isoweekday() not in rules.days:
        raise Refused("visit_rule_days", "slot_start", "the prison has no visits on that day")
    clock = local.strftime("%H:%M")
    if rules.hours and not any(h.start <= clock < h.end for h in rules.hours):
        windows = ", ".join(f"{h.start}-{h.end}" for h in rules.hours)
        raise Refused(
            "visit_rule_hours", "slot_start", f"a visit must start within visiting hours: {windows}"
        )
    if visitors > rules.max_visitors:
        raise Refused(
            "visit_rule_visitors", "visitors", f"at most {rules.max_visitors} visitors per visit"
        )
    if next_visit_date is not None and local.date() < next_visit_date:
        raise Refused(
            "visit_not_eligible",
            "slot_start",
            f"the inmate may not be visited before {next_visit_date.isoformat()}",
        )
    for other in approved:
        if _days_apart(slot_start, other, zone) < rules.min_days_between:
            raise Refused(
                "visit_rule_frequency",
                "slot_start",
                f"visits of an inmate must be at least {rules.min_days_between} days apart",
            )


async def _approved_slots(sql: Sql, inmate_id: int, *, besides: int = 0) -> list[datetime]:
    rows = await sql.fetch(
        "SELECT slot_start FROM visit_requests"
        " WHERE inmate_id = $1 AND state = 'approved' AND id <> $2",
        inmate_id,
        besides,
    )
    return [sql.when(r["slot_start"]) for r in rows]


# -- requests and decisions --------------------------------------------------------------------


async def request_visit(
    db: Database,
    *,
    relative_id: int,
    inmate_id: int,
    slot_start: datetime,
    visitors: int,
    visitor_names: list[str],
    now: datetime,
    zone: ZoneInfo,
) -> Visit:
    """Database a pending request if the slot keeps the rules. ``NotFound`` (no such inmate),
    ``Refused`` (a rule, named by its code), ``Conflict`` (already one pending)."""
    async with db.write() as sql:
        row = await sql.fetchrow(
            "SELECT i.info, p.visit_rules FROM inmates i JOIN prisons p ON p.id = i.prison_id"
            " WHERE i.id = $1",
            inmate_id,
        )
        if row is None:
            raise NotFound(f"inmate {inmate_id}")
        info = info_from(sql.unjson(row["info"]))
        check_slot(
            rules_from(sql.unjson(row["visit_rules"])),
            slot_start=slot_start,
            visitors=visitors,
            next_visit_date=info.visits.next_visit_date,
            approved=await _approved_slots(sql, inmate_id),
            now=now,
            zone=zone,
        )
        visit_id = await sql.fetchval(
            "INSERT INTO visit_requests"
            " (inmate_id, relative_id, slot_start, visitors, visitor_names, state, created_at)"
            " VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING id",
            inmate_id,
            relative_id,
            slot_start,
            visitors,
            visitor_names,
            now,
        )
        found = await sql.fetchrow(_SELECT + " WHERE v.id = $1", visit_id)
        assert found is not None
        return _visit(sql, found)


async def visit(db: Database, visit_id: int) -> Visit:
    async with db.read() as sql:
        row = await sql.fetchrow(_SELECT + " WHERE v.id = $1", visit_id)
        if row is None:
            raise NotFound(f"visit {visit_id}")
        return _visit(sql, row)


async def visits(
    db: Database,
    *,
    relative_id: int | None = None,
    inmate_ids: Iterable[int] | None = None,
    prison_ids: Iterable[int] | None = None,
    state: VisitState | None = None,
    limit: int = 100,
) -> list[Visit]:
    """Requests by ascending slot, filtered by whichever of the arguments are given."""
    where: list[str] = []
    args: list[Any] = []
    if relative_id is not None:
        args.append(relative_id)
        where.append(f"v.relative_id = ${len(args)}")
    if inmate_ids is not None:
        where.append(f"v.inmate_id IN {ids_in(inmate_ids)}")
    if prison_ids is not None:
        where.append(f"i.prison_id IN {ids_in(prison_ids)}")
    if state is not None:
        args.append(state)
        where.append(f"v.state = ${len(args)}")
    args.append(limit)
    sql_text = (
        _SELECT
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY v.slot_start, v.id LIMIT ${len(args)}"
    )
    async with db.read() as sql:
        return [_visit(sql, r) for r in await sql.fetch(sql_text, *args)]


async def upcoming_approved(db: Database, inmate_id: int, now: datetime) -> list[Visit]:
    """The inmate's approved visits that have not started yet, soonest first."""
    async with db.read() as sql:
        rows = await sql.fetch(
            _SELECT + " WHERE v.inmate_id = $1 AND v.state = 'approved' AND v.slot_start > $2"
            " ORDER BY v.slot_start, v.id",
            inmate_id,
            now,
        )
        return [_visit(sql, r) for r in rows]


async def cancel_visit(db: Database, visit_id: int, *, relative_id: int, now: datetime) -> Visit:
    """The relative withdraws its request: a pending one, or an approved one that has not
    started. Audited (``visit.cancelled``, the relative as actor) in the same transaction, so
    the desk sees why an approved slot is free again. ``NotFound``; ``Conflict("state")``
    when it was declined, cancelled already, or its slot has begun."""
    lock = for_update(db)
    async with db.write() as sql:
        row = await sql.fetchrow(_SELECT + " WHERE v.id = $1", visit_id)
        if row is None:
            raise NotFound(f"visit {visit_id}")
        current = _visit(sql, row)
        state_now = await sql.fetchval(
            "SELECT state FROM visit_requests WHERE id = $1" + lock, visit_id
        )
        if state_now not in ("pending", "approved") or current.slot_start <= now:
            raise Conflict("state")
        await sql.execute(
            "UPDATE visit_requests SET state = 'cancelled', decided_at = $1 WHERE id = $2",
            now,
            visit_id,
        )
        await audit_trail.record(
            sql,
            at=now,
            actor_id=relative_id,
            action="visit.cancelled",
            object_type="visit",
            object_id=visit_id,
            prison_id=current.prison_id,
            before={"state": state_now},
            after={"state": "cancelled"},
        )
        cancelled = await sql.fetchrow(_SELECT + " WHERE v.id = $1", visit_id)
        assert cancelled is not None
        return _visit(sql, cancelled)


async def decide_visit(
    db: Database,
    visit_id: int,
    *,
    approve: bool,
    reason: str | None,
    actor_id: int,
    now: datetime,
    zone: ZoneInfo,
    reason_code: str | None = None,
) -> Visit:
    """Approve or decline a pending request, audited (``visit.approved``/``visit.declined``)
    in the same transaction. ``NotFound``; ``Conflict("state")`` when it is not pending;
    ``Refused`` when approving would break a rule that has changed since the request
    (``check_slot`` again, with the rules and the card as they are at the decision)."""
    lock = for_update(db)
    async with db.write() as sql:
        row = await sql.fetchrow(_SELECT + " WHERE v.id = $1", visit_id)
        if row is None:
            raise NotFound(f"visit {visit_id}")
        current = _visit(sql, row)
        # an approval locks the inmate's row: one at a time per inmate, so the frequency
        # check below sees every visit approved before it
        rules_row = await sql.fetchrow(
            "SELECT p.visit_rules, i.info FROM inmates i JOIN prisons p ON p.id = i.prison_id"
            " WHERE i.id = $1" + (" FOR UPDATE OF i" if lock and approve else ""),
            current.inmate_id,
        )
        assert rules_row is not None
        state_now = await sql.fetchval(
            "SELECT state FROM visit_requests WHERE id = $1" + lock, visit_id
        )
        if state_now != "pending":
            raise Conflict("state")
        if approve:  # the rules and the card as they are now, not as at the request
            check_slot(
                rules_from(sql.unjson(rules_row["visit_rules"])),
                slot_start=current.slot_start,
                visitors=current.visitors,
                next_visit_date=info_from(sql.unjson(rules_row["info"])).visits.next_visit_date,
                approved=await _approved_slots(sql, current.inmate_id, besides=visit_id),
                now=now,
                zone=zone,
            )
        state: VisitState = "approved" if approve else "declined"
        await sql.execute(
            "UPDATE visit_requests SET state = $1, reason = $2, decided_by = $3, decided_at = $4,"
            " reason_code = $6 WHERE id = $5",
            state,
            reason,
            actor_id,
            now,
            visit_id,
            reason_code,
        )
        await audit_trail.record(
            sql,
            at=now,
            actor_id=actor_id,
            action=f"visit.{state}",
            object_type="visit",
            object_id=visit_id,
            prison_id=current.prison_id,
            before={"state": "pending"},
            after={"state": state, "reason": reason}
            | ({"reason_code": reason_code} if reason_code is not None else {}),
        )
        decided = await sql.fetchrow(_SELECT + " WHERE v.id = $1", visit_id)
        assert decided is not None
        return _visit(sql, decided)
