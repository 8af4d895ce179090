"""Real PostgreSQL and Redis for the tests.

Outside CI a missing service skips its tests with a loud reason; with ``CI=true`` it fails:
CI must never pass by skipping the tests that matter.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

PG_ADMIN_URL = os.environ.get("KINLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("KINLINE_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(service: str, url: str, why: object) -> None:
    message = f"{service} is not reachable at {url} ({why}); start it with `make services`"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(f"!!! SKIPPED: {message}")


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path=f"/{name}").geturl()


def _admin(sql: str) -> None:
    """Run one admin statement on its own thread and loop (fixtures may be resolved from
    inside a running event loop, where ``asyncio.run`` is refused)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def throwaway_postgres() -> Iterator[str]:
    """Create a fresh database, yield its URL, drop it at the end."""
    if not reachable(PG_ADMIN_URL, 5432):
        missing("PostgreSQL", PG_ADMIN_URL, "connection refused")
    name = f"kinline_test_{secrets.token_hex(4)}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        missing("PostgreSQL", PG_ADMIN_URL, exc)
    try:
        yield with_database(PG_ADMIN_URL, name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_url() -> str:
    if not reachable(REDIS_URL, 6379):
        missing("Redis", REDIS_URL, "connection refused")
    return REDIS_URL
