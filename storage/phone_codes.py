"""Codes sent by SMS: proving a phone before an account exists, and resetting a password.

Only a keyed hash of each code is stored. A code is used at most once, before it expires,
and allows ``MAX_ATTEMPTS`` wrong tries; asking again sends a new code and the newest one
is the only one that counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from storage.sql import Database, Sql, for_update

Purpose = Literal["register", "reset"]
MAX_ATTEMPTS = 5


async def issue(
    db: Database,
    phone: str,
    purpose: Purpose,
    code_hash: bytes,
    now: datetime,
    expires_at: datetime,
) -> None:
    async with db.write() as sql:
        await sql.execute(
            "INSERT INTO phone_codes (phone, purpose, code_hash, created_at, expires_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            phone,
            purpose,
            code_hash,
            now,
            expires_at,
        )


async def sent_since(db: Database, phone: str, since: datetime) -> int:
    """Codes of any purpose sent to ``phone`` since ``since`` (a per-phone limit)."""
    async with db.read() as sql:
        count: int = await sql.fetchval(
            "SELECT count(*) FROM phone_codes WHERE phone = $1 AND created_at >= $2", phone, since
        )
    return count


async def redeem(
    db: Database, sql: Sql, phone: str, purpose: Purpose, code_hash: bytes, now: datetime
) -> bool:
    """Use the newest live code for ``phone`` and ``purpose`` if ``code_hash`` is its hash,
    inside the caller's transaction (so the code is spent only if the change commits).
    A wrong try counts against the code."""
    row = await sql.fetchrow(
        "SELECT id, code_hash, attempts FROM phone_codes WHERE phone = $1 AND purpose = $2"
        " AND used_at IS NULL AND expires_at > $3 ORDER BY id DESC LIMIT 1" + for_update(db),
        phone,
        purpose,
        now,
    )
    if row is None or row["attempts"] >= MAX_ATTEMPTS:
        return False
    if bytes(row["code_hash"]) != code_hash:
        await sql.execute("UPDATE phone_codes SET attempts = attempts + 1 WHERE id = $1", row["id"])
        return False
    await sql.execute("UPDATE phone_codes SET used_at = $2 WHERE id = $1", row["id"], now)
    return True
