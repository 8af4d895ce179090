"""Several real ``kinline serve`` processes sharing PostgreSQL and Redis.

The delivery invariants under failure (DESIGN.md section 4): whichever process a client is
on, whatever dies, every acknowledged message reaches every reader once and in order. Each
run is checked like a Jepsen history: lost, duplicated, unexpected, reordered all zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from channels.client import KinlineClient
from channels.protocol import PresenceEvent
from storage import desk, messages
from storage.postgres import PostgresDatabase
from storage.sql import utcnow
from tests.history import check
from tests.realtime import Reader, client
from tests.servers import ServerProcess
from tests.world import World, seed

pytestmark = pytest.mark.slow


@pytest.fixture
async def world(pg_store: PostgresDatabase) -> World:
    return await seed(pg_store, extra_officers=3)


@pytest.fixture
async def servers() -> AsyncIterator[list[ServerProcess]]:
    """Every server a test starts, stopped at the end whatever happened."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        assert await server.stop() == 0, server.logs()[-3000:]
        assert '"level":"error"' not in server.logs(), server.logs()[-3000:]


async def start(
    servers: list[ServerProcess], pg_url: str, redis_url: str, prefix: str, workers: int = 1
) -> ServerProcess:
    server = ServerProcess(pg_url, redis_url, workers=workers, env={"KINLINE_REDIS_PREFIX": prefix})
    servers.append(server)
    await server.start()
    return server


async def send_all(
    sender: KinlineClient,
    conv: int,
    label: str,
    count: int,
    acked: set[int],
    progress: asyncio.Event | None = None,
    at: int = 0,
) -> None:
    for n in range(count):
        ack = await sender.send(conv, f"{label} {n}")
        acked.add(ack.seq)
        if progress is not None and len(acked) >= at:
            progress.set()


