"""kinline.v1 over real sockets, against one in-process server on PostgreSQL and Redis.

(Several server processes, kill -9 and broker outages: ``test_cluster.py``.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect

from channels import metrics
from channels.client import ClientClosed, SendError
from channels.protocol import Ack, ReadEvent, TypingEvent
from server.config import Settings
from server.connection import close_frame
from server.sessions import token_hash
from storage import messages, sessions
from storage.postgres import PostgresDatabase
from tests.faults import CuttableProxy
from tests.history import check
from tests.realtime import Reader, client
from tests.servers import free_port, inprocess
from tests.world import World, read_cursors, seed


@dataclass
class Live:
    url: str
    http: str
    world: World
    store: PostgresDatabase
    settings: Settings


def settings_for(pg_url: str, redis_url: str, prefix: str, **overrides: object) -> Settings:
    return dataclasses.replace(
        Settings(
            database_url=pg_url,
            redis_url=redis_url,
            redis_prefix=prefix,
            port=free_port(),
            secret="test",
            send_rate=500,
            send_burst=500,
            max_sockets_per_user=8,
        ),
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
async def live(
    pg_store: PostgresDatabase,
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Live]:
    overrides = dict(getattr(request, "param", {}))
    world = await seed(pg_store, extra_officers=overrides.pop("extra_officers", 0))
    settings = settings_for(pg_url, redis_url, redis_prefix, **overrides)
    async with inprocess(settings, pg_store) as served:
        yield Live(served.ws_url, served.http_url, world, pg_store, settings)


async def raw(live: Live, token: str) -> ClientConnection:
    """A bare kinline.v1 socket, for sending what a well-behaved client never would."""
    ws = await connect(
        live.url,
        subprotocols=["kinline.v1"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
        max_size=None,
    )
    welcome = await recv(ws)
    assert welcome["type"] == "welcome"
    return ws


async def recv(ws: ClientConnection) -> dict[str, Any]:
    """The next frame, past ``presence`` events (they come whenever duty changes) and
    ``conversation`` events (a relative's first question announces its cycle)."""
    while True:
        frame: dict[str, Any] = json.loads(await ws.recv())
        if frame["type"] not in ("presence", "conversation"):
            return frame


async def next_error(ws: ClientConnection) -> dict[str, object]:
    async with asyncio.timeout(5):
        while True:
            frame = await recv(ws)
            if frame["type"] == "error":
                return frame


# delivery


async def test_message_reaches_the_officer_in_order_and_the_ack_follows_the_commit(
    live: Live,
) -> None:
    w = live.world
    async with (
        Reader(client(live.url, w.token(w.officer))) as officer,
        Reader(client(live.url, w.token(w.relative))) as relative,
    ):
        await officer.watch(w.conv.id, after=0)
        await officer.client.connected.wait()
        acks = [await relative.client.send(w.conv.id, f"question {n}") for n in range(1, 21)]
        assert [a.seq for a in acks] == list(range(1, 21))
        stored = await messages.messages(live.store, w.conv.id, after=0, limit=100)
        assert [(m.seq, m.cid) for m in stored] == [(a.seq, a.cid) for a in acks]
        assert await officer.until_seq(w.conv.id, 20) == list(range(1, 21))
        assert officer.messages[0].sender.name == "Chen Mei"
        assert officer.messages[0].body == "question 1"


async def test_resending_a_cid_returns_the_same_ack_and_stores_once(live: Live) -> None:
    w = live.world
    ws = await raw(live, w.token(w.relative))
    frame = json.dumps({"type": "send", "conv": w.conv.id, "cid": "c-42", "body": "hello"})
    await ws.send(frame)
    first = await recv(ws)
    await ws.send(frame)
    again = await recv(ws)
    assert first["type"] == again["type"] == "ack"
    assert (first["seq"], first["id"]) == (again["seq"], again["id"]) == (1, first["id"])
    assert len(await messages.messages(live.store, w.conv.id)) == 1
    await ws.close()


async def test_a_reconnecting_reader_gets_what_it_missed_once_and_in_order(live: Live) -> None:
    w = live.world
    async with Reader(client(live.url, w.token(w.relative))) as relative:
        for n in range(5):
            await relative.client.send(w.conv.id, f"m{n}")
        officer = client(live.url, w.token(w.officer))
        async with Reader(officer) as first:
            await officer.watch(w.conv.id, after=0)
            assert await first.until_seq(w.conv.id, 5) == [1, 2, 3, 4, 5]
        cursor = dict(officer.last_seq)
        for n in range(5, 12):
            await relative.client.send(w.conv.id, f"m{n}")
        again = client(live.url, w.token(w.officer))
        again.last_seq.update(cursor)  # a phone that kept its cursor across a restart
        async with Reader(again) as second:
            await second.watch(w.conv.id)
            assert await second.until_seq(w.conv.id, 7) == list(range(6, 13))
            await relative.client.send(w.conv.id, "live one")
            assert await second.until_seq(w.conv.id, 8) == list(range(6, 14))
            assert again.duplicates == 0


@pytest.mark.parametrize("live", [{"extra_officers": 18}], indirect=True)
async def test_twenty_senders_fifty_messages_each_every_reader_sees_one_to_a_thousand(
    live: Live,
) -> None:
    w = live.world
    senders = [w.officer, *w.extra_officers, w.relative]
    assert len(senders) == 20
    readers = [w.relative, w.supervisor, w.officer]
    async with ReaderGroup([Reader(client(live.url, w.token(u))) for u in readers]) as watching:
        for reader in watching:
            await reader.watch(w.conv.id, after=0)
        for reader in watching:
            await reader.client.connected.wait()
        async with ReaderGroup([Reader(client(live.url, w.token(u))) for u in senders]) as sending:

            async def burst(reader: Reader) -> list[Ack]:
                return [await reader.client.send(w.conv.id, f"n{n}") for n in range(50)]

            acks = await asyncio.gather(*(burst(s) for s in sending))
        acked = {a.seq for batch in acks for a in batch}
        assert acked == set(range(1, 1001))
        for reader in watching:
            delivered = await reader.until_seq(w.conv.id, 1000, timeout=60)
            verdict = check(acked, delivered)
            assert verdict.ok, verdict
            assert reader.client.duplicates == 0


class ReaderGroup:
    """Enter several readers at once, leave them all."""

    def __init__(self, readers: list[Reader]) -> None:
        self.readers = readers

    async def __aenter__(self) -> list[Reader]:
        for reader in self.readers:
            await reader.__aenter__()
        return self.readers

    async def __aexit__(self, *exc: object) -> None:
        for reader in self.readers:
            await reader.__aexit__(*exc)


# typing, read cursors, notes


async def test_typing_is_relayed_and_rate_limited(live: Live) -> None:
    w = live.world
    async with (
        Reader(client(live.url, w.token(w.officer))) as officer,
        Reader(client(live.url, w.token(w.relative))) as relative,
    ):
        await officer.watch(w.conv.id)
        await officer.client.send(w.conv.id, "hello")  # acked after the watch took effect
        for _ in range(5):
            await relative.client.typing(w.conv.id)
        await relative.client.send(w.conv.id, "after typing")  # a marker that follows them
        await officer.until_seq(w.conv.id, 2)
        typing = [f for f in officer.frames if isinstance(f, TypingEvent)]
        assert len(typing) == 1 and typing[0].user.name == "Chen Mei"


async def test_read_cursor_is_stored_and_fanned_out_but_never_moves_back(live: Live) -> None:
    w = live.world
    async with (
        Reader(client(live.url, w.token(w.officer))) as officer,
        Reader(client(live.url, w.token(w.relative))) as relative,
    ):
        await officer.watch(w.conv.id)
        for n in range(3):
            await officer.client.send(w.conv.id, f"answer {n}")
        await relative.until_seq(w.conv.id, 3)
        await relative.client.read(w.conv.id, 2)
        await officer.until(lambda: any(isinstance(f, ReadEvent) for f in officer.frames))
        await relative.client.read(w.conv.id, 1)  # backwards: ignored
        await relative.client.read(w.conv.id, 99)  # beyond the last seq: clamped to 3
        await officer.until(
            lambda: [f.seq for f in officer.frames if isinstance(f, ReadEvent)] == [2, 3]
        )
        assert await read_cursors(live.store, w.conv.id) == {w.relative.id: 3}


async def test_private_notes_reach_staff_but_never_the_relative(live: Live) -> None:
    w = live.world
    async with (
        Reader(client(live.url, w.token(w.officer))) as officer,
        Reader(client(live.url, w.token(w.supervisor))) as supervisor,
        Reader(client(live.url, w.token(w.relative))) as relative,
    ):
        for reader in (officer, supervisor):
            await reader.watch(w.conv.id, after=0)
        await officer.client.send(w.conv.id, "staff only: check the file", kind="note")
        await officer.client.send(w.conv.id, "we are looking into it")
        await supervisor.until_seq(w.conv.id, 2)
        await relative.until_seq(w.conv.id, 1)
        assert [m.kind for m in supervisor.messages] == ["note", "text"]
        assert [m.body for m in relative.messages] == ["we are looking into it"]
        with pytest.raises(SendError) as denied:
            await relative.client.send(w.conv.id, "sneaky", kind="note")
        assert denied.value.code == "forbidden"
        replay = client(live.url, w.token(w.relative))
        replay.last_seq[w.conv.id] = 0
        async with Reader(replay) as fresh:
            await fresh.until_seq(w.conv.id, 1)
            await fresh.client.send(w.conv.id, "marker")
            assert await fresh.until_seq(w.conv.id, 2) == [2, 3]


# authorization and the handshake


async def test_handshake_refuses_foreign_origins_and_missing_or_bad_sessions(live: Live) -> None:
    w = live.world
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol": "kinline.v1",
    }
    async with aiohttp.ClientSession() as http:
        cases = [
            (
                {
                    "Origin": "https://evil.example",
                    "Authorization": f"Bearer {w.token(w.relative)}",
                },
                403,
                "forbidden_origin",
            ),
            ({}, 401, "not_authenticated"),
            ({"Authorization": "Bearer not-a-session"}, 401, "not_authenticated"),
            ({"Cookie": "kinline_session=forged", "Origin": live.http}, 401, "not_authenticated"),
        ]
        for headers, status, code in cases:
            async with http.get(
                live.url.replace("ws:", "http:"), headers={**upgrade, **headers}
            ) as response:
                assert response.status == status, headers
                assert (await response.json())["error"]["code"] == code
        assert live.http in live.settings.origins
        cookie = {"Cookie": f"kinline_session={w.token(w.relative)}"}
        async with http.get(
            live.url.replace("ws:", "http:"), headers={**upgrade, **cookie}
        ) as response:
            assert response.status == 101  # cookie without Origin: not a browser, allowed
        async with http.get(
            live.url.replace("ws:", "http:"), headers={**upgrade, **cookie, "Origin": live.http}
        ) as response:
            assert response.status == 101  # the app's own page
    await sessions.revoke_session(live.store, token_hash(w.token(w.relative)))
    refused = client(live.url, w.token(w.relative))
    with pytest.raises(ClientClosed) as closed:
        await refused.connect()
    assert closed.value.code == 4401
    await refused.close()


