"""``kinline bench search``: the search statement on a million generated messages (PostgreSQL).

Seeds a throwaway database (``harness.Bench``: created, migrated, dropped) with four prisons,
``--conversations`` threads spread over them and ``--messages`` messages in one
``INSERT ... SELECT`` (the row triggers of messages, the life cycle and the outbox, are
disabled for the seeding: they are not what is measured, and this database is thrown away).
Each body is two phrases from a fixed list of Chinese and Latin sentences (so 身体 or
"visit" is in about one row in ten), a two-character word drawn from 20 000 CJK characters
(a rare term: a few rows each) and, in one row in 10 000, the word "Zebracorn" (each pick
by hashint8 of the row's conversation and position, so no pattern lines up with the
prisons). The bigram
index of migration 0019 is then built (timed), the table analyzed, and each query below run
twice through ``EXPLAIN (ANALYZE, BUFFERS)`` with the very statements ``storage.search``
runs, the count of index candidates and then the fetch or the walk it chose (the second run
reported: warm cache; a query's time is the two added). No server is started.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg

from bench import harness
from bench.harness import Bench
from storage import search
from storage.sql import Database

PHRASES = [
    "他最近身体怎么样",
    "请问下次会见是什么时候",
    "钱已经汇过去了，请查收",
    "他的工作安排有变化吗",
    "谢谢你们的照顾",
    "天气冷了，衣服够吗",
    "家里一切都好，请转告他",
    "孩子考上大学了",
    "身体检查的结果出来了吗",
    "可以寄书给他吗",
    "I sent money last Monday",
    "When is the next visit?",
    "Please tell him we miss him",
    "Is his health okay after the flu?",
    "The parcel arrived, thank you",
    "Can I bring his glasses to the visit",
    "Mother is in hospital this week",
    "We moved to a new address",
    "Has the court answered the appeal",
    "Thank you for the quick answer",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinline bench search", description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=20_000)
    return parser


async def _seed(conn: asyncpg.Connection, conversations: int, per_conversation: int) -> None:
    await conn.execute(
        "INSERT INTO prisons (code, name) SELECT 'S' || g, 'Prison ' || g"
        " FROM generate_series(1, 4 - (SELECT count(*) FROM prisons)) g"  # four in all
    )
    await conn.execute(
        "INSERT INTO users (role, login, name, password_hash) SELECT 'relative', 'r' || g,"
        " 'Relative ' || g, $2 FROM generate_series(1, $1) g",
        conversations,
        harness.PASSWORD_HASH,
    )
    officer = await conn.fetchval(
        "INSERT INTO users (role, login, name, password_hash)"
        " VALUES ('officer', 'o', 'Officer', $1) RETURNING id",
        harness.PASSWORD_HASH,
    )
    await conn.execute(
        "INSERT INTO inmates (prison_id, number, name)"
        " SELECT (ARRAY(SELECT id FROM prisons ORDER BY id))[1 + g % 4], 'N' || g,"
        " 'Inmate ' || g FROM generate_series(1, $1) g",
        conversations,
    )
    await conn.execute(
        "INSERT INTO conversations (prison_id, inmate_id, relative_id, state)"
        " SELECT i.prison_id, i.id, u.id, 'waiting' FROM inmates i"
        " JOIN users u ON u.login = 'r' || substr(i.number, 2)"
    )
    await conn.execute("ALTER TABLE messages DISABLE TRIGGER USER")
    await conn.execute(
        "INSERT INTO messages (conversation_id, seq, sender_id, sender_role, cid, kind, body,"
        " created_at)"
        " SELECT c.id, s.n, CASE WHEN s.n % 2 = 0 THEN $2 ELSE c.relative_id END,"
        " CASE WHEN s.n % 2 = 0 THEN 'officer' ELSE 'relative' END, 'b' || s.n,"
        " CASE WHEN s.n % 10 = 0 THEN 'note' ELSE 'text' END,"
        " ($1::text[])[1 + (hashint8(c.id * 1000003 + s.n) & 2147483647)"
        " % array_length($1::text[], 1)]"
        " || ' ' || ($1::text[])[1 + (hashint8(c.id * 999983 + s.n + 7) & 2147483647)"
        " % array_length($1::text[], 1)] || ' '"
        " || chr(19968 + (hashint8(c.id * 1000033 + s.n + 11) & 2147483647) % 20000)"
        " || chr(19968 + (hashint8(c.id * 1000037 + s.n + 13) & 2147483647) % 20000)"
        " || CASE WHEN (hashint8(c.id * 1000039 + s.n + 17) & 2147483647) % 10000 = 0"
        " THEN ' Zebracorn' ELSE '' END,"
        " now() - ((($3 - s.n) * $4 + $4 - c.id) * interval '1 second')"
        " FROM generate_series(1, $3) s(n) CROSS JOIN conversations c",
        PHRASES,
        officer,
        per_conversation,
        conversations,
    )
    await conn.execute("ALTER TABLE messages ENABLE TRIGGER USER")


async def _explain(conn: asyncpg.Connection, statement: str, args: list[Any]) -> dict[str, Any]:
    plan: list[str] = []
    for _ in range(2):  # the first warms the cache
        rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *args)
        plan = [r[0] for r in rows]
    ms = next(float(line.split()[2]) for line in plan if line.startswith("Execution Time"))
    return {"execution_ms": ms, "plan": plan}


async def measure(
    conn: asyncpg.Connection, db: Database, conversations: int, per: int
) -> dict[str, Any]:
    """Seed, build the index, explain every query: the result (``db`` names the dialect)."""
    t = time.perf_counter()
    await conn.execute("DROP INDEX messages_body_bigrams")
    await _seed(conn, conversations, per)
    seed_s = time.perf_counter() - t
    harness.note(f"seeded {per * conversations} messages in {seed_s:.1f} s")
    await conn.execute("SET maintenance_work_mem = '256MB'")
    t = time.perf_counter()
    await conn.execute(
        "CREATE INDEX messages_body_bigrams ON messages USING gin (kinline_bigrams(body))"
    )
    index_s = time.perf_counter() - t
    harness.note(f"index built in {index_s:.1f} s")
    await conn.execute("VACUUM ANALYZE messages")
    await conn.execute("ANALYZE")
    prisons = [r["id"] for r in await conn.fetch("SELECT id FROM prisons ORDER BY id")]
    rare = await conn.fetchval(
        "SELECT substr(body, length(body) - 1) FROM messages"
        " WHERE body NOT LIKE '%Zebracorn' ORDER BY id DESC LIMIT 1"
    )
    deep = await conn.fetchval("SELECT max(id) / 2 FROM messages")
    one = search.Where(prison_ids=(prisons[0],), include_notes=True)
    every = search.Where(include_notes=True)
    queries = {
        "common 2-char CJK, one prison": ("身体", one, None),
        "common 2-char CJK, every prison (admin)": ("身体", every, None),
        "common 2-char CJK, one prison, a page deep in": ("身体", one, deep),
        f"rare 2-char CJK ({rare}), every prison": (rare, every, None),
        "common Latin, any case ('VISIT'), one prison": ("VISIT", one, None),
        "rare Latin ('zebracorn', 1 row in 10 000)": ("zebracorn", every, None),
        "no hit ('火星人')": ("火星人", every, None),
    }
    results = {}
    for name, (text, where, before) in queries.items():
        # what storage.search does: count the index candidates, then fetch or walk
        probe, probe_args = search.probe_sql(text, before)
        counted = await _explain(conn, probe, probe_args)
        dense = await conn.fetchval(probe, *probe_args) >= search.DENSE
        statement, params = search.search_sql(db, text, where, before, 21, dense=dense)
        fetched = await _explain(conn, statement, params)
        results[name] = {
            "execution_ms": round(counted["execution_ms"] + fetched["execution_ms"], 3),
            "dense": dense,
            "probe_ms": counted["execution_ms"],
            "probe_plan": counted["plan"],
            "plan": fetched["plan"],
        }
        harness.note(f"{name}: {results[name]['execution_ms']:.1f} ms (dense: {dense})")
    sizes = await conn.fetchrow(
        "SELECT pg_size_pretty(pg_relation_size('messages')) AS heap,"
        " pg_size_pretty(pg_relation_size('messages_body_bigrams')) AS bigrams,"
        " (SELECT count(*) FROM messages) AS rows"
    )
    return {
        "workload": "search",
        "messages": sizes["rows"],
        "conversations": conversations,
        "seed_s": round(seed_s, 1),
        "index_build_s": round(index_s, 1),
        "heap_size": sizes["heap"],
        "index_size": sizes["bigrams"],
        "queries": results,
    }


async def _main(args: argparse.Namespace) -> int:
    per = max(1, args.messages // args.conversations)
    async with Bench("search") as bench:
        assert bench.store is not None
        conn = await asyncpg.connect(harness._with_database(bench.database), timeout=30)
        try:
            result = await measure(conn, bench.store, args.conversations, per)
        finally:
            await conn.close()
    harness.emit("search", result)
    return 0


def main(argv: list[str]) -> int:
    return asyncio.run(_main(_parser().parse_args(argv)))
