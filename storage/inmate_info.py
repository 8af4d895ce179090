"""An inmate's information card: what ``inmates.info`` holds, and the one way to change it.

The card has six parts (``activity``, ``work``, ``health``, ``term``, ``money``, ``visits``),
each stamped with when and by whom it was last changed. Money is integer fen (1 yuan = 100
fen); the balance is never negative.

``update_info`` is the only writer. It reads the card under a row lock (PostgreSQL
``SELECT ... FOR UPDATE``; SQLite's single ``BEGIN IMMEDIATE`` writer), validates the whole
patch against it, writes the new card and appends the audit entry (``inmate.updated``, the
before and after of what changed) in that same transaction. So two spendings racing for the
same balance are serialized: the second sees the first's balance and is refused
(``insufficient_balance``) rather than overdrawing, and a refused patch changes nothing.

The card keeps the latest ``MAX_MOVEMENTS`` money movements (the balance is always exact);
every movement, older ones included, stays in the audit trail.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from domain.records import Inmate
from storage import audit_trail
from storage.errors import NotFound, StoreError
from storage.sql import Database, Sql, for_update, ids_in

MAX_MOVEMENTS = 200
MAX_FEN = 1_000_000_000  # ten million yuan: larger is a typing mistake

HealthStatus = Literal["good", "fair", "poor", "hospitalised"]
ChangeKind = Literal["commutation", "parole", "extension"]
MovementKind = Literal["deposit", "spending"]
Part = Literal["activity", "work", "health", "term", "money", "visits"]
PARTS: tuple[Part, ...] = ("activity", "work", "health", "term", "money", "visits")

Short = Annotated[str, msgspec.Meta(max_length=200)]
Long = Annotated[str, msgspec.Meta(max_length=500)]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Fen = Annotated[int, msgspec.Meta(gt=0, le=MAX_FEN)]
Moment = Annotated[datetime, msgspec.Meta(tz=True)]


# -- the stored card ---------------------------------------------------------------------------


class Stamped(msgspec.Struct, frozen=True, kw_only=True):
    updated_at: datetime | None = None  # None: never recorded
    updated_by: int | None = None  # the officer who last changed this part


class Activity(Stamped, frozen=True, kw_only=True):
    text: str = ""  # daily activity, as the officer wrote it


class Work(Stamped, frozen=True, kw_only=True):
    assignment: str = ""


class Health(Stamped, frozen=True, kw_only=True):
    status: HealthStatus | None = None
    note: str = ""


class TermChange(msgspec.Struct, frozen=True, kw_only=True):
    decided_on: date
    kind: ChangeKind
    decision: str  # the decision's reference, e.g. "(2026) 粤06刑更123号"
    new_release: date  # the expected release date after this change
    recorded_at: datetime
    recorded_by: int


class Term(Stamped, frozen=True, kw_only=True):
    original: str = ""  # the sentence as pronounced, e.g. "有期徒刑五年"
    start: date | None = None
    expected_release: date | None = None  # current: the latest change's new_release
    changes: list[TermChange] = []  # in order of decided_on


class Movement(msgspec.Struct, frozen=True, kw_only=True):
    kind: MovementKind
    at: datetime
    amount_fen: int  # positive; a spending lowers the balance by it
    note: str
    balance_after_fen: int
    recorded_at: datetime
    recorded_by: int


class Money(Stamped, frozen=True, kw_only=True):
    balance_fen: int = 0
    movements: list[Movement] = []  # oldest first, the latest MAX_MOVEMENTS


class Visits(Stamped, frozen=True, kw_only=True):
    next_visit_date: date | None = None  # visit eligibility: no visit before this day


class InmateInfo(msgspec.Struct, frozen=True, kw_only=True):
    activity: Activity = msgspec.field(default_factory=Activity)
    work: Work = msgspec.field(default_factory=Work)
    health: Health = msgspec.field(default_factory=Health)
    term: Term = msgspec.field(default_factory=Term)
    money: Money = msgspec.field(default_factory=Money)
    visits: Visits = msgspec.field(default_factory=Visits)


def info_from(stored: object) -> InmateInfo:
    """The card as stored (a decoded JSON object; ``{}`` is an empty card)."""
    return msgspec.convert(stored or {}, InmateInfo)


# -- a typed partial update (the body of ``PATCH /inmates/{id}``) -------------------------------


class HealthIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status: HealthStatus
    note: Long = ""


class TermIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The term record; a field left out keeps its value."""

    original: Short | None = None
    start: date | None = None
    expected_release: date | None = None


class TermChangeIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    decided_on: date
    kind: ChangeKind
    decision: Reference
    new_release: date


class MovementIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: MovementKind
    amount_fen: Fen
    at: Moment | None = None  # when it happened; default: now. Never in the future.
    note: Short = ""


class InfoPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What to change; every field is optional and a field left out is not touched."""

    activity: Long | None = None
    work: Short | None = None
    health: HealthIn | None = None
    term: TermIn | None = None
    term_change: TermChangeIn | None = None  # appended; sets term.expected_release
    movement: MovementIn | None = None  # appended; moves the balance
    next_visit_date: date | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__struct_fields__)


class Refused(StoreError):
    """A change that breaks a rule. Nothing was changed.

    ``code`` is the stable error code: for the card ``insufficient_balance`` or
    ``dates_out_of_order`` (``invalid_request`` for a balance past ``MAX_FEN``); for visits
    (``storage.visits``) the rule's code, e.g. ``visit_rule_days``. ``field`` names the input
    field at fault (``movement.amount_fen``, ``term.expected_release``, ``slot_start``...)."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


class Updated(msgspec.Struct, frozen=True):
    inmate: Inmate
    info: InmateInfo
    parts: tuple[Part, ...]  # the parts changed, in card order
    relatives: tuple[int, ...]  # the inmate's verified relatives (to be told live)


# -- storage -----------------------------------------------------------------------------------


def _inmate(row: Any) -> Inmate:
    return Inmate(row["id"], row["prison_id"], row["number"], row["name"])


async def card(db: Database, inmate_id: int) -> tuple[Inmate, InmateInfo]:
    """The inmate and its card; ``NotFound`` if there is no such inmate."""
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT id, prison_id, number, name, info FROM inmates WHERE id = $1", inmate_id
        )
        if row is None:
            raise NotFound(f"inmate {inmate_id}")
        return _inmate(row), info_from(sql.unjson(row["info"]))


