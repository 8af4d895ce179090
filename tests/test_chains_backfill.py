"""Migration 0014 on a database that already holds messages and audit entries: every row
stored before it is chained in place (PostgreSQL in PL/pgSQL, SQLite through the functions
the adaptor registers), so ``verify`` holds at once and new rows continue the chains."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from domain.records import NewMessage
from storage import audit_trail, chains, migrations, open_database
from storage.sql import Database, utcnow
from tests import services
from tests.world import seed


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, of this test alone."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    request.getfixturevalue("pg_url")  # PostgreSQL is up (and the test is marked so)
    yield from services.throwaway_postgres()


@pytest.fixture
async def before_0014(fresh_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Database]:
    """The database migrated up to 0013 only, as a deployment was before this change (and
    0023, whose family cases today's ``seed`` reads when it opens the threads; it touches no
    chain)."""
    every = migrations.load
    monkeypatch.setattr(
        migrations,
        "load",
        lambda backend: [m for m in every(backend) if m.version < 14 or m.name == "consent"],
    )
    db = await open_database(fresh_url)
    await db.migrate()
    monkeypatch.setattr(migrations, "load", every)
    try:
        yield db
    finally:
        await db.close()


async def test_rows_stored_before_the_migration_are_chained_by_it(before_0014: Database) -> None:
    db = before_0014
    w = await seed(db)  # link decisions: audit entries
    rows = [
        (w.conv.id, 1, w.relative.id, "relative", "text", '他还好吗？\n"quoted" \\ 😀'),
        (w.conv.id, 2, w.officer.id, "officer", "note", "note \u2028"),
        (w.conv.id, 3, w.officer.id, "officer", "text", "yes"),  # claims: an audit entry
        (w.conv_b.id, 1, w.relative_b.id, "relative", "text", "old"),
    ]
    at = utcnow() - timedelta(days=3)
    async with db.write() as sql:  # as the adaptor inserted them before 0014
        for n, (conv, seq, sender, role, kind, body) in enumerate(rows):
            await sql.execute(
                "INSERT INTO messages (conversation_id, seq, sender_id, sender_role, cid, kind,"
                " body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                conv, seq, sender, role, f"c{n}", kind, body, at + timedelta(seconds=n),
            )  # fmt: skip
    # purged as 0013's retention did (today's purge also removes files, a table of 0018)
    async with db.write() as sql:
        purged = await sql.execute(
            "UPDATE messages SET body = '', purged_at = $1 WHERE created_at < $2",
            utcnow(),
            at + timedelta(microseconds=1),
        )
        await audit_trail.record(
            sql,
            at=utcnow(),
            actor_id=None,
            action="retention.purged",
            object_type="messages",
            object_id=None,
            prison_id=None,
            after={"messages": purged},
        )
    assert purged == 1
    assert "0014_chains" in await db.migrate()

    verdict = await chains.verify(db)
    assert verdict.broken is None
    assert (verdict.messages, verdict.conversations) == (4, 2)
    async with db.read() as sql:
        actions = [r["action"] for r in await sql.fetch("SELECT action FROM audit_entries")]
    assert verdict.audit_entries == len(actions) and "retention.purged" in actions, actions
    await db.append_messages([NewMessage(w.conv.id, w.relative.id, "relative", "n", "new")])
    await db.append_messages([NewMessage(w.conv_b.id, w.officer.id, "officer", "m", "hi")])
    verdict = await chains.verify(db)
    assert verdict.broken is None and verdict.messages == 6
