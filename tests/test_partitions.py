"""``messages`` hash-partitioned by conversation on PostgreSQL (migration 0021).

The conversion keeps every row, key, index, trigger and reference of the table it finds, and
the queries that name one conversation (a history page, a resume after a cursor, the append's
lookups) touch one partition: shown with the plans PostgreSQL actually ran, captured by
auto_explain (nested statements included, so the statements inside kinline_append are seen).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from domain.records import NewMessage
from storage import messages, migrations
from storage.postgres import PostgresDatabase
from tests import services
from tests.world import World, seed

PARTITIONED = 21
PARTS = 16


@pytest.fixture
def fresh_url(pg_url: str) -> Iterator[str]:
    """A database of this test's own (it migrates step by step)."""
    yield from services.throwaway_postgres()


async def _table_facts(conn: asyncpg.Connection) -> dict[str, Any]:
    """What must survive the conversion: rows, index and trigger names, references in."""
    return {
        "rows": [
            json.loads(r["row"])
            for r in await conn.fetch("SELECT to_jsonb(m)::text AS row FROM messages m ORDER BY id")
        ],
        "indexes": {
            r["indexname"]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'messages'"
            )
        },
        "triggers": {
            r["tgname"]
            for r in await conn.fetch(
                "SELECT tgname FROM pg_trigger"
                " WHERE tgrelid = 'messages'::regclass AND NOT tgisinternal"
            )
        },
        "statistics": {
            (r["relname"], r["attnum"], r["attstattarget"])
            for r in await conn.fetch(
                "SELECT c.relname, a.attnum, a.attstattarget FROM pg_attribute a"
                " JOIN pg_class c ON c.oid = a.attrelid"
                " WHERE a.attstattarget >= 0 AND a.attnum > 0 AND (c.oid = 'messages'::regclass"
                " OR c.oid IN (SELECT indexrelid FROM pg_index"
                " WHERE indrelid = 'messages'::regclass))"
            )
        },
        "references": {
            r["conname"]
            for r in await conn.fetch(
                "SELECT conname FROM pg_constraint"
                " WHERE confrelid = 'messages'::regclass AND contype = 'f'"
            )
        },
    }