async def test_a_conversation_one_may_not_see_is_answered_like_one_that_does_not_exist(
    live: Live,
) -> None:
    w = live.world
    cases = [
        (w.relative_b, w.conv.id),
        (w.stranger, w.conv.id),
        (w.other_officer, w.conv.id),
        (w.relative, 999_999),
    ]
    for user, conv in cases:
        ws = await raw(live, w.token(user))
        for frame in (
            {"type": "send", "conv": conv, "cid": "x", "body": "let me in"},
            {"type": "watch", "conv": conv},
            {"type": "typing", "conv": conv},
            {"type": "read", "conv": conv, "seq": 1},
        ):
            await ws.send(json.dumps(frame))
            error = await next_error(ws)
            assert error["code"] == "not_found", (user.login, frame)
            assert error["message"] == "no such conversation"
        await ws.close()
    assert await messages.messages(live.store, w.conv.id) == []


async def test_a_supervisor_watches_read_only(live: Live) -> None:
    w = live.world
    async with Reader(client(live.url, w.token(w.supervisor))) as supervisor:
        await supervisor.watch(w.conv.id)
        with pytest.raises(SendError) as denied:
            await supervisor.client.send(w.conv.id, "I should not be able to say this")
        assert denied.value.code == "forbidden"
    assert await messages.messages(live.store, w.conv.id) == []


