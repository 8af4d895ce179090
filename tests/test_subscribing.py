"""Subscriptions over real sockets (PostgreSQL, Redis): ``hello`` and ``watch`` answered with
``subscribed``; a subscription that cannot be made is said and the socket closed 1013; the
handshake under a storage fault; a stopped reader closed with 4008; per-frame limits."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect

from channels import metrics
from server import faults
from server.connection import close_frame
from server.gateway import Gateway
from server.keys import GATEWAY
from storage.postgres import PostgresDatabase
from tests.faults import CuttableProxy
from tests.realtime import Reader, client
from tests.servers import Served, inprocess
from tests.test_realtime import Live, raw, settings_for
from tests.world import World, seed


async def frames_until(ws: ClientConnection, kind: str, timeout: float = 5.0) -> list[Any]:
    """Every frame up to and including the first of type ``kind`` (presence skipped)."""
    seen: list[Any] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "presence":
                continue
            seen.append(frame)
            if frame["type"] == kind:
                return seen


async def closed_with(ws: ClientConnection, timeout: float = 5.0) -> int | None:
    async with asyncio.timeout(timeout):
        await ws.wait_closed()
    return ws.close_code


@asynccontextmanager
async def behind_proxy(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[World, CuttableProxy, Served]]:
    """A server whose PostgreSQL is reached through a fault proxy."""
    world = await seed(pg_store)
    target = urlsplit(pg_url)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    proxied_url = target._replace(netloc=f"postgres@127.0.0.1:{proxy.port}").geturl()
    proxied = await PostgresDatabase.open(proxied_url, timeout=2.0)
    try:
        async with inprocess(settings_for(proxied_url, redis_url, redis_prefix), proxied) as served:
            yield world, proxy, served
    finally:
        await proxied.close()
        await proxy.close()


@dataclass
class Site(Live):
    app: web.Application


@pytest.fixture
async def live(
    pg_store: PostgresDatabase,
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Site]:
    world = await seed(pg_store)
    settings = settings_for(pg_url, redis_url, redis_prefix, **getattr(request, "param", {}))
    async with inprocess(settings, pg_store) as served:
        yield Site(served.ws_url, served.http_url, world, pg_store, settings, served.app)


# answered with subscribed


async def test_hello_and_watch_are_answered_with_subscribed_after_their_replay(
    live: Site,
) -> None:
    """Regression: ``hello`` and ``watch`` were never answered, so no client could know when
    its subscription took effect (a benchmark sent an unknown frame as a barrier)."""
    w = live.world
    async with Reader(client(live.url, w.token(w.officer))) as officer:
        for n in range(3):
            await officer.client.send(w.conv.id, f"answer {n}")
    relative = await raw(live, w.token(w.relative))
    await relative.send(json.dumps({"type": "hello", "resume": {}}))
    seen = await frames_until(relative, "subscribed")
    assert [f.get("seq") for f in seen if f["type"] == "message"] == [1, 2, 3]  # replay first
    assert seen[-1] == {"type": "subscribed", "convs": {str(w.conv.id): 3}}
    supervisor = await raw(live, w.token(w.supervisor))
    await supervisor.send(json.dumps({"type": "watch", "conv": w.conv.id, "after": 1}))
    seen = await frames_until(supervisor, "subscribed")
    assert [f["seq"] for f in seen if f["type"] == "message"] == [2, 3]
    assert seen[-1] == {"type": "subscribed", "convs": {str(w.conv.id): 3}}
    await supervisor.send(json.dumps({"type": "watch", "conv": w.conv.id}))  # again: same
    assert (await frames_until(supervisor, "subscribed"))[-1]["convs"] == {str(w.conv.id): 3}
    for ws in (relative, supervisor):
        await ws.close()


async def test_a_cursor_beyond_the_last_seq_is_said_not_recovered(live: Site) -> None:
    """Regression: a cursor past the conversation's last seq was joined as is, so every
    message up to it was dropped as a duplicate, silently: the reader missed them. Now an
    ``error not_recovered`` names it and ``subscribed`` gives the seq it is followed from."""
    w = live.world
    async with Reader(client(live.url, w.token(w.officer))) as officer:
        await officer.client.send(w.conv.id, "one")
        relative = await raw(live, w.token(w.relative))
        await relative.send(json.dumps({"type": "hello", "resume": {str(w.conv.id): 50}}))
        *_, error, answer = await frames_until(relative, "subscribed")
        assert error["code"] == "not_recovered"
        assert error["message"].startswith(f"conversation {w.conv.id}: ")
        assert answer == {"type": "subscribed", "convs": {str(w.conv.id): 1}}
        await officer.client.send(w.conv.id, "two")  # seq 2 < 50: delivered all the same
        live_one = (await frames_until(relative, "message"))[-1]
        assert (live_one["seq"], live_one["body"]) == (2, "two")
    await relative.close()


# a subscription that cannot be made


@pytest.mark.parametrize("fault", ["severed", "no connection slot"])
async def test_a_hello_that_cannot_be_made_is_said_and_the_socket_closed_1013(
    pg_store: PostgresDatabase,
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    fault: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: with PostgreSQL out of connection slots, ``hello`` was answered
    ``error internal`` and the socket stayed open following nothing (those readers missed
    every message of the run), and each failure was logged with a traceback. Now: every such
    hello gets ``unavailable`` with ``retry_after``, then close 1013; the outage is logged
    once, without a traceback; a client that reconnects once storage is back resumes with no
    gap."""
    async with behind_proxy(pg_store, pg_url, redis_url, redis_prefix) as (world, proxy, served):
        sockets = [
            await connect(
                served.ws_url,
                subprotocols=["kinline.v1"],  # type: ignore[list-item]
                additional_headers={"Authorization": f"Bearer {world.token(world.relative)}"},
            )
            for _ in range(3)
        ]
        for ws in sockets:
            assert json.loads(await ws.recv())["type"] == "welcome"
            # its start is done (the prison's presence comes last): the hello is what fails
            assert json.loads(await ws.recv())["type"] == "presence"
        faults.STORAGE.recovered()  # no episode left open by an earlier test
        caplog.clear()
        proxy.sever() if fault == "severed" else proxy.exhaust()
        for ws in sockets:
            await ws.send(json.dumps({"type": "hello", "resume": {str(world.conv.id): 0}}))
            [error] = await frames_until(ws, "error")
            assert error["code"] == "unavailable" and error["retry_after"] > 0
            assert await closed_with(ws) == 1013
        outage = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(outage) == 1, [r.getMessage() for r in outage]
        assert [r.getMessage() for r in caplog.records if r.exc_info] == []
        proxy.restore()
        async with Reader(client(served.ws_url, world.token(world.relative))) as relative:
            await relative.client.send(world.conv.id, "after the outage")
            assert await relative.until_seq(world.conv.id, 1) == [1]


