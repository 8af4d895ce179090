"""Consent scopes and the family case: what an inmate agreed to, as an officer recorded it.

- A **consent scope** says which categories of the inmate's card (activity, work, health,
  term, money, visits) one verified relative may learn. ``record_consent`` writes the
  decision (the day the inmate decided, who witnessed it, an optional note) and its audit
  entry (``consent.recorded``, before and after) in one transaction. An inmate with no
  recorded decision for a relative shares the deployment's default
  (``KINLINE_CONSENT_DEFAULT``), which the caller applies: storage only says "none recorded".
- A **family case** makes the inmate's verified relatives share one conversation.
  ``set_family_case`` records the agreement (audited ``inmate.family_case_set``). The shared
  thread is an existing conversation, the one the first verified relative already has (or a
  new one for it), so life cycle, figures and ratings work per question exactly as before; the
  other verified relatives become members from the thread's last seq at that moment
  (``family_members.joined_seq``), and a relative verified later joins from the seq of its
  verification (a trigger on ``family_links``, migration 0023, in the verification's own
  transaction). Members see nothing before their join seq; whoever is no longer verified
  sees nothing at all (``server.policy.relative_sees``). Turned off, the members other than
  the thread's first relative lose the thread (the inmate withdrew the sharing) and talk in
  their own threads again; turned on again, the same thread comes back with the same joins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from domain.records import CONSENT_CATEGORIES, Consent, ConsentCategory, FamilyCase
from storage import audit_trail
from storage.errors import Conflict, NotFound
from storage.sql import Database, Row, Sql, for_update

_CONSENT = (
    "SELECT inmate_id, relative_id, categories, decided_on, witness, note, recorded_by,"
    " recorded_at FROM consent_scopes"
)
_CASE = (
    "SELECT inmate_id, conversation_id, enabled, decided_on, witness, note, recorded_by,"
    " recorded_at FROM family_cases"
)


def ordered(categories: Iterable[str]) -> tuple[ConsentCategory, ...]:
    """The known categories among ``categories``, once each, in card order."""
    given = set(categories)
    return tuple(c for c in CONSENT_CATEGORIES if c in given)


def _consent(sql: Sql, row: Row) -> Consent:
    text = row["categories"] or ""
    return Consent(
        inmate_id=row["inmate_id"],
        relative_id=row["relative_id"],
        categories=ordered(text.split(",")),
        decided_on=sql.day(row["decided_on"]),
        witness=row["witness"],
        note=row["note"],
        recorded_by=row["recorded_by"],
        recorded_at=sql.when(row["recorded_at"]),
    )


def _case(sql: Sql, row: Row) -> FamilyCase:
    return FamilyCase(
        inmate_id=row["inmate_id"],
        conversation_id=row["conversation_id"],
        enabled=bool(row["enabled"]),
        decided_on=sql.day(row["decided_on"]),
        witness=row["witness"],
        note=row["note"],
        recorded_by=row["recorded_by"],
        recorded_at=sql.when(row["recorded_at"]),
    )


async def _locked_inmate(db: Database, sql: Sql, inmate_id: int) -> int:
    """Lock the inmate's row (one decision about it at a time); its prison."""
    prison = await sql.fetchval(
        "SELECT prison_id FROM inmates WHERE id = $1" + for_update(db), inmate_id
    )
    if prison is None:
        raise NotFound(f"inmate {inmate_id}")
    return int(prison)


async def _verified(sql: Sql, inmate_id: int) -> list[int]:
    rows = await sql.fetch(
        "SELECT DISTINCT relative_id FROM family_links"
        " WHERE inmate_id = $1 AND state = 'verified' ORDER BY relative_id",
        inmate_id,
    )
    return [int(r["relative_id"]) for r in rows]


# -- consent scopes ----------------------------------------------------------------------------


