"""Anchors: each day, the heads of every chain combined into one digest, kept and published.

The anchor of a day (UTC) is taken the first time that day it is asked for (the server's
daily task, or ``kinline anchor``), and never again: asking again that day returns the one
kept, so processes racing each other store one. It records the digest
(``domain.chain.anchor_digest``: every conversation's head with its id, then the audit
head) and the positions it covers (each conversation's seq, the audit chain's length), so
``storage.chains.verify`` can recompute it later from the rows. The table refuses updates
and deletes (migration 0014); anyone who saved a published digest can tell a history
rewritten with recomputed hashes, since the digest of that day then differs.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from domain import chain
from storage.sql import Database, Sql

PUBLISHED = 30  # days shown on the public prison page; every anchor is kept


class Anchor(msgspec.Struct, frozen=True):
    day: date
    digest: str  # lowercase hex


async def _kept(sql: Sql, day: date) -> Anchor | None:
    row = await sql.fetchrow("SELECT day, digest FROM chain_anchors WHERE day = $1", day)
    return None if row is None else Anchor(sql.day(row["day"]), bytes(row["digest"]).hex())


async def anchor(db: Database, now: datetime) -> tuple[Anchor, bool]:
    """The anchor of ``now``'s day (UTC), taken now unless kept already; whether it is new."""
    day = now.date()
    async with db.read() as sql:
        kept = await _kept(sql, day)
    if kept is not None:
        return kept, False
    async with db.write() as sql:
        rows = await sql.fetch(
            "SELECT id, last_seq, chain_head FROM conversations WHERE last_seq > 0 ORDER BY id"
        )
        audit = await sql.fetchrow("SELECT n, head FROM audit_chain")
        audit_n, audit_head = (0, chain.GENESIS) if audit is None else (audit["n"], audit["head"])
        digest = chain.anchor_digest(
            [(r["id"], bytes(r["chain_head"])) for r in rows], bytes(audit_head)
        )
        created = await sql.execute(
            "INSERT INTO chain_anchors (day, digest, heads, audit_n, at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (day) DO NOTHING",
            day,
            digest,
            {str(r["id"]): r["last_seq"] for r in rows},
            audit_n,
            now,
        )
        kept = await _kept(sql, day)
    assert kept is not None
    return kept, created > 0


async def anchors(db: Database, limit: int = PUBLISHED) -> list[Anchor]:
    """The latest anchors, newest first."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT day, digest FROM chain_anchors ORDER BY day DESC LIMIT $1", limit
        )
        return [Anchor(sql.day(r["day"]), bytes(r["digest"]).hex()) for r in rows]
