"""Family links: a relative's claim to be family of an inmate, and the staff's decision.

A relative asks (``claim_link``) naming a prison and an inmate number as it knows them; the
request is stored whether or not they match a real inmate, and only a verified link lets a
relative talk about, or learn anything of, that inmate. Every decision is audited in its own
transaction (``transition_link``).
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.records import FamilyLink, LinkClaim, LinkState
from storage import attachments, audit_trail
from storage.errors import Conflict, NotFound
from storage.sql import Database, Row, Sql, clamp_limit, ids_in, utcnow

LINK_SELECT = """
SELECT l.id, l.relative_id, l.prison_id, l.prison_claim, l.inmate_number, l.inmate_id,
       l.relationship, l.evidence, l.state, l.reason, l.decided_by, l.decided_at, l.created_at,
       u.name AS relative_name, u.phone AS relative_phone, u.id_number_last4, u.id_conflict,
       l.reason_code
FROM family_links l JOIN users u ON u.id = l.relative_id
"""


def _link(sql: Sql, row: Row) -> FamilyLink:
    decided_at = row["decided_at"]
    return FamilyLink(
        row["id"],
        row["relative_id"],
        row["prison_id"],
        row["prison_claim"],
        row["inmate_number"],
        row["inmate_id"],
        row["relationship"],
        row["evidence"],
        row["state"],
        row["reason"],
        row["decided_by"],
        None if decided_at is None else sql.when(decided_at),
        sql.when(row["created_at"]),
        row["relative_name"],
        row["relative_phone"],
        row["id_number_last4"],
        bool(row["id_conflict"]),
        row["reason_code"],
    )


async def claim_link(
    db: Database, claim: LinkClaim, evidence_files: Sequence[int] = ()
) -> FamilyLink:
    """Store a pending request as claimed; ``Conflict`` if the relative already has one
    pending for the same claim, or one pending or verified for the same inmate. The
    relative's uploaded ``evidence_files`` become its evidence in the same transaction
    (``NotFound``, nothing stored, unless each is the relative's and free)."""
    async with db.write() as sql:
        link_id = await sql.fetchval(
            "INSERT INTO family_links (relative_id, prison_id, prison_claim, inmate_number,"
            " inmate_id, relationship, evidence, claim_key, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            claim.relative_id,
            claim.prison_id,
            claim.prison_claim,
            claim.inmate_number,
            claim.inmate_id,
            claim.relationship,
            claim.evidence,
            claim.claim_key,
            utcnow(),
        )
        await attachments.bind_to_link(
            sql, evidence_files, owner_id=claim.relative_id, link_id=link_id
        )
    return await link(db, link_id)


async def link(db: Database, link_id: int) -> FamilyLink:
    async with db.read() as sql:
        row = await sql.fetchrow(LINK_SELECT + " WHERE l.id = $1", link_id)
        if row is None:
            raise NotFound(f"link {link_id}")
        return _link(sql, row)


async def links(
    db: Database,
    *,
    relative_id: int | None = None,
    prison_ids: Sequence[int] | None = None,
    state: LinkState | None = None,
    limit: int = 100,
) -> list[FamilyLink]:
    """Links by ascending id, filtered by whichever of the arguments are given."""
    where = " WHERE (CAST($1 AS bigint) IS NULL OR l.relative_id = $1)"
    where += " AND (CAST($2 AS text) IS NULL OR l.state = $2)"
    if prison_ids is not None:
        where += f" AND l.prison_id IN {ids_in(prison_ids)}"
    async with db.read() as sql:
        rows = await sql.fetch(
            LINK_SELECT + where + " ORDER BY l.id LIMIT $3", relative_id, state, clamp_limit(limit)
        )
        return [_link(sql, r) for r in rows]


async def verified_inmates(db: Database, relative_id: int) -> frozenset[int]:
    """The inmates this relative is verified family of."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT inmate_id FROM family_links WHERE relative_id = $1 AND state = 'verified'",
            relative_id,
        )
    return frozenset(r["inmate_id"] for r in rows)


async def transition_link(
    db: Database,
    link_id: int,
    from_state: LinkState,
    to_state: LinkState,
    decided_by: int,
    reason: str | None,
    reason_code: str | None = None,
) -> FamilyLink:
    """Move a link from ``from_state`` to ``to_state`` and append its audit entry
    (``link.<to_state>``, actor ``decided_by``, before and after) in one transaction.
    ``NotFound`` if there is no such link, ``Conflict("state")`` if it is not in
    ``from_state``."""
    now = utcnow()
    async with db.write() as sql:
        moved = await sql.fetchrow(
            "UPDATE family_links SET state = $3, decided_by = $4, reason = $5, decided_at = $6,"
            " reason_code = $7 WHERE id = $1 AND state = $2 RETURNING prison_id",
            link_id,
            from_state,
            to_state,
            decided_by,
            reason,
            now,
            reason_code,
        )
        if moved is not None:
            await audit_trail.record(
                sql,
                at=now,
                actor_id=decided_by,
                action=f"link.{to_state}",
                object_type="family_link",
                object_id=link_id,
                prison_id=moved["prison_id"],
                before={"state": from_state},
                after={"state": to_state, "reason": reason}
                | ({"reason_code": reason_code} if reason_code is not None else {}),
            )
    found = await link(db, link_id)
    if moved is None:
        raise Conflict("state")
    return found


async def request_link(
    db: Database, relative_id: int, inmate_id: int, relationship: str, evidence: str
) -> int:
    """Seeding (demo, benchmarks, tests): a pending request for a known inmate, its id."""
    async with db.write() as sql:
        link_id: int | None = await sql.fetchval(
            "INSERT INTO family_links (relative_id, prison_id, prison_claim, inmate_number,"
            " inmate_id, relationship, evidence)"
            " SELECT $1, prison_id, CAST(prison_id AS text), number, id, $2, $3"
            " FROM inmates WHERE id = $4 RETURNING id",
            relative_id,
            relationship,
            evidence,
            inmate_id,
        )
    if link_id is None:
        raise NotFound(f"inmate {inmate_id}")
    return link_id


async def decide_link(
    db: Database, link_id: int, state: LinkState, decided_by: int, reason: str | None
) -> None:
    """Seeding (demo, benchmarks, tests): set a link's state whatever it was, unaudited.
    Staff decisions go through ``transition_link``."""
    async with db.write() as sql:
        done = await sql.execute(
            "UPDATE family_links SET state = $2, decided_by = $3, reason = $4, decided_at = $5"
            " WHERE id = $1",
            link_id,
            state,
            decided_by,
            reason,
            utcnow(),
        )
    if done == 0:
        raise NotFound(f"link {link_id}")