async def record_consent(
    db: Database,
    *,
    inmate_id: int,
    relative_id: int,
    categories: Sequence[str],
    decided_on: date,
    witness: str,
    note: str,
    actor_id: int,
    now: datetime,
) -> Consent:
    """Record the inmate's decision for one relative and audit it, in one transaction.
    ``NotFound`` for no such inmate; ``Conflict("not_verified")`` if the relative is not a
    verified relative of the inmate (there is nothing to share with anyone else)."""
    chosen = ordered(categories)
    async with db.write() as sql:
        prison = await _locked_inmate(db, sql, inmate_id)
        if relative_id not in await _verified(sql, inmate_id):
            raise Conflict("not_verified")
        old = await sql.fetchrow(
            _CONSENT + " WHERE inmate_id = $1 AND relative_id = $2", inmate_id, relative_id
        )
        await sql.execute(
            "INSERT INTO consent_scopes (inmate_id, relative_id, categories, decided_on,"
            " witness, note, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (inmate_id, relative_id) DO UPDATE SET"
            " categories = excluded.categories, decided_on = excluded.decided_on,"
            " witness = excluded.witness, note = excluded.note,"
            " recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at",
            inmate_id,
            relative_id,
            ",".join(chosen),
            decided_on,
            witness,
            note,
            actor_id,
            now,
        )
        before: dict[str, Any] | None = None
        if old is not None:
            previous = _consent(sql, old)
            before = {"relative_id": relative_id, "categories": list(previous.categories)}
        await audit_trail.record(
            sql,
            at=now,
            actor_id=actor_id,
            action="consent.recorded",
            object_type="inmate",
            object_id=inmate_id,
            prison_id=prison,
            before=before,
            after={
                "relative_id": relative_id,
                "categories": list(chosen),
                "decided_on": decided_on.isoformat(),
                "witness": witness,
                "note": note,
            },
        )
    return Consent(inmate_id, relative_id, chosen, decided_on, witness, note, actor_id, now)


async def consents(db: Database, inmate_id: int) -> dict[int, Consent]:
    """The recorded decisions about an inmate, by relative."""
    async with db.read() as sql:
        rows = await sql.fetch(_CONSENT + " WHERE inmate_id = $1", inmate_id)
        return {int(r["relative_id"]): _consent(sql, r) for r in rows}


async def consent_of(db: Database, inmate_id: int, relative_id: int) -> Consent | None:
    async with db.read() as sql:
        row = await sql.fetchrow(
            _CONSENT + " WHERE inmate_id = $1 AND relative_id = $2", inmate_id, relative_id
        )
        return None if row is None else _consent(sql, row)


