"""Request bodies and storage faults over HTTP: bounded, classified, never held open.

Regression (issue 12, item 9): a request announcing a 1 GB body and sending nothing was still
held open after 12 s. Regression (issue 12, item 6): storage faults that a driver lets through
unmapped (a statement timeout, "too many clients") were 500 ``internal`` with a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from server import faults
from server.config import Settings
from storage.errors import Conflict, StoreUnavailable, Unstorable
from storage.postgres import PostgresDatabase
from storage.sqlite import SqliteDatabase
from tests.servers import free_port, inprocess


@pytest.fixture
async def http_port(tmp_path: Path) -> AsyncIterator[int]:
    store = await SqliteDatabase.open(str(tmp_path / "kinline.db"))
    await store.migrate()
    settings = Settings(port=free_port(), secret="tests", body_timeout=0.5)
    try:
        async with inprocess(settings, store):
            yield settings.port
    finally:
        await store.close()


async def _exchange(port: int, head: str) -> bytes:
    """Send ``head`` (and no body) on a raw socket; what the server says before it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    await writer.drain()
    try:
        async with asyncio.timeout(5):
            return await reader.read()  # until the server closes the connection
    finally:
        writer.close()


async def test_an_announced_body_too_large_is_413_at_once(http_port: int) -> None:
    head = (
        f"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
    )
    answer = await _exchange(http_port, head)
    assert answer.startswith(b"HTTP/1.1 413")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "too_large"


async def test_a_body_that_never_comes_is_408_and_the_connection_closed(http_port: int) -> None:
    head = (
        f"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    answer = await _exchange(http_port, head)  # closed within the guard, not held open
    assert answer.startswith(b"HTTP/1.1 408")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "body_timeout"


def test_database_faults_are_unavailable_and_bugs_are_not() -> None:
    for fault in (StoreUnavailable("down"), TimeoutError(), ConnectionResetError()):
        assert faults.unavailable(fault), fault
    for bug in (ValueError("x"), KeyError("k"), Unstorable("NUL"), Conflict("login")):
        assert not faults.unavailable(bug), bug


def test_an_outage_is_logged_once_per_episode(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    episodes = faults.Episodes("storage", quiet=30.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="server.faults"):
        for n in range(50):
            now[0] = n * 0.1
            episodes.failed(StoreUnavailable("too many clients"))
        episodes.recovered()
        episodes.recovered()  # nothing more to say
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "unavailable" in messages[0] and "50 failures" in messages[1]
    assert all(r.exc_info is None for r in caplog.records)  # an outage is not a bug


async def test_a_statement_timeout_over_http_is_503(
    pg_store: PostgresDatabase, pg_url: str
) -> None:
    """A real statement timeout: another session holds the users table locked, so the login's
    read waits past ``statement_timeout`` (a server setting passed in the URL)."""
    timed = await PostgresDatabase.open(pg_url + "?statement_timeout=300")
    settings = Settings(port=free_port(), secret="tests")
    locker = await asyncpg.connect(pg_url)
    try:
        async with inprocess(settings, timed):
            port = settings.port
            async with locker.transaction():
                await locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                body = json.dumps({"login": "someone", "password": "whatever-it-is"})
                head = (
                    f"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "Connection: close\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n{body}"
                )
                answer = await _exchange(port, head)
    finally:
        await locker.close()
        await timed.close()
    assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "unavailable"