# limits and bad input


@pytest.mark.parametrize("live", [{"send_burst": 3, "send_rate": 0.01}], indirect=True)
async def test_sending_too_fast_is_refused_with_rate_limited(live: Live) -> None:
    w = live.world
    ws = await raw(live, w.token(w.relative))
    answers = []
    for n in range(5):
        await ws.send(json.dumps({"type": "send", "conv": w.conv.id, "cid": f"c{n}", "body": "x"}))
        answers.append(await recv(ws))
    assert [a["type"] for a in answers] == ["ack", "ack", "ack", "error", "error"]
    assert answers[3]["code"] == "rate_limited" and answers[3]["cid"] == "c3"
    assert len(await messages.messages(live.store, w.conv.id)) == 3
    await ws.close()


@pytest.mark.parametrize("live", [{"max_sockets_per_user": 2}], indirect=True)
async def test_a_user_past_its_connection_cap_is_refused_with_4409(live: Live) -> None:
    w = live.world
    first, second = await raw(live, w.token(w.relative)), await raw(live, w.token(w.relative))
    third = await connect(
        live.url,
        subprotocols=["kinline.v1"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {w.token(w.relative)}"},
    )
    frame = await recv(third)
    assert frame["code"] == "too_many_connections"
    async with asyncio.timeout(5):
        await third.wait_closed()
    assert third.close_code == 4409
    await first.close()
    await second.close()


async def test_bad_frames_each_get_their_error_and_everyone_else_is_served(live: Live) -> None:
    w = live.world
    ws = await raw(live, w.token(w.relative))
    cases = [
        ("x" * (live.settings.max_frame_bytes + 1), "frame_too_large"),
        ("{not json", "invalid_json"),
        (json.dumps({"type": "shout", "conv": 1}), "unknown_type"),
        (json.dumps({"type": "send", "conv": "one", "cid": "a", "body": "b"}), "invalid_frame"),
        (json.dumps({"type": "send", "conv": w.conv.id, "cid": "a"}), "invalid_frame"),
        (json.dumps({"type": "send", "conv": w.conv.id, "cid": "a", "body": "  "}), "body_empty"),
        (
            json.dumps({"type": "send", "conv": w.conv.id, "cid": "a", "body": "y" * 2001}),
            "body_too_long",
        ),
    ]
    for text, code in cases:
        await ws.send(text)
        assert (await next_error(ws))["code"] == code
    await ws.send(b"\x00\x01binary")
    assert (await next_error(ws))["code"] == "binary_not_supported"
    rng = random.Random(7)
    alphabet = '{}[]":,0123456789abcdefghijklmnopqrstuvwxyz type send conv cid body \\u00e9'

    async with asyncio.timeout(30):
        for _ in range(100):  # read as it goes: a client that never reads is too slow (4008)
            for _ in range(100):
                await ws.send("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))))
            for _ in range(100):
                frame = await recv(ws)
                assert frame["type"] == "error", frame
    async with Reader(client(live.url, w.token(w.officer))) as officer:  # others unaffected
        await officer.watch(w.conv.id, after=0)
        await ws.send(json.dumps({"type": "send", "conv": w.conv.id, "cid": "ok", "body": "ok"}))
        assert (await recv(ws))["type"] == "ack"
        assert await officer.until_seq(w.conv.id, 1) == [1]
    await ws.close()


@pytest.mark.parametrize(
    "live",
    [{"max_outbound_bytes": 64 * 1024, "max_frame_bytes": 65536, "max_body_chars": 16000}],
    indirect=True,
)
async def test_a_reader_that_never_reads_is_closed_with_4008_and_others_keep_up(
    live: Live,
) -> None:
    w = live.world
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
    watch = json.dumps({"type": "watch", "conv": w.conv.id}).encode()
    mask = b"\x00\x00\x00\x00"
    slow.sendall(bytes((0x81, 0x80 | len(watch))) + mask + watch)  # a masked client frame
    closes_before = metrics.slow_consumer_closes._value.get()
    body = "长" * 15000  # ~45 KB a message
    async with (
        Reader(client(live.url, w.token(w.officer))) as healthy,
        Reader(client(live.url, w.token(w.relative))) as sender,
    ):
        await healthy.watch(w.conv.id, after=0)
        await healthy.client.connected.wait()
        latencies = []
        n = 0
        while metrics.slow_consumer_closes._value.get() == closes_before:
            n += 1
            assert n < 400, "the slow reader was never closed"
            started = time.perf_counter()
            await sender.client.send(w.conv.id, body)
            await healthy.until_seq(w.conv.id, n)
            latencies.append(time.perf_counter() - started)
        assert sorted(latencies)[int(len(latencies) * 0.9)] < 0.5  # healthy stays fast
    # The server has let go of it: what reached us ends with the 4008 close frame, then EOF
    # (or a reset, if the server had to cut it before the frame got out).
    loop = asyncio.get_running_loop()
    slow.setblocking(False)
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


async def test_storage_outage_turns_sends_into_unavailable_and_loses_nothing_acked(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    world = await seed(pg_store)
    target = urlsplit(pg_url)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    proxied_url = target._replace(netloc=f"postgres@127.0.0.1:{proxy.port}").geturl()
    proxied = await PostgresDatabase.open(proxied_url)
    settings = settings_for(proxied_url, redis_url, redis_prefix)
    try:
        async with inprocess(settings, proxied) as served:
            url = served.ws_url
            async with Reader(client(url, world.token(world.relative))) as relative:
                acked = {
                    (await relative.client.send(world.conv.id, f"before {n}")).seq for n in range(5)
                }
                ws = await connect(
                    url,
                    subprotocols=["kinline.v1"],  # type: ignore[list-item]
                    additional_headers={"Authorization": f"Bearer {world.token(world.officer)}"},
                )
                await recv(ws)  # welcome
                proxy.sever()
                await ws.send(
                    json.dumps(
                        {
                            "type": "send",
                            "conv": world.conv.id,
                            "cid": "down",
                            "body": "during the outage",
                        }
                    )
                )
                answer = await recv(ws)
                assert answer["type"] == "error" and answer["code"] == "unavailable"
                assert answer["cid"] == "down"
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"{served.http_url}/readyz") as ready,
                ):
                    assert ready.status == 503
                    assert (await ready.json())["storage"] == "unavailable"
                proxy.restore()
                await ws.send(
                    json.dumps(
                        {
                            "type": "send",
                            "conv": world.conv.id,
                            "cid": "down",
                            "body": "during the outage",
                        }
                    )
                )
                answer = await recv(ws)
                assert answer["type"] == "ack", answer
                acked.add(answer["seq"])
                await ws.close()
                acked |= {
                    (await relative.client.send(world.conv.id, f"after {n}")).seq for n in range(5)
                }
        stored = [
            m.seq for m in await messages.messages(pg_store, world.conv.id, after=0, limit=100)
        ]
        assert stored == sorted(acked) == list(range(1, 12))
    finally:
        await proxied.close()
        await proxy.close()


async def test_metrics_are_exposed(live: Live) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{live.http}/metrics") as response:
        text = await response.text()
    for name in (
        "kinline_open_sockets",
        "kinline_frames_in_total",
        "kinline_messages_acked_total",
        "kinline_ack_latency_seconds",
        "kinline_delivery_latency_seconds",
        "kinline_broker_reconnects_total",
        "kinline_resyncs_total",
        "kinline_slow_consumer_closes_total",
        "kinline_errors_total",
    ):
        assert name in text


async def test_a_relative_without_a_cursor_gets_its_conversation_from_the_start(
    live: Live,
) -> None:
    """Regression: a relative's hello followed its conversations "live from now", so a
    message committed while the hello was being handled was never delivered to it (seen as
    seq 1 lost in the kill -9 cluster test, about one run in ten)."""
    w = live.world
    async with Reader(client(live.url, w.token(w.officer))) as officer:
        for n in range(3):
            await officer.client.send(w.conv.id, f"before the relative connects {n}")
    async with Reader(client(live.url, w.token(w.relative))) as relative:
        assert await relative.until_seq(w.conv.id, 3) == [1, 2, 3]
        resumed = client(live.url, w.token(w.relative))
        resumed.last_seq[w.conv.id] = 2
        async with Reader(resumed) as again:  # with a cursor: only what follows it
            await again.client.send(w.conv.id, "and now")
            assert await again.until_seq(w.conv.id, 2) == [3, 4]
