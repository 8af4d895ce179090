from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storage.postgres import PostgresDatabase
from storage.sql import Database
from storage.sqlite import SqliteDatabase
from tests import purity, services
from tests.redis_cluster import LocalCluster, local_cluster


def pytest_configure(config: pytest.Config) -> None:
    """Mark each test with the services it reaches, ``pure`` if none (tests/purity.py)."""
    config.pluginmanager.register(purity.Plugin(config), "kinline-purity")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a throwaway PostgreSQL database, created for this test session."""
    yield from services.throwaway_postgres()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis server (skipped outside CI when it is down, failed in CI)."""
    return services.redis_url()


def _started_cluster() -> LocalCluster:
    """Six redis-server processes as a cluster, started on a loop of their own (a thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, local_cluster()).result()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A Redis Cluster (three primaries, three replicas) shared by the session's tests; a
    test that kills or promotes a node uses ``own_redis_cluster``."""
    cluster = _started_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def own_redis_cluster() -> Iterator[LocalCluster]:
    """A Redis Cluster of this test's own, to break as it likes."""
    cluster = _started_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


async def _truncate(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'schema_migrations'"
            )
        ]
        await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[PostgresDatabase]:
    """A migrated, empty PostgreSQL store."""
    opened = await PostgresDatabase.open(pg_url)
    await opened.migrate()
    await _truncate(pg_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def redis_prefix() -> str:
    """A channel prefix of this test's own, so no other run can cross-talk."""
    return f"kt{secrets.token_hex(4)}:"


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty store of each backend."""
    if request.param == "sqlite":
        opened: Database = await SqliteDatabase.open(str(tmp_path / "kinline.db"))
        await opened.migrate()
    else:
        url = request.getfixturevalue("pg_url")
        opened = await PostgresDatabase.open(url)
        await opened.migrate()
        await _truncate(url)
    try:
        yield opened
    finally:
        await opened.close()