async def test_sender_on_one_process_reader_on_the_other(
    world: World, servers: list[ServerProcess], pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    a = await start(servers, pg_url, redis_url, redis_prefix)
    b = await start(servers, pg_url, redis_url, redis_prefix)
    async with (
        Reader(client(b.ws_url, world.token(world.officer))) as officer,
        Reader(client(a.ws_url, world.token(world.relative))) as relative,
    ):
        await officer.watch(world.conv.id, after=0)
        await officer.client.send(world.conv.id, "ready")  # acked once the watch is live
        acked = {1}
        await send_all(relative.client, world.conv.id, "from process A", 100, acked)
        delivered = await officer.until_seq(world.conv.id, 101)
        assert check(acked, delivered).ok
        assert delivered == list(range(1, 102))
        assert officer.messages[-1].body == "from process A 99"


async def test_kill_9_a_worker_mid_stream_loses_and_duplicates_nothing(
    world: World, servers: list[ServerProcess], pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    cluster = await start(servers, pg_url, redis_url, redis_prefix, workers=2)
    readers = [
        Reader(client(cluster.ws_url, world.token(u))) for u in (world.officer, world.supervisor)
    ]
    senders = [
        Reader(client(cluster.ws_url, world.token(u)))
        for u in (world.relative, *world.extra_officers)
    ]
    for reader in [*readers, *senders]:
        await reader.__aenter__()
    try:
        for reader in readers:  # the relative follows its conversation from its hello
            await reader.watch(world.conv.id, after=0)
        acked: set[int] = set()
        halfway = asyncio.Event()
        flows = [
            asyncio.create_task(
                send_all(s.client, world.conv.id, f"s{i}", 60, acked, halfway, at=100)
            )
            for i, s in enumerate(senders)
        ]
        async with asyncio.timeout(30):
            await halfway.wait()
        victim = senders[0].client.worker
        assert victim is not None
        cluster.kill_worker(int(victim))
        async with asyncio.timeout(60):
            await asyncio.gather(*flows)
        assert acked == set(range(1, 241))
        assert any(s.client.reconnects for s in senders)  # the kill did cut someone off
        for name, reader in zip(
            ("officer", "supervisor", "relative"), [*readers, senders[0]], strict=True
        ):
            with contextlib.suppress(TimeoutError):
                await reader.until_seq(world.conv.id, 240, timeout=30)
            verdict = check(acked, reader.seqs[world.conv.id])
            assert verdict.ok, (name, reader.client.worker, victim, verdict)
            assert reader.client.duplicates == 0
    finally:
        for reader in [*readers, *senders]:
            await reader.__aexit__(None, None, None)


async def test_redis_subscriber_connections_killed_mid_stream_lose_nothing(
    world: World, servers: list[ServerProcess], pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    a = await start(servers, pg_url, redis_url, redis_prefix)
    b = await start(servers, pg_url, redis_url, redis_prefix)
    async with (
        Reader(client(b.ws_url, world.token(world.officer))) as officer,
        Reader(client(b.ws_url, world.token(world.supervisor))) as supervisor,
        Reader(client(a.ws_url, world.token(world.relative))) as relative,
    ):
        for reader in (officer, supervisor):
            await reader.watch(world.conv.id, after=0)
        await officer.client.send(world.conv.id, "ready")
        acked = {1}
        halfway = asyncio.Event()
        flow = asyncio.create_task(
            send_all(relative.client, world.conv.id, "m", 200, acked, halfway, at=60)
        )
        async with asyncio.timeout(30):
            await halfway.wait()
        admin = aioredis.from_url(redis_url)
        try:
            killed = await admin.client_kill_filter(_type="pubsub")
        finally:
            await admin.aclose()
        assert killed >= 2  # one subscriber connection per process
        async with asyncio.timeout(60):
            await flow
        assert acked == set(range(1, 202))
        for reader in (officer, supervisor):
            delivered = await reader.until_seq(world.conv.id, 201, timeout=30)
            verdict = check(acked, delivered)
            assert verdict.ok, verdict
            assert reader.client.duplicates == 0


async def test_sigterm_acks_every_committed_send_then_closes_with_1012(
    world: World,
    servers: list[ServerProcess],
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    pg_store: PostgresDatabase,
) -> None:
    """Regression: a send being authorized when shutdown began was committed after the
    commit queue looked idle, and its ack was lost behind the 1012 close."""
    server = await start(servers, pg_url, redis_url, redis_prefix)
    ws = await connect(
        server.ws_url,
        subprotocols=["kinline.v1"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {world.token(world.relative)}"},
    )
    assert json.loads(await ws.recv())["type"] == "welcome"
    for n in range(200):  # pipelined (under the 256 unacked cap): most still in flight
        await ws.send(
            json.dumps(
                {"type": "send", "conv": world.conv.id, "cid": f"c{n}", "body": f"message {n}"}
            )
        )
    acked = set()
    stopping: asyncio.Task[int] | None = None
    with pytest.raises(ConnectionClosedError):  # a 1012 close ends the iteration so
        async with asyncio.timeout(20):
            async for data in ws:
                frame = json.loads(data)
                if frame["type"] in ("presence", "conversation"):
                    continue
                assert frame["type"] == "ack", frame
                acked.add(frame["cid"])
                if stopping is None:  # the server is working through them: stop it now
                    stopping = asyncio.create_task(server.stop())
    assert stopping is not None
    assert ws.close_code == 1012
    assert await stopping == 0
    stored = {m.cid for m in await messages.messages(pg_store, world.conv.id, after=0, limit=500)}
    assert acked and stored == acked  # committed <=> acked: nothing committed silently


async def test_on_duty_presence_crosses_processes_and_a_dead_process_expires(
    world: World,
    servers: list[ServerProcess],
    pg_store: PostgresDatabase,
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
) -> None:
    env = {"KINLINE_REDIS_PREFIX": redis_prefix, "KINLINE_PRESENCE_TTL": "1.5"}
    a = ServerProcess(pg_url, redis_url, env=env)
    b = ServerProcess(pg_url, redis_url, env=env)
    servers.append(b)
    for server in (a, b):
        await server.start()

    def on_duty(reader: Reader) -> list[int]:
        return [f.on_duty for f in reader.frames if isinstance(f, PresenceEvent)]

    # on duty = said so (PUT /duty) and connected; the officer said so before its shift
    await desk.change_duty(pg_store, world.officer.id, [world.gaoming.id], True, utcnow())

    async with (
        Reader(client(b.ws_url, world.token(world.relative))) as relative,
        Reader(client(b.ws_url, world.token(world.supervisor))) as supervisor,
    ):
        await relative.until(lambda: on_duty(relative) == [0])  # the state on arrival
        async with Reader(client(a.ws_url, world.token(world.officer))):
            await relative.until(lambda: on_duty(relative)[-1:] == [1])
            await supervisor.until(lambda: on_duty(supervisor)[-1:] == [1])
        await relative.until(lambda: on_duty(relative)[-1:] == [0])  # signed off cleanly
        named = [f for f in supervisor.frames if isinstance(f, PresenceEvent) and f.on_duty]
        assert [o.name for o in named[-1].officers or []] == ["Officer Li"]
        assert all(f.officers is None for f in relative.frames if isinstance(f, PresenceEvent))

        officer = client(a.ws_url, world.token(world.officer))
        await officer.connect()
        await relative.until(lambda: on_duty(relative)[-1:] == [1])
        assert a.process is not None
        a.process.kill()  # no goodbye: its officer must expire from the shared store
        await relative.until(lambda: on_duty(relative)[-1:] == [0], timeout=15)
        await officer.close()