async def test_the_handshake_answers_503_when_storage_has_no_connection_slot(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Regression: with PostgreSQL answering "too many clients", the ``/ws`` handshake
    answered HTTP 500 (and logged a traceback) instead of 503 ``unavailable``."""
    async with behind_proxy(pg_store, pg_url, redis_url, redis_prefix) as (world, proxy, served):
        proxy.exhaust()
        upgrade = {
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": "kinline.v1",
            "Authorization": f"Bearer {world.token(world.relative)}",
        }
        async with (
            aiohttp.ClientSession() as http,
            http.get(served.http_url + "/ws", headers=upgrade) as response,
        ):
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            assert (await response.json())["error"]["code"] == "unavailable"
        proxy.restore()
        async with Reader(client(served.ws_url, world.token(world.relative))) as relative:
            assert relative.client.welcome is not None


# a reader that stopped reading


@pytest.mark.parametrize("live", [{"send_burst": 100_000, "send_rate": 100_000}], indirect=True)
async def test_a_stopped_small_buffer_reader_is_closed_4008_with_bounded_memory(
    live: Site,
) -> None:
    """Regression: with paused readers the kernel's autotuned send buffer absorbed about
    3 MB per socket, 4008 never fired, and the readers sat stuck until a 1006 some 50 s
    later. Now the kernel buffer is capped, so a reader that stops is closed with 4008 after
    about ``max_outbound_bytes`` + the capped kernel buffers, and what the server holds for it
    never passes ``max_outbound_bytes`` + one frame."""
    w, settings = live.world, live.settings
    port = urlsplit(live.url).port
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", port))
    slow.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: kinline.v1\r\n"
            f"Authorization: Bearer {w.token(w.supervisor)}\r\n\r\n"
        ).encode()
    )
    loop = asyncio.get_running_loop()
    slow.setblocking(False)
    handshake = b""
    async with asyncio.timeout(10):  # registered before the others connect
        while b"\r\n\r\n" not in handshake:
            handshake += await loop.sock_recv(slow, 1)
    assert handshake.startswith(b"HTTP/1.1 101")
    watch = json.dumps({"type": "watch", "conv": w.conv.id}).encode()
    await loop.sock_sendall(slow, bytes((0x81, 0x80 | len(watch))) + b"\x00\x00\x00\x00" + watch)
    gateway: Gateway = live.app[GATEWAY]
    closes_before = metrics.slow_consumer_closes._value.get()
    body = "x" * 1500  # an ordinary long message, about 1.7 KB a frame
    frame_bytes = 1800
    budget = settings.max_outbound_bytes + 4 * settings.socket_send_buffer + 256 * 1024
    async with (
        Reader(client(live.url, w.token(w.officer))) as healthy,
        Reader(client(live.url, w.token(w.relative))) as sender,
    ):
        await healthy.watch(w.conv.id)
        await sender.client.send(w.conv.id, "first")  # acked once the watches took effect
        await healthy.until_seq(w.conv.id, 1)
        [stuck] = [c for c in gateway.sockets.of_user(w.supervisor.id)]
        held = 0
        n = 1
        while metrics.slow_consumer_closes._value.get() == closes_before:
            n += 1
            assert n * frame_bytes < budget, f"no 4008 after {n} messages ({n * frame_bytes} B)"
            await sender.client.send(w.conv.id, body)
            held = max(held, stuck.transport.get_write_buffer_size())
        await healthy.until_seq(w.conv.id, n)
    assert held <= settings.max_outbound_bytes + frame_bytes
    received = b""
    try:
        async with asyncio.timeout(15):
            while chunk := await loop.sock_recv(slow, 1 << 20):
                received += chunk
    except ConnectionResetError:
        pass
    finally:
        slow.close()
    assert received.endswith(close_frame(4008, "too slow: reconnect and resume"))


# per-frame limits


@pytest.mark.parametrize("live", [{"max_hello_cursors": 5}], indirect=True)
async def test_a_hello_past_the_cursor_cap_gets_one_error_and_the_last_cursors(
    live: Site,
) -> None:
    """Regression: a hello with 1,000 cursors cost 1,000 lookups and 1,000 error frames."""
    w = live.world
    ws = await raw(live, w.token(w.officer))
    resume = {str(n): 0 for n in range(900_000, 900_999)} | {str(w.conv.id): 0}
    await ws.send(json.dumps({"type": "hello", "resume": resume}))
    seen = await frames_until(ws, "subscribed")
    errors = [f for f in seen if f["type"] == "error"]
    assert [e["code"] for e in errors] == ["too_many_cursors", "not_found"]
    assert seen[-1]["convs"] == {str(w.conv.id): 0}
    await ws.close()


@pytest.mark.parametrize("live", [{"subscribe_burst": 10, "subscribe_rate": 0.01}], indirect=True)
async def test_a_watch_unwatch_loop_is_rate_limited_and_audited_once(live: Site) -> None:
    """Regression: a supervisor's watch/unwatch loop wrote 306 audit rows in 2 s."""
    w = live.world
    ws = await raw(live, w.token(w.supervisor))
    for _ in range(5):
        await ws.send(json.dumps({"type": "watch", "conv": w.conv.id}))
        await frames_until(ws, "subscribed")
        await ws.send(json.dumps({"type": "unwatch", "conv": w.conv.id}))
    await ws.send(json.dumps({"type": "watch", "conv": w.conv.id}))
    [refused] = await frames_until(ws, "error")
    assert refused["code"] == "rate_limited" and refused["retry_after"] > 0
    await ws.close()
    db = await asyncpg.connect(live.settings.database_url)
    try:
        rows = await db.fetch(
            "SELECT actor_id, object_id FROM audit_entries WHERE action = 'conversation.opened'"
        )
    finally:
        await db.close()
    assert [(r["actor_id"], r["object_id"]) for r in rows] == [(w.supervisor.id, w.conv.id)]
