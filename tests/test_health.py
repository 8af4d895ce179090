"""``/healthz``, ``/readyz``, security headers and JSON errors, over a real TCP port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from server import config
from server.app import build_app
from storage import open_database
from storage.sql import Database

Serve = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """Start the app on 127.0.0.1 (a free port) with the given settings and store."""
    clients: list[TestClient[Any, Any]] = []

    async def start(store: Database | None = None, **env: str) -> TestClient[Any, Any]:
        variables = {"KINLINE_DATABASE_URL": f"sqlite:///{tmp_path}/kinline.db", **env}
        settings = config.load(variables)
        client: TestClient[Any, Any] = TestClient(
            TestServer(build_app(settings, store=store), host="127.0.0.1", port=0)
        )
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


def assert_security_headers(response: aiohttp.ClientResponse) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_healthz(serve: Serve) -> None:
    client = await serve()
    assert client.host == "127.0.0.1"
    response = await client.get("/healthz")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {"status": "ok"}
    assert_security_headers(response)


async def test_readyz_on_the_embedded_default(serve: Serve) -> None:
    client = await serve()
    response = await client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["ready"] is True
    assert body["storage"] == "ok"
    assert all(v == "ok" for k, v in body.items() if k != "ready"), body
    assert_security_headers(response)


async def test_readyz_on_each_store(store: Database, serve: Serve) -> None:
    # (the store first: it is closed after the app that uses it)
    client = await serve(store=store)
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["storage"] == "ok"


async def test_readyz_with_redis(serve: Serve, redis_url: str) -> None:
    client = await serve(KINLINE_REDIS_URL=redis_url)
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"ready": True, "storage": "ok", "broker": "ok"}


async def test_readyz_names_the_broker_when_redis_is_down(serve: Serve) -> None:
    # Starting must not fail nor hang when Redis is down: the app comes up and says not ready.
    async with asyncio.timeout(15):
        client = await serve(KINLINE_REDIS_URL="redis://127.0.0.1:1/0")
        assert (await client.get("/healthz")).status == 200  # alive, though not ready
        response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["ready"] is False
    assert body["broker"] != "ok"
    assert body["storage"] == "ok"
    assert_security_headers(response)


@pytest.fixture(params=["sqlite", "postgres"])
async def closable_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated store of each backend that the test may close."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/closable.db"
    else:
        url = request.getfixturevalue("pg_url")
    opened = await open_database(url)
    await opened.migrate()
    yield opened
    with contextlib.suppress(Exception):
        await opened.close()


async def test_readyz_names_storage_when_the_store_is_gone(
    serve: Serve, closable_store: Database
) -> None:
    client = await serve(store=closable_store)
    assert (await client.get("/readyz")).status == 200
    await closable_store.close()
    async with asyncio.timeout(10):
        response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["ready"] is False
    assert body["storage"] != "ok"
    assert body.get("broker", "ok") == "ok"
    assert_security_headers(response)
    assert (await client.get("/healthz")).status == 200  # the process itself is still up


class Proxy:
    """A TCP forwarder to PostgreSQL that can be cut, standing for a database that goes away."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await self.server.wait_closed()


async def test_readyz_names_storage_when_postgresql_goes_away(serve: Serve, pg_url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(pg_url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    port = await proxy.start()
    store = await open_database(
        parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}").geturl()
    )
    try:
        await store.migrate()
        client = await serve(store=store)
        assert (await client.get("/readyz")).status == 200
        await proxy.cut()
        async with asyncio.timeout(10):
            response = await client.get("/readyz")
        assert response.status == 503
        assert (await response.json())["storage"] != "ok"
    finally:
        await proxy.cut()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await store.close()


async def test_security_headers_on_every_response(serve: Serve) -> None:
    client = await serve()
    for method, path, status in [
        ("GET", "/", 200),
        ("GET", "/static/kinline.css", 200),
        ("GET", "/readyz", 200),
        ("GET", "/no/such/page", 404),
        ("POST", "/healthz", 405),
    ]:
        response = await client.request(method, path)
        assert response.status == status, path
        assert_security_headers(response)


async def test_index_is_the_placeholder_page(serve: Serve) -> None:
    client = await serve()
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "Kinline" in await response.text()


async def test_not_found_is_a_json_error(serve: Serve) -> None:
    client = await serve()
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"]["code"] == "not_found"
    assert isinstance(body["error"]["message"], str)


async def test_wrong_method_is_a_json_error(serve: Serve) -> None:
    client = await serve()
    response = await client.post("/healthz")
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"
