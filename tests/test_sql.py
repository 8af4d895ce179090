"""The portable SQL layer (storage/sql.py) behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from storage import accounts, prisons
from storage.errors import Conflict
from storage.sql import Database


async def test_values_round_trip_and_transactions_are_atomic(store: Database) -> None:
    db = store
    prison = await prisons.add_prison(store, "GM", "Gaoming")
    moment = datetime(2026, 11, 25, 8, 30, 1, 123456, tzinfo=UTC)
    async with db.write() as sql:
        changed = await sql.execute(
            "UPDATE prisons SET visit_rules = $1, created_at = $2 WHERE id = $3",
            {"days": [1, 3], "note": "带身份证"},
            moment,
            prison.id,
        )
        assert changed == 1
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT visit_rules, created_at FROM prisons WHERE id = $1", prison.id
        )
        assert row is not None
        assert sql.unjson(row["visit_rules"]) == {"days": [1, 3], "note": "带身份证"}
        assert sql.when(row["created_at"]) == moment
        assert await sql.fetchval("SELECT count(*) FROM prisons") == 1

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.write() as sql:
            await sql.execute("UPDATE prisons SET name = $1", "changed")
            raise Boom
    assert (await prisons.prison(store, prison.id)).name == "Gaoming"  # rolled back


async def test_unique_violations_are_conflicts_and_dates_round_trip(store: Database) -> None:
    prison = await prisons.add_prison(store, "GM", "Gaoming")
    user = await accounts.add_user(store, "officer", "li", "Li", "x", [prison.id])
    with pytest.raises(Conflict):
        async with store.write() as sql:
            await sql.execute("INSERT INTO prisons (code, name) VALUES ($1, $2)", "GM", "again")
    async with store.write() as sql:
        announcement = await sql.fetchval(
            "INSERT INTO announcements (prison_id, author_id, title, body, open_day, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            prison.id,
            user.id,
            "Open day",
            "Welcome",
            date(2026, 12, 1),
            datetime.now(UTC),
        )
    async with store.read() as sql:
        day = await sql.fetchval("SELECT open_day FROM announcements WHERE id = $1", announcement)
        assert sql.day(day) == date(2026, 12, 1)
