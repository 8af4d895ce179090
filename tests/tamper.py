"""Changing stored rows behind the service's back, as a database owner can: what the hash
chains must tell (tests/test_chains.py), and how a test backdates rows for its setup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from storage.sql import Database, Sql


@asynccontextmanager
async def triggers_off(store: Database, table: str) -> AsyncIterator[Sql]:
    """A transaction in which ``table``'s triggers do not fire: what a database owner can do
    behind the service's back (PostgreSQL: replica role; SQLite: drop and recreate them)."""
    async with store.write() as sql:
        if store.dialect == "postgres":
            await sql.execute("SET LOCAL session_replication_role = replica")
            yield sql
            return
        kept = [
            r["sql"]
            for r in await sql.fetch(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = $1", table
            )
        ]
        for name in await sql.fetch(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = $1", table
        ):
            await sql.execute(f"DROP TRIGGER {name['name']}")
        yield sql
        for statement in kept:
            await sql.execute(statement)
