"""Prisons and their inmates, as the bureau registers them."""

from __future__ import annotations

from domain.records import Inmate, Prison
from storage.errors import NotFound
from storage.sql import Database, Row, Sql

_PRISON = "SELECT id, code, name, city FROM prisons"
_INMATE = "SELECT id, prison_id, number, name FROM inmates"


def _prison(row: Row) -> Prison:
    return Prison(row["id"], row["code"], row["name"], row["city"])


def _inmate(row: Row) -> Inmate:
    return Inmate(row["id"], row["prison_id"], row["number"], row["name"])


async def add_prison(db: Database, code: str, name: str, city: str = "") -> Prison:
    """A new prison; ``Conflict`` when the code is taken."""
    async with db.write() as sql:
        return await insert_prison(sql, code, name, city)


async def insert_prison(sql: Sql, code: str, name: str, city: str = "") -> Prison:
    """``add_prison`` inside the caller's transaction (to audit it there)."""
    prison_id = await sql.fetchval(
        "INSERT INTO prisons (code, name, city) VALUES ($1, $2, $3) RETURNING id",
        code,
        name,
        city,
    )
    return Prison(prison_id, code, name, city)


async def prison(db: Database, prison_id: int) -> Prison:
    async with db.read() as sql:
        row = await sql.fetchrow(_PRISON + " WHERE id = $1", prison_id)
    if row is None:
        raise NotFound(f"prison {prison_id}")
    return _prison(row)


async def prison_by_code(db: Database, code: str) -> Prison:
    async with db.read() as sql:
        row = await sql.fetchrow(_PRISON + " WHERE code = $1", code)
    if row is None:
        raise NotFound(f"prison {code}")
    return _prison(row)


async def prisons(db: Database) -> list[Prison]:
    async with db.read() as sql:
        return [_prison(r) for r in await sql.fetch(_PRISON + " ORDER BY id")]


async def add_inmate(db: Database, prison_id: int, number: str, name: str) -> Inmate:
    """A new inmate; ``Conflict`` when the prison already has that number."""
    async with db.write() as sql:
        inmate_id = await sql.fetchval(
            "INSERT INTO inmates (prison_id, number, name) VALUES ($1, $2, $3) RETURNING id",
            prison_id,
            number,
            name,
        )
    return Inmate(inmate_id, prison_id, number, name)


async def inmate(db: Database, inmate_id: int) -> Inmate:
    async with db.read() as sql:
        row = await sql.fetchrow(_INMATE + " WHERE id = $1", inmate_id)
    if row is None:
        raise NotFound(f"inmate {inmate_id}")
    return _inmate(row)


async def inmate_by_number(db: Database, prison_id: int, number: str) -> Inmate | None:
    async with db.read() as sql:
        row = await sql.fetchrow(
            _INMATE + " WHERE prison_id = $1 AND number = $2", prison_id, number
        )
    return None if row is None else _inmate(row)
