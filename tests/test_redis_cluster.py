"""Real ``kinline serve`` processes on a real Redis Cluster (six local nodes, sharded pub/sub).

Chat crosses processes through ``SPUBLISH``/``SSUBSCRIBE`` on conversations spread over every
primary's slots, and a primary killed mid-stream (its replica promoted) loses, duplicates and
reorders nothing: each run is checked like the other fault tests (tests/history.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from redis.crc import key_slot

from channels.broker_cluster import Address, read_slot_map
from channels.events import conversation_topic
from channels.redis_target import cluster_target
from domain.records import Conversation
from server import sessions
from storage import accounts, conversations, links, prisons
from storage.postgres import PostgresDatabase
from tests.history import check
from tests.realtime import Reader, client
from tests.redis_cluster import LocalCluster
from tests.servers import ServerProcess
from tests.test_cluster import send_all, start
from tests.world import World, seed

pytestmark = pytest.mark.slow


@dataclass
class Family:
    token: str
    conv: Conversation
    shard: Address  # the primary serving the conversation's topic


@pytest.fixture
async def servers() -> AsyncIterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        assert await server.stop() == 0, server.logs()[-3000:]
        assert '"level":"error"' not in server.logs(), server.logs()[-3000:]


async def families(
    store: PostgresDatabase, world: World, url: str, prefix: str, per_shard: int
) -> list[Family]:
    """Relatives with a conversation each, until every primary serves ``per_shard`` of them."""
    target = cluster_target(url)
    assert target is not None
    slots = await read_slot_map(target, [], timeout=5)
    found: list[Family] = []
    n = 0
    while min(Counter(f.shard for f in found).get(p, 0) for p in slots.primaries) < per_shard:
        n += 1
        relative = await accounts.add_user(store, "relative", f"1390000{n:04}", f"R {n}", "x")
        inmate = await prisons.add_inmate(store, world.gaoming.id, f"GM-9{n:03}", f"I {n}")
        link = await links.request_link(store, relative.id, inmate.id, "mother", "register")
        await links.decide_link(store, link, "verified", world.officer.id, None)
        conv = await conversations.open_conversation(store, relative.id, inmate.id)
        shard = slots.owner(key_slot(f"{prefix}{conversation_topic(conv.id)}".encode()))
        if Counter(f.shard for f in found).get(shard, 0) < per_shard:
            found.append(Family(await sessions.issue(store, relative, days=1), conv, shard))
    return found


async def broker_reconnects(server: ServerProcess) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as got:
        text = await got.text()
    name = "kinline_broker_reconnects_total"
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def watch_all(reader: Reader, chats: list[Family]) -> None:
    """Follow every conversation from its start; each watch is live once its 'ready' is
    acked (the socket handles frames in order)."""
    for family in chats:
        await reader.watch(family.conv.id, after=0)
        await reader.client.send(family.conv.id, "ready")


async def on_shard_channels(cluster: LocalCluster, prefix: str, chats: list[Family]) -> None:
    """The topics are shard channels, each on the primary its slot says, none on classic
    pub/sub (which a cluster broadcasts to every node)."""
    for node in cluster.alive():
        admin = node.client()
        try:
            shard = await admin.execute_command("PUBSUB", "SHARDCHANNELS", f"{prefix}*")  # type: ignore[no-untyped-call]
            plain = await admin.execute_command("PUBSUB", "CHANNELS", f"{prefix}*")  # type: ignore[no-untyped-call]
        finally:
            await admin.aclose()
        assert plain == []
        expected = {
            f"{prefix}{conversation_topic(f.conv.id)}".encode()
            for f in chats
            if f.shard == ("127.0.0.1", node.port)
        }
        assert expected <= set(shard), (node.port, expected, shard)


async def test_chat_across_two_processes_on_every_shard(
    pg_store: PostgresDatabase,
    redis_cluster: LocalCluster,
    servers: list[ServerProcess],
    pg_url: str,
    redis_prefix: str,
) -> None:
    world = await seed(pg_store)
    chats = await families(pg_store, world, redis_cluster.url, redis_prefix, per_shard=2)
    assert len({f.shard for f in chats}) == 3  # every primary carries conversations
    a = await start(servers, pg_url, redis_cluster.url, redis_prefix)
    b = await start(servers, pg_url, redis_cluster.url, redis_prefix)
    senders = [Reader(client(a.ws_url, f.token)) for f in chats]
    async with Reader(client(b.ws_url, world.token(world.officer))) as officer:
        await watch_all(officer, chats)
        for sender in senders:
            await sender.__aenter__()
        try:
            acked: dict[int, set[int]] = {f.conv.id: {1} for f in chats}
            await asyncio.gather(
                *(
                    send_all(s.client, f.conv.id, "m", 30, acked[f.conv.id])
                    for s, f in zip(senders, chats, strict=True)
                )
            )
            for family in chats:
                assert acked[family.conv.id] == set(range(1, 32))
                delivered = await officer.until_seq(family.conv.id, 31)
                verdict = check(acked[family.conv.id], delivered)
                assert verdict.ok, (family.shard, verdict)
            assert officer.client.duplicates == 0
            await on_shard_channels(redis_cluster, redis_prefix, chats)
        finally:
            for sender in senders:
                await sender.__aexit__(None, None, None)


async def test_a_primary_killed_mid_stream_loses_duplicates_and_reorders_nothing(
    pg_store: PostgresDatabase,
    own_redis_cluster: LocalCluster,
    servers: list[ServerProcess],
    pg_url: str,
    redis_prefix: str,
) -> None:
    cluster = own_redis_cluster
    world = await seed(pg_store, extra_officers=1)
    chats = await families(pg_store, world, cluster.url, redis_prefix, per_shard=1)
    a = await start(servers, pg_url, cluster.url, redis_prefix)
    b = await start(servers, pg_url, cluster.url, redis_prefix)
    readers = [
        Reader(client(b.ws_url, world.token(u))) for u in (world.officer, *world.extra_officers)
    ]
    senders = [Reader(client(a.ws_url, f.token)) for f in chats]
    for reader in [*readers, *senders]:
        await reader.__aenter__()
    try:
        for reader in readers:
            await watch_all(reader, chats)
        acked: dict[int, set[int]] = {f.conv.id: {1, 2} for f in chats}  # the two 'ready's
        halfway = asyncio.Event()
        flows = [
            asyncio.create_task(
                send_all(s.client, f.conv.id, "m", 80, acked[f.conv.id], halfway, at=30)
            )
            for s, f in zip(senders, chats, strict=True)
        ]
        async with asyncio.timeout(30):
            await halfway.wait()
        primary, replica = await cluster.primary_with_replica()
        cluster.kill(primary)
        promoted = replica.client()
        try:  # promote at once rather than wait out cluster-node-timeout
            await promoted.execute_command("CLUSTER", "FAILOVER", "TAKEOVER")  # type: ignore[no-untyped-call]
        finally:
            await promoted.aclose()
        async with asyncio.timeout(60):
            await asyncio.gather(*flows)
        await cluster.until_healthy(primaries=3)
        assert (await cluster.roles())[replica.port] == "master"
        for family in chats:
            assert acked[family.conv.id] == set(range(1, 83))
        for server in (a, b):  # each lost its connection to that primary and resynced
            assert await broker_reconnects(server) >= 1
        for name, reader in zip(("officer", "second officer"), readers, strict=True):
            for family in chats:
                with contextlib.suppress(TimeoutError):
                    await reader.until_seq(family.conv.id, 82, timeout=30)
                verdict = check(acked[family.conv.id], reader.seqs[family.conv.id])
                assert verdict.ok, (name, family.shard, primary.port, verdict)
            assert reader.client.duplicates == 0
    finally:
        for reader in [*readers, *senders]:
            await reader.__aexit__(None, None, None)