async def inmates_in(
    db: Database, prison_ids: tuple[int, ...], *, after: int = 0, limit: int = 100
) -> list[Inmate]:
    """Inmates of these prisons by ascending id, after the id ``after``."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT id, prison_id, number, name FROM inmates"
            f" WHERE prison_id IN {ids_in(prison_ids)} AND id > $1 ORDER BY id LIMIT $2",
            after,
            limit,
        )
    return [_inmate(r) for r in rows]


async def verified_relatives(sql: Sql, inmate_id: int) -> tuple[int, ...]:
    rows = await sql.fetch(
        "SELECT DISTINCT relative_id FROM family_links"
        " WHERE inmate_id = $1 AND state = 'verified' ORDER BY relative_id",
        inmate_id,
    )
    return tuple(int(r["relative_id"]) for r in rows)


def _json(value: object) -> Any:
    return msgspec.to_builtins(value)


def _term_view(term: Term) -> dict[str, Any]:
    return {
        "original": term.original,
        "start": _json(term.start),
        "expected_release": _json(term.expected_release),
    }


def apply(
    info: InmateInfo, patch: InfoPatch, actor_id: int, now: datetime
) -> tuple[InmateInfo, tuple[Part, ...], dict[str, Any], dict[str, Any]]:
    """The card after ``patch``, the parts it changed, and the audit's before and after
    (keyed by patch field). Raises ``Refused`` on a broken rule; pure, so testable alone."""
    replace = msgspec.structs.replace
    stamp: dict[str, Any] = {"updated_at": now, "updated_by": actor_id}
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    parts: set[Part] = set()

    if patch.activity is not None:
        before["activity"], after["activity"] = info.activity.text, patch.activity
        info = replace(info, activity=replace(info.activity, text=patch.activity, **stamp))
        parts.add("activity")
    if patch.work is not None:
        before["work"], after["work"] = info.work.assignment, patch.work
        info = replace(info, work=replace(info.work, assignment=patch.work, **stamp))
        parts.add("work")
    if patch.health is not None:
        old = info.health
        before["health"] = {"status": old.status, "note": old.note}
        after["health"] = {"status": patch.health.status, "note": patch.health.note}
        info = replace(
            info,
            health=replace(old, status=patch.health.status, note=patch.health.note, **stamp),
        )
        parts.add("health")
    if patch.term is not None:
        old_term = info.term
        given = patch.term
        term = replace(
            old_term,
            original=old_term.original if given.original is None else given.original,
            start=old_term.start if given.start is None else given.start,
            expected_release=(
                old_term.expected_release
                if given.expected_release is None
                else given.expected_release
            ),
            **stamp,
        )
        if term.start is not None:
            if term.expected_release is not None and term.expected_release < term.start:
                field = "expected_release" if given.expected_release is not None else "start"
                raise Refused(
                    "dates_out_of_order",
                    f"term.{field}",
                    "the expected release date is before the start of the term",
                )
            if term.changes and term.changes[0].decided_on < term.start:
                raise Refused(
                    "dates_out_of_order",
                    "term.start",
                    "the term would start after a recorded change of it",
                )
        before["term"], after["term"] = _term_view(old_term), _term_view(term)
        info = replace(info, term=term)
        parts.add("term")
    if patch.term_change is not None:
        change = patch.term_change
        term = info.term
        if term.start is not None and change.decided_on < term.start:
            raise Refused(
                "dates_out_of_order",
                "term_change.decided_on",
                "the change is dated before the start of the term",
            )
        if term.changes and change.decided_on < term.changes[-1].decided_on:
            raise Refused(
                "dates_out_of_order",
                "term_change.decided_on",
                "the change is dated before the previous change",
            )
        if change.new_release < change.decided_on or (
            term.start is not None and change.new_release < term.start
        ):
            raise Refused(
                "dates_out_of_order",
                "term_change.new_release",
                "the new release date is before the change or the start of the term",
            )
        recorded = TermChange(
            decided_on=change.decided_on,
            kind=change.kind,
            decision=change.decision,
            new_release=change.new_release,
            recorded_at=now,
            recorded_by=actor_id,
        )
        before["expected_release"] = _json(term.expected_release)
        after["expected_release"] = _json(change.new_release)
        after["term_change"] = _json(recorded)
        info = replace(
            info,
            term=replace(
                term,
                changes=[*term.changes, recorded],
                expected_release=change.new_release,
                **stamp,
            ),
        )
        parts.add("term")
    if patch.movement is not None:
        given_movement = patch.movement
        at = given_movement.at or now
        if at > now:
            raise Refused(
                "dates_out_of_order", "movement.at", "a money movement cannot be in the future"
            )
        money = info.money
        sign = 1 if given_movement.kind == "deposit" else -1
        balance = money.balance_fen + sign * given_movement.amount_fen
        if balance < 0:
            raise Refused(
                "insufficient_balance",
                "movement.amount_fen",
                f"the spending ({given_movement.amount_fen} fen) is larger than the balance"
                f" ({money.balance_fen} fen)",
            )
        if balance > MAX_FEN:
            raise Refused(
                "invalid_request", "movement.amount_fen", "the balance would be too large"
            )
        movement = Movement(
            kind=given_movement.kind,
            at=at,
            amount_fen=given_movement.amount_fen,
            note=given_movement.note,
            balance_after_fen=balance,
            recorded_at=now,
            recorded_by=actor_id,
        )
        before["balance_fen"] = money.balance_fen
        after["balance_fen"] = balance
        after["movement"] = _json(movement)
        kept = [*money.movements, movement][-MAX_MOVEMENTS:]
        info = replace(info, money=replace(money, balance_fen=balance, movements=kept, **stamp))
        parts.add("money")
    if patch.next_visit_date is not None:
        before["next_visit_date"] = _json(info.visits.next_visit_date)
        after["next_visit_date"] = _json(patch.next_visit_date)
        info = replace(
            info, visits=replace(info.visits, next_visit_date=patch.next_visit_date, **stamp)
        )
        parts.add("visits")
    return info, tuple(p for p in PARTS if p in parts), before, after


async def update_info(
    db: Database, inmate_id: int, patch: InfoPatch, actor_id: int, now: datetime
) -> Updated:
    """Apply ``patch`` and audit it (``inmate.updated``) in one transaction.

    ``NotFound`` for no such inmate, ``Refused`` for a broken rule (nothing changed)."""
    lock = for_update(db)
    async with db.write() as sql:
        row = await sql.fetchrow(
            "SELECT id, prison_id, number, name, info FROM inmates WHERE id = $1" + lock,
            inmate_id,
        )
        if row is None:
            raise NotFound(f"inmate {inmate_id}")
        inmate = _inmate(row)
        info, parts, before, after = apply(info_from(sql.unjson(row["info"])), patch, actor_id, now)
        await sql.execute("UPDATE inmates SET info = $1 WHERE id = $2", _json(info), inmate_id)
        await audit_trail.record(
            sql,
            at=now,
            actor_id=actor_id,
            action="inmate.updated",
            object_type="inmate",
            object_id=inmate_id,
            prison_id=inmate.prison_id,
            before=before,
            after=after,
        )
        relatives = await verified_relatives(sql, inmate_id)
    return Updated(inmate, info, parts, relatives)
