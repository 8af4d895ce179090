"""Accounts: staff and relatives, their credentials and the prisons staff belong to.

A relative's login is its phone number; its national id number is kept only as a keyed hash
(unique: one account per person) and its last four characters. A disabled account cannot
sign in and its sessions stop working (``credentials``, ``storage.sessions.session_user``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import cast

from domain.records import Role, User
from storage.errors import NotFound
from storage.sql import Database, Row, Sql, clamp_limit, ids_in, ints, joined


def user_select(db: Database) -> str:
    """The columns a ``User`` is read from, as ``u``, for other areas' joins."""
    return (
        "SELECT u.id, u.role, u.login, u.name, u.phone, u.password_hash,"
        f" (SELECT {joined(db, 'p.prison_id')} FROM user_prisons p WHERE p.user_id = u.id)"
        " AS prison_ids FROM users u"
    )


def user_of(row: Row) -> User:
    # the role interned: a few values, held by every socket's user (one string each, else)
    role = cast(Role, sys.intern(row["role"]))
    return User(row["id"], role, row["login"], row["name"], ints(row["prison_ids"]), row["phone"])


async def add_user(
    db: Database,
    role: Role,
    login: str,
    name: str,
    password_hash: str,
    prison_ids: Sequence[int] = (),
    phone: str | None = None,
) -> User:
    """A staff account (or any role, for tests and the demo); ``Conflict`` on a taken login."""
    async with db.write() as sql:
        return await insert_user(sql, role, login, name, password_hash, prison_ids, phone)


async def insert_user(
    sql: Sql,
    role: Role,
    login: str,
    name: str,
    password_hash: str,
    prison_ids: Sequence[int] = (),
    phone: str | None = None,
) -> User:
    """``add_user`` inside the caller's transaction (to audit it there)."""
    prisons = tuple(sorted(set(prison_ids)))
    user_id = await sql.fetchval(
        "INSERT INTO users (role, login, name, password_hash, phone)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        role,
        login,
        name,
        password_hash,
        phone,
    )
    for prison_id in prisons:
        await sql.execute(
            "INSERT INTO user_prisons (user_id, prison_id) VALUES ($1, $2)", user_id, prison_id
        )
    return User(user_id, role, login, name, prisons, phone)


async def add_relative(
    db: Database,
    phone: str,
    name: str,
    password_hash: str,
    id_number_hash: bytes,
    id_number_last4: str,
) -> User:
    """A relative whose login is its phone; ``Conflict("login")`` when the phone is taken.
    An id number already held by another account does not stop it: the account is made
    with the number as a claim under review (``id_conflict``, migration 0012)."""
    async with db.write() as sql:
        return await insert_relative(
            sql, phone, name, password_hash, id_number_hash, id_number_last4
        )


async def insert_relative(
    sql: Sql,
    phone: str,
    name: str,
    password_hash: str,
    id_number_hash: bytes,
    id_number_last4: str,
) -> User:
    """``add_relative`` inside the caller's transaction (with the phone's code spent)."""
    taken = await sql.fetchval(
        "SELECT 1 FROM users WHERE id_number_hash = $1 OR id_number_claim = $1",
        id_number_hash,
    )
    user_id = await sql.fetchval(
        "INSERT INTO users (role, login, name, password_hash, phone, id_number_hash,"
        " id_number_claim, id_conflict, id_number_last4)"
        " VALUES ('relative', $1, $2, $3, $1, $4, $5, $6, $7) RETURNING id",
        phone,
        name,
        password_hash,
        None if taken else id_number_hash,
        id_number_hash if taken else None,
        bool(taken),
        id_number_last4,
    )
    if taken:  # the earlier account is under review as well
        await sql.execute(
            "UPDATE users SET id_conflict = $2 WHERE id_number_hash = $1",
            id_number_hash,
            True,
        )
    return User(user_id, "relative", phone, name, (), phone)


async def user(db: Database, user_id: int) -> User:
    async with db.read() as sql:
        row = await sql.fetchrow(user_select(db) + " WHERE u.id = $1", user_id)
    if row is None:
        raise NotFound(f"user {user_id}")
    return user_of(row)


async def users(db: Database, *, role: Role | None = None, limit: int = 100) -> list[User]:
    """Users by ascending id, optionally of one role."""
    async with db.read() as sql:
        rows = await sql.fetch(
            user_select(db) + " WHERE (CAST($1 AS text) IS NULL OR u.role = $1)"
            " ORDER BY u.id LIMIT $2",
            role,
            clamp_limit(limit),
        )
    return [user_of(r) for r in rows]


async def credentials(db: Database, login: str) -> tuple[User, str]:
    """The enabled user with this login and its password hash; ``NotFound`` if none."""
    async with db.read() as sql:
        row = await sql.fetchrow(user_select(db) + " WHERE u.login = $1 AND NOT u.disabled", login)
    if row is None:
        raise NotFound("login")
    return user_of(row), row["password_hash"]


async def disabled_password_hash(db: Database, login: str) -> str | None:
    """The password hash of the *disabled* account with this login, if there is one: a login
    with the right password is then told the account is disabled, a wrong one learns nothing."""
    async with db.read() as sql:
        found: str | None = await sql.fetchval(
            "SELECT password_hash FROM users WHERE login = $1 AND disabled", login
        )
    return found


async def set_password_hash(db: Database, user_id: int, password_hash: str) -> None:
    async with db.write() as sql:
        await write_password_hash(sql, user_id, password_hash)


async def write_password_hash(sql: Sql, user_id: int, password_hash: str) -> None:
    """``set_password_hash`` inside the caller's transaction (to audit it there)."""
    await sql.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def password_hash(db: Database, user_id: int) -> str:
    """A user's stored password hash (to check its old password before a change)."""
    async with db.read() as sql:
        found: str | None = await sql.fetchval(
            "SELECT password_hash FROM users WHERE id = $1", user_id
        )
    if found is None:
        raise NotFound(f"user {user_id}")
    return found


async def set_disabled(sql: Sql, user_id: int, disabled: bool) -> bool:
    """Disable or re-enable an account inside the caller's transaction; whether it changed."""
    changed = await sql.execute(
        "UPDATE users SET disabled = $2 WHERE id = $1 AND disabled <> $2", user_id, disabled
    )
    return changed > 0


async def disabled_ids(db: Database, user_ids: Sequence[int]) -> frozenset[int]:
    """Which of these accounts are disabled."""
    async with db.read() as sql:
        rows = await sql.fetch(f"SELECT id FROM users WHERE disabled AND id IN {ids_in(user_ids)}")
    return frozenset(r["id"] for r in rows)


async def is_disabled(db: Database, user_id: int) -> bool:
    async with db.read() as sql:
        return bool(await sql.fetchval("SELECT disabled FROM users WHERE id = $1", user_id))


async def update_staff(sql: Sql, user_id: int, name: str, prison_ids: Sequence[int]) -> None:
    """A staff account's name and prisons, inside the caller's transaction."""
    await sql.execute("UPDATE users SET name = $2 WHERE id = $1", user_id, name)
    await sql.execute("DELETE FROM user_prisons WHERE user_id = $1", user_id)
    for prison_id in sorted(set(prison_ids)):
        await sql.execute(
            "INSERT INTO user_prisons (user_id, prison_id) VALUES ($1, $2)", user_id, prison_id
        )


async def id_number_last4(db: Database, user_id: int) -> str | None:
    async with db.read() as sql:
        last4: str | None = await sql.fetchval(
            "SELECT id_number_last4 FROM users WHERE id = $1", user_id
        )
    return last4