async def test_the_conversion_keeps_rows_keys_triggers_and_references(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = migrations.load  # up to the conversion: what later migrations add is not its work
    monkeypatch.setattr(
        migrations, "load", lambda backend: [m for m in every(backend) if m.version <= PARTITIONED]
    )
    conn = await asyncpg.connect(fresh_url)
    try:
        # The schema as it was before 0021, recorded as applied, with history in it.
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for m in every("postgres"):
            if m.version < PARTITIONED:
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    m.version,
                    m.name,
                )
        await conn.execute(
            """
            INSERT INTO prisons (code, name) VALUES ('GM', 'Gaoming');
            INSERT INTO users (role, login, name, password_hash)
                VALUES ('relative', 'r', 'R', 'x'), ('officer', 'o', 'O', 'x');
            INSERT INTO inmates (prison_id, number, name)
                SELECT 1, 'N' || g, 'I' || g FROM generate_series(1, 40) g;
            INSERT INTO conversations (prison_id, inmate_id, relative_id)
                SELECT 1, g, 1 FROM generate_series(1, 40) g;
            INSERT INTO messages (conversation_id, seq, sender_id, sender_role, cid, kind, body)
                SELECT c, s, CASE WHEN s % 2 = 0 THEN 2 ELSE 1 END,
                       CASE WHEN s % 2 = 0 THEN 'officer' ELSE 'relative' END,
                       c || '-' || s, 'text', 'message ' || s
                  FROM generate_series(1, 40) c, generate_series(1, 25) s ORDER BY c, s;
            -- a table of some later feature that references messages by id alone
            CREATE TABLE message_marks (
                message_id bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                mark       text NOT NULL
            );
            INSERT INTO message_marks SELECT id, 'seen' FROM messages WHERE seq = 3;
            ALTER TABLE messages ALTER COLUMN sender_id SET STATISTICS 500;
            """
        )
        before = await _table_facts(conn)
    finally:
        await conn.close()

    db = await PostgresDatabase.open(fresh_url)
    try:
        assert [a for a in await db.migrate() if a.startswith("0021")] == [
            "0021_partitioned_messages"
        ]
        conn = await asyncpg.connect(fresh_url)
        try:
            after = await _table_facts(conn)
            assert after["rows"] == before["rows"]  # every row, every column, unchanged
            assert after["indexes"] == before["indexes"]
            assert after["triggers"] == before["triggers"]
            assert after["references"] == before["references"]
            assert after["statistics"] == before["statistics"]
            assert ("messages", 4, 500) in after["statistics"]  # sender_id's target
            kind = await conn.fetchval("SELECT relkind FROM pg_class WHERE relname = 'messages'")
            assert kind == b"p" or kind == "p"
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM pg_inherits WHERE inhparent = 'messages'::regclass"
                )
                == PARTS
            )
            counts = [
                r["n"]
                for r in await conn.fetch(
                    "SELECT count(*) AS n FROM messages GROUP BY tableoid ORDER BY 1"
                )
            ]
            assert len(counts) > 8 and sum(counts) == 1000  # spread over the partitions
            assert (
                await conn.fetchval(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE conname = 'messages_pkey'"
                )
                == "PRIMARY KEY (id, conversation_id)"
            )
            # the reference by id alone now carries the message's conversation, kept by trigger
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM message_marks k JOIN messages m"
                    " ON m.id = k.message_id AND m.conversation_id = k.message_conversation_id"
                )
                == 40
            )
            with pytest.raises(asyncpg.ForeignKeyViolationError):
                await conn.execute("INSERT INTO message_marks VALUES (999999, 'none')")
            last_old = max(r["id"] for r in before["rows"])
        finally:
            await conn.close()

        monkeypatch.setattr(migrations, "load", every)
        assert "0021_partitioned_messages" not in await db.migrate()  # the later ones on top
        # The append works on the partitioned table: seq goes on, the life cycle still runs,
        # ids continue the old sequence, a repeated cid is answered with the stored message.
        first = NewMessage(7, 1, "relative", "after-1", "are you there?")
        appended = await db.append_messages([first, NewMessage(7, 2, "officer", "after-2", "yes")])
        assert [a.message.seq for a in appended if a] == [26, 27]
        assert all(a is not None and a.created and a.message.id > last_old for a in appended)
        again = await db.append_messages([first])
        assert again[0] is not None and not again[0].created
        assert again[0].message.id == appended[0].message.id if appended[0] else False
        page = await messages.messages(db, 7, after=24)
        assert [m.seq for m in page] == [25, 26, 27]
        conn = await asyncpg.connect(fresh_url)
        try:
            mark_id = appended[1].message.id if appended[1] else 0
            await conn.execute("INSERT INTO message_marks VALUES ($1, 'new')", mark_id)
            assert (
                await conn.fetchval(
                    "SELECT message_conversation_id FROM message_marks WHERE message_id = $1",
                    mark_id,
                )
                == 7
            )
        finally:
            await conn.close()
    finally:
        await db.close()


# -- pruning -------------------------------------------------------------------------------


