"""Accounts: staff and relatives, their credentials and the prisons staff belong to.

A relative's login is its phone number; its national id number is kept only as a keyed hash
(unique: one account per person) and its last four characters. A disabled account cannot
sign in and its sessions stop working (``credentials``, ``storage.sessions.session_user``).
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.records import Role, User
from storage.errors import NotFound
from storage.sql import Database, Row, Sql, clamp_limit, ints, joined


def user_select(db: Database) -> str:
    """The columns a ``User`` is read from, as ``u``, for other areas' joins."""
    return (
        "SELECT u.id, u.role, u.login, u.name, u.phone, u.password_hash,"
        f" (SELECT {joined(db, 'p.prison_id')} FROM user_prisons p WHERE p.user_id = u.id)"
        " AS prison_ids FROM users u"
    )


def user_of(row: Row) -> User:
    return User(
        row["id"], row["role"], row["login"], row["name"], ints(row["prison_ids"]), row["phone"]
    )


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
    """A relative whose login is its phone. ``Conflict`` whose ``what`` names ``login`` or
    ``id_number_hash`` when either is taken."""
    async with db.write() as sql:
        user_id = await sql.fetchval(
            "INSERT INTO users (role, login, name, password_hash, phone, id_number_hash,"
            " id_number_last4) VALUES ('relative', $1, $2, $3, $1, $4, $5) RETURNING id",
            phone,
            name,
            password_hash,
            id_number_hash,
            id_number_last4,
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


async def set_password_hash(db: Database, user_id: int, password_hash: str) -> None:
    async with db.write() as sql:
        await sql.execute(
            "UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash
        )


async def id_number_last4(db: Database, user_id: int) -> str | None:
    async with db.read() as sql:
        last4: str | None = await sql.fetchval(
            "SELECT id_number_last4 FROM users WHERE id = $1", user_id
        )
    return last4
