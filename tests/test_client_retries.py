"""The Python client never drops a message the server asked it to send again later.

Regression (issue 12, item 5): ``channels/client.py`` turned ``rate_limited`` and
``unavailable`` into a ``SendError`` and dropped the message, although the server's send path
says the client keeps it and sends it again with the same cid. Real server, real PostgreSQL
and Redis, real sockets."""

from __future__ import annotations

import asyncio

from channels.protocol import ErrorFrame
from storage import messages
from storage.postgres import PostgresDatabase
from tests.realtime import Reader, client
from tests.servers import inprocess
from tests.test_realtime import settings_for
from tests.test_subscribing import behind_proxy
from tests.world import seed


async def test_rate_limited_sends_are_retried_after_retry_after_and_stored_once(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    world = await seed(pg_store)
    settings = settings_for(pg_url, redis_url, redis_prefix, send_rate=5.0, send_burst=2)
    async with (
        inprocess(settings, pg_store) as served,
        Reader(client(served.ws_url, world.token(world.relative))) as relative,
    ):
        cids = [f"burst-{n}" for n in range(6)]
        acks = await asyncio.gather(
            *(relative.client.send(world.conv.id, cid, cid=cid) for cid in cids)
        )
        assert relative.client.resends >= 1  # the server did refuse some, for now
        assert sorted(ack.seq for ack in acks) == [1, 2, 3, 4, 5, 6]
        assert [ack.cid for ack in acks] == cids
        assert not relative.client.unacked
    stored = await messages.messages(pg_store, world.conv.id, after=0, limit=50)
    assert sorted(m.cid for m in stored) == sorted(cids)  # each once


async def test_sends_refused_unavailable_are_retried_once_storage_is_back(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    async with behind_proxy(pg_store, pg_url, redis_url, redis_prefix) as (world, proxy, served):
        refused: asyncio.Future[ErrorFrame] = asyncio.get_running_loop().create_future()

        def told(frame: ErrorFrame) -> None:
            if not refused.done():
                refused.set_result(frame)

        token = world.token(world.relative)
        async with Reader(client(served.ws_url, token, on_retry=told)) as relative:
            await relative.client.send(world.conv.id, "before", cid="before")
            proxy.exhaust()  # PostgreSQL answers "too many clients" from now on
            pending = asyncio.ensure_future(
                relative.client.send(world.conv.id, "during", cid="during")
            )
            async with asyncio.timeout(10):
                first = await refused
            assert (first.code, first.cid) == ("unavailable", "during")
            assert not pending.done() and "during" in relative.client.unacked
            proxy.restore()
            async with asyncio.timeout(15):
                ack = await pending
            assert ack.cid == "during" and ack.seq == 2
    stored = await messages.messages(pg_store, world.conv.id, after=0, limit=50)
    assert [(m.seq, m.cid) for m in stored] == [(1, "before"), (2, "during")]


async def test_a_caller_can_give_up_on_a_message_refused_for_ever(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    async with behind_proxy(pg_store, pg_url, redis_url, redis_prefix) as (world, proxy, served):
        relative = Reader(client(served.ws_url, world.token(world.relative)))
        async with relative:
            await relative.client.send(world.conv.id, "before", cid="before")
            proxy.exhaust()
            try:
                await relative.client.send(world.conv.id, "never", cid="never", give_up_after=1.5)
            except TimeoutError:
                pass
            else:
                raise AssertionError("a send refused for ever was acked")
            assert "never" not in relative.client.unacked  # abandoned, not retried again


async def test_a_cursor_the_server_could_not_recover_drops_to_its_seq(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Regression: a client holding a cursor past the conversation's last seq (a restored
    database, another deployment) was answered ``not_recovered`` and ``subscribed`` at the real
    seq, kept its stale cursor and silently dropped every later message up to it."""
    world = await seed(pg_store)
    settings = settings_for(pg_url, redis_url, redis_prefix)
    async with inprocess(settings, pg_store) as served:
        stale = client(served.ws_url, world.token(world.relative))
        stale.last_seq[world.conv.id] = 99
        async with Reader(stale) as relative:
            await relative.client.send(world.conv.id, "first real message")
            assert await relative.until_seq(world.conv.id, 1) == [1]
            assert relative.client.last_seq[world.conv.id] == 1 and not stale.duplicates