class Plans:
    """The plans of every statement run on the store's connections (auto_explain, JSON)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def setup(self, conn: asyncpg.Connection) -> None:
        """On each acquire (the pool drops log listeners on release); loaded once."""
        loaded = "SELECT current_setting('auto_explain.log_analyze', true) = 'on'"
        if not await conn.fetchval(loaded):
            await conn.execute("LOAD 'auto_explain'")
            for name, value in (
                ("auto_explain.log_min_duration", "0"),
                ("auto_explain.log_analyze", "on"),
                ("auto_explain.log_nested_statements", "on"),
                ("auto_explain.log_format", "json"),
                ("client_min_messages", "log"),
            ):
                await conn.execute(f"SET {name} = '{value}'")
        conn.add_log_listener(self._heard)

    def _heard(self, _: object, message: asyncpg.PostgresLogMessage) -> None:
        text = message.message or ""
        start = text.find("{")
        if text.startswith("duration:") and start >= 0:
            self.seen.append(json.loads(text[start:]))

    def of(self, fragment: str) -> list[dict[str, Any]]:
        return [p for p in self.seen if fragment in p.get("Query Text", "")]


def partitions_read(plan: dict[str, Any]) -> set[str]:
    """The partitions of messages that a plan's scans actually ran on (loops > 0)."""
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        relation = node.get("Relation Name", "")
        if relation.startswith("messages_p") and node.get("Actual Loops", 0) > 0:
            found.add(relation)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return found


@pytest.fixture
async def explained(
    pg_url: str, pg_store: PostgresDatabase
) -> AsyncIterator[tuple[Plans, PostgresDatabase]]:
    plans = Plans()
    db = await PostgresDatabase.open(pg_url, min_size=1, max_size=1, setup=plans.setup)
    try:
        yield plans, db
    finally:
        await db.close()


@pytest.mark.filterwarnings("ignore:.*active log listener:asyncpg.exceptions.InterfaceWarning")
@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
async def test_a_conversations_reads_and_appends_touch_one_partition(
    pg_store: PostgresDatabase, explained: tuple[Plans, PostgresDatabase], plan_mode: str
) -> None:
    """Custom plans prune when planned (the partitions are not in the plan); generic plans,
    which a prepared statement switches to, prune when run (the others never execute)."""
    world: World = await seed(pg_store)
    plans, db = explained
    async with db.write() as sql:  # the pool's one connection keeps the setting
        await sql.execute(f"SET plan_cache_mode = {plan_mode}")
    for conv in (world.conv, world.conv_b):
        for n in range(30):
            await db.append_messages(
                [
                    NewMessage(
                        conv.id,
                        world.relative.id if conv is world.conv else world.relative_b.id,
                        "relative",
                        f"{conv.id}-{n}",
                        f"message {n}",
                    )
                ]
            )
    plans.seen.clear()
    for _ in range(3):  # the same statements again: prepared, so generic once PostgreSQL likes
        await messages.messages(db, world.conv.id)  # the latest page
        await messages.messages(db, world.conv.id, after=10)  # resume after a cursor
        await messages.messages(db, world.conv.id, before=20)  # scrolling back
        await db.append_messages(
            [NewMessage(world.conv.id, world.relative.id, "relative", "again-0", "a repeat")]
        )
    history = plans.of("WHERE m.conversation_id = $1")
    assert len(history) == 9
    append = plans.of("m.sender_id = p_sender[i]")  # the one-conversation append's cid lookup
    assert len(append) == 3
    for plan in history + append:
        assert len(partitions_read(plan)) == 1, json.dumps(plan["Plan"])[:3000]
    if plan_mode == "force_generic_plan":
        # pruned when run: the history plans name every partition and skip 15 of them, and
        # so does the one-conversation append's cid lookup (migration 0026)
        assert all('"Subplans Removed": 15' in json.dumps(p) for p in history)
        assert all('"Subplans Removed": 15' in json.dumps(p) for p in append)

    # a batch of two conversations (a group commit under load) reads their partitions only
    plans.seen.clear()
    await db.append_messages(
        [
            NewMessage(world.conv.id, world.relative.id, "relative", "both-1", "one"),
            NewMessage(world.conv_b.id, world.relative_b.id, "relative", "both-2", "two"),
        ]
    )
    async with db.read() as sql:
        homes = await sql.fetchval(
            "SELECT count(DISTINCT tableoid) FROM messages WHERE conversation_id IN ($1, $2)",
            world.conv.id,
            world.conv_b.id,
        )
    (batch,) = plans.of("WITH input AS")
    assert 1 <= len(partitions_read(batch)) <= homes
