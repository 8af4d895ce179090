"""The search benchmark's code on a few hundred rows (the benchmark itself is run by hand,
once, on a million: README): its seeding satisfies the schema, the bigram index is rebuilt,
and every query is explained with the statement storage.search runs."""

from __future__ import annotations

import asyncpg

from bench import search as bench_search
from storage.postgres import PostgresDatabase


async def test_the_search_benchmark_runs_on_a_small_table(
    pg_store: PostgresDatabase, pg_url: str
) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        result = await bench_search.measure(conn, pg_store, 40, 10)
        assert result["messages"] == 400
        for name, measured in result["queries"].items():
            assert measured["execution_ms"] >= 0 and measured["plan"][0].startswith("Limit"), name
        indexed = await conn.fetchval(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'messages_body_bigrams'"
        )
        assert indexed == 1
        assert await conn.fetchval("SELECT count(*) FROM messages WHERE body LIKE '%身体%'") > 0
    finally:
        await conn.close()
