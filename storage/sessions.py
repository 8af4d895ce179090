"""Sign-in sessions. Tokens are stored only as hashes; a session ends when it expires, when
it is revoked, or when its user is disabled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.records import User
from storage.accounts import user_of, user_select
from storage.sql import Database, Sql, any_of, utcnow


async def create_session(
    db: Database, user_id: int, token_hash: bytes, expires_at: datetime
) -> None:
    async with db.write() as sql:
        await sql.execute(
            "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, $3)",
            user_id,
            token_hash,
            expires_at,
        )


async def session_user(db: Database, token_hash: bytes, now: datetime) -> User | None:
    """The user of a live (unexpired, unrevoked) session of an enabled account, else None."""
    async with db.read() as sql:
        row = await sql.fetchrow(
            user_select(db) + " JOIN sessions s ON s.user_id = u.id WHERE s.token_hash = $1"
            " AND s.revoked_at IS NULL AND s.expires_at > $2 AND NOT u.disabled",
            token_hash,
            now,
        )
    return None if row is None else user_of(row)


async def session_users(
    db: Database, token_hashes: Sequence[bytes], now: datetime
) -> dict[bytes, User]:
    """:func:`session_user` for many tokens in one read: the live ones' users by hash."""
    matches, args = any_of(db, "s.token_hash", token_hashes, first=2)
    async with db.read() as sql:
        rows = await sql.fetch(
            user_select(db).replace(" FROM users u", ", s.token_hash FROM users u", 1)
            + f" JOIN sessions s ON s.user_id = u.id WHERE {matches}"
            " AND s.revoked_at IS NULL AND s.expires_at > $1 AND NOT u.disabled",
            now,
            *args,
        )
    return {bytes(r["token_hash"]): user_of(r) for r in rows}


async def revoke_session(db: Database, token_hash: bytes) -> None:
    async with db.write() as sql:
        await sql.execute(
            "UPDATE sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
            token_hash,
            utcnow(),
        )


async def revoke_user_sessions_in(sql: Sql, user_id: int, keep: bytes | None = None) -> int:
    """Revoke every live session of a user inside the caller's transaction (to audit it
    there); the number revoked. All but the session whose token hash is ``keep`` when it is
    given (a password change)."""
    if keep is None:
        return await sql.execute(
            "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            user_id,
            utcnow(),
        )
    return await sql.execute(
        "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL"
        " AND token_hash <> $3",
        user_id,
        utcnow(),
        keep,
    )
