"""The append's cost with and without partitioned ``messages`` (migration 0021), side by side.

Not part of ``kinline bench``: a one-off microbenchmark for the partitioning decision, run by
hand (``python -m bench.partitions postgresql://postgres@127.0.0.1/postgres``). It creates two
throwaway databases with the same history (``--conversations`` x ``--per-conversation``
messages), one migrated up to 0020 and one converted by 0021 (the conversion is timed), then
appends through the product's adaptor (``append_messages``: ``kinline_append``, the life-cycle
trigger and every other trigger), alternating between the two databases in rounds so that
both see the same machine load. For each it reports the client round trip (p50, p99) and the
server time inside kinline_append per call (``track_functions``), for single-message appends
(the idle store commits at once) and for batches of 20 conversations (a group commit).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import time
from urllib.parse import urlsplit

import asyncpg

from domain.records import NewMessage
from storage import migrations
from storage.postgres import PostgresDatabase

PARTITIONED = 21
_RECORD = "INSERT INTO schema_migrations VALUES ($1, $2)"


def _with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


async def _prepare(url: str, conversations: int, per: int, partitioned: bool) -> float:
    """Schema, history and statistics; returns the seconds 0021 took (0 if not applied)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        later = []
        for m in migrations.load("postgres"):
            if m.version >= PARTITIONED:
                later.append(m)
                continue
            await conn.execute(m.sql)
            await conn.execute(_RECORD, m.version, m.name)
        await conn.execute(
            f"""
            INSERT INTO prisons (code, name) VALUES ('GM', 'Gaoming');
            INSERT INTO users (role, login, name, password_hash)
                VALUES ('relative', 'r', 'R', 'x'), ('officer', 'o', 'O', 'x');
            INSERT INTO inmates (prison_id, number, name)
                SELECT 1, 'N' || g, 'I' || g FROM generate_series(1, {conversations}) g;
            INSERT INTO conversations (prison_id, inmate_id, relative_id, last_seq)
                SELECT 1, g, 1, {per} FROM generate_series(1, {conversations}) g;
            ALTER TABLE messages DISABLE TRIGGER USER;
            INSERT INTO messages (conversation_id, seq, sender_id, sender_role, cid, kind, body)
                SELECT c, s, 1 + s % 2, CASE WHEN s % 2 = 0 THEN 'officer' ELSE 'relative' END,
                       'h' || s, 'text', repeat('x', 60)
                  FROM generate_series(1, {conversations}) c, generate_series(1, {per}) s;
            ALTER TABLE messages ENABLE TRIGGER USER;
            """
        )
        took = 0.0
        if partitioned:
            for m in later:
                started = time.perf_counter()
                await conn.execute(m.sql)
                if m.version == PARTITIONED:
                    took = time.perf_counter() - started
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2)", m.version, m.name
                )
        await conn.execute("VACUUM ANALYZE")
        return took
    finally:
        await conn.close()


class Side:
    def __init__(self, name: str, db: PostgresDatabase, conversations: int) -> None:
        self.name, self.db, self.conversations = name, db, conversations
        self.single: list[float] = []
        self.batch: list[float] = []

    async def append(self, size: int, rng: random.Random) -> None:
        convs = rng.sample(range(1, self.conversations + 1), size)
        officer = [rng.random() < 0.5 for _ in convs]  # half answers: claims, outbox rows
        items = [
            NewMessage(c, 2 if o else 1, "officer" if o else "relative", secrets.token_hex(8), "hi")
            for c, o in zip(convs, officer, strict=True)
        ]
        started = time.perf_counter()
        await self.db.append_messages(items)
        (self.single if size == 1 else self.batch).append(time.perf_counter() - started)


async def _server_ms_per_call(db: PostgresDatabase) -> float:
    async with db.read() as sql:
        await sql.execute("SELECT pg_stat_force_next_flush()")
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT calls, total_time FROM pg_stat_user_functions WHERE funcname = 'kinline_append'"
        )
    return 0.0 if row is None or not row["calls"] else float(row["total_time"]) / row["calls"]


async def _track(conn: asyncpg.Connection) -> None:
    await conn.execute("SET track_functions = 'pl'")


def _ms(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 1 else 0.0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("admin_url")
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--per-conversation", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--appends", type=int, default=500, help="single appends per round")
    args = parser.parse_args()
    admin = await asyncpg.connect(args.admin_url)
    names = {kind: f"kinline_bench_{kind}_{secrets.token_hex(3)}" for kind in ("plain", "parts")}
    try:
        for name in names.values():
            await admin.execute(f'CREATE DATABASE "{name}"')
        urls = {k: _with_database(args.admin_url, n) for k, n in names.items()}
        await _prepare(urls["plain"], args.conversations, args.per_conversation, False)
        conversion = await _prepare(urls["parts"], args.conversations, args.per_conversation, True)
        rows = args.conversations * args.per_conversation
        print(f"history: {rows:,} messages in {args.conversations:,} conversations")
        print(f"0021 converted them in {conversion:.1f} s")
        sides = [
            Side(
                kind,
                await PostgresDatabase.open(url, min_size=1, max_size=1, setup=_track),
                args.conversations,
            )
            for kind, url in urls.items()
        ]
        rng = random.Random(17)
        for side in sides:  # warm up: caches, prepared statements, plans
            for _ in range(50):
                await side.append(1, rng)
            side.single.clear()
        server: dict[str, list[float]] = {s.name: [] for s in sides}
        for _ in range(args.rounds):
            for side in sides:
                for _ in range(args.appends):
                    await side.append(1, rng)
                for _ in range(args.appends // 10):
                    await side.append(20, rng)
        for side in sides:
            server[side.name].append(await _server_ms_per_call(side.db))
            print(
                f"{side.name:>5}: single p50 {_ms(side.single, 50):.3f} ms,"
                f" p99 {_ms(side.single, 99):.3f} ms ({len(side.single)} appends);"
                f" batch of 20 p50 {_ms(side.batch, 50):.3f} ms, p99 {_ms(side.batch, 99):.3f} ms"
                f" ({len(side.batch)}); server time in kinline_append per call"
                f" {server[side.name][0]:.3f} ms (all calls)"
            )
            await side.db.close()
    finally:
        for name in names.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