async def verified_relatives(db: Database, inmate_id: int) -> list[tuple[int, str, str]]:
    """The inmate's verified relatives, each ``(id, name, relationship)``, by id."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT l.relative_id, u.name, l.relationship FROM family_links l"
            " JOIN users u ON u.id = l.relative_id"
            " WHERE l.inmate_id = $1 AND l.state = 'verified' ORDER BY l.relative_id",
            inmate_id,
        )
    return [(int(r["relative_id"]), r["name"], r["relationship"]) for r in rows]


# -- the family case ---------------------------------------------------------------------------


async def family_case(db: Database, inmate_id: int) -> FamilyCase | None:
    async with db.read() as sql:
        row = await sql.fetchrow(_CASE + " WHERE inmate_id = $1", inmate_id)
        return None if row is None else _case(sql, row)


async def _first_thread(sql: Sql, inmate_id: int, verified: list[int], now: datetime) -> int:
    """The conversation that becomes the shared thread: the oldest one a verified relative
    already has about the inmate, or a new one for the first verified relative."""
    found = await sql.fetchval(
        "SELECT c.id FROM conversations c JOIN family_links l"
        " ON l.relative_id = c.relative_id AND l.inmate_id = c.inmate_id"
        " AND l.state = 'verified' WHERE c.inmate_id = $1 ORDER BY c.id LIMIT 1",
        inmate_id,
    )
    if found is not None:
        return int(found)
    await sql.execute(
        "INSERT INTO conversations (prison_id, inmate_id, relative_id, created_at, updated_at)"
        " SELECT prison_id, id, $1, $3, $3 FROM inmates WHERE id = $2"
        " ON CONFLICT (relative_id, inmate_id) DO NOTHING",
        verified[0],
        inmate_id,
        now,
    )
    made: int = await sql.fetchval(
        "SELECT id FROM conversations WHERE relative_id = $1 AND inmate_id = $2",
        verified[0],
        inmate_id,
    )
    return made


async def set_family_case(
    db: Database,
    *,
    inmate_id: int,
    enabled: bool,
    decided_on: date,
    witness: str,
    note: str,
    actor_id: int,
    now: datetime,
) -> FamilyCase:
    """Record the inmate's agreement to (or withdrawal of) a family case, audited, in one
    transaction. ``NotFound``: no such inmate; ``Conflict("no_verified_relative")``: a case
    for an inmate with no verified relative; ``Conflict("no_family_case")``: turning off a
    case never agreed to."""
    async with db.write() as sql:
        prison = await _locked_inmate(db, sql, inmate_id)
        old = await sql.fetchrow(_CASE + " WHERE inmate_id = $1", inmate_id)
        verified = await _verified(sql, inmate_id)
        if old is None:
            if not enabled:
                raise Conflict("no_family_case")
            if not verified:
                raise Conflict("no_verified_relative")
            conv_id = await _first_thread(sql, inmate_id, verified, now)
            await sql.execute(
                "INSERT INTO family_cases (inmate_id, conversation_id, enabled, decided_on,"
                " witness, note, recorded_by, recorded_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                inmate_id,
                conv_id,
                True,
                decided_on,
                witness,
                note,
                actor_id,
                now,
            )
        else:
            conv_id = int(old["conversation_id"])
            await sql.execute(
                "UPDATE family_cases SET enabled = $2, decided_on = $3, witness = $4,"
                " note = $5, recorded_by = $6, recorded_at = $7 WHERE inmate_id = $1",
                inmate_id,
                enabled,
                decided_on,
                witness,
                note,
                actor_id,
                now,
            )
        if enabled:  # every verified relative is a member; those already members keep their join
            await sql.execute(
                "INSERT INTO family_members (conversation_id, relative_id, joined_seq, joined_at)"
                " SELECT c.id, l.relative_id, c.last_seq, $3 FROM conversations c"
                " JOIN family_links l ON l.inmate_id = c.inmate_id AND l.state = 'verified'"
                " WHERE c.id = $1 AND l.relative_id <> c.relative_id AND c.inmate_id = $2"
                " ON CONFLICT (conversation_id, relative_id) DO NOTHING",
                conv_id,
                inmate_id,
                now,
            )
        await audit_trail.record(
            sql,
            at=now,
            actor_id=actor_id,
            action="inmate.family_case_set",
            object_type="inmate",
            object_id=inmate_id,
            prison_id=prison,
            before=None if old is None else {"enabled": bool(old["enabled"])},
            after={
                "enabled": enabled,
                "conversation_id": conv_id,
                "decided_on": decided_on.isoformat(),
                "witness": witness,
                "note": note,
            },
        )
    return FamilyCase(inmate_id, conv_id, enabled, decided_on, witness, note, actor_id, now)


async def family_thread(sql: Sql, relative_id: int, inmate_id: int) -> int | None:
    """The shared thread this relative talks in about the inmate, if there is an enabled
    family case it belongs to (its first relative or a member); else ``None``."""
    value = await sql.fetchval(
        "SELECT c.id FROM family_cases f JOIN conversations c ON c.id = f.conversation_id"
        " WHERE f.inmate_id = $2 AND f.enabled AND (c.relative_id = $1 OR EXISTS ("
        " SELECT 1 FROM family_members m WHERE m.conversation_id = c.id"
        " AND m.relative_id = $1))",
        relative_id,
        inmate_id,
    )
    return None if value is None else int(value)


async def thread_readers(db: Database, conv_id: int) -> tuple[int, ...]:
    """The relatives who read a conversation now: its relative if verified for the inmate,
    and, for the thread of an enabled family case, its verified members."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT c.relative_id AS relative_id FROM conversations c JOIN family_links l"
            " ON l.relative_id = c.relative_id AND l.inmate_id = c.inmate_id"
            " AND l.state = 'verified' WHERE c.id = $1"
            " UNION SELECT m.relative_id AS relative_id FROM family_members m"
            " JOIN conversations c ON c.id = m.conversation_id"
            " JOIN family_cases f ON f.conversation_id = c.id AND f.enabled"
            " JOIN family_links l ON l.relative_id = m.relative_id"
            " AND l.inmate_id = c.inmate_id AND l.state = 'verified'"
            " WHERE m.conversation_id = $1",
            conv_id,
        )
    return tuple(sorted({int(r["relative_id"]) for r in rows}))
