"""KinlineClient against a tiny in-test kinline.v1 server, over real sockets on 127.0.0.1.

No sleeps: every wait is on a future, a queue or an event, under an ``asyncio.timeout`` guard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from channels.client import ClientClosed, ClientState, KinlineClient, SendError
from channels.protocol import (
    SUBPROTOCOL,
    Ack,
    ClientFrame,
    CloseCode,
    Hello,
    Limits,
    LinkEvent,
    MessageEvent,
    ProtocolError,
    Send,
    ServerFrame,
    UserRef,
    Watch,
    Welcome,
    decode_client,
    encode,
)

TOKEN = "s3cret"
GUARD = 10.0
ME = UserRef(id=1, role="relative", name="Rel")
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Conn:
    """One server-side connection, with what it received, in order."""

    ws: ServerConnection
    received: asyncio.Queue[ClientFrame | ProtocolError] = field(default_factory=asyncio.Queue)


class FakeServer:
    """Just enough kinline.v1: welcome, replay after the hello cursors, idempotent acks."""

    def __init__(self) -> None:
        self.url = ""
        self.messages: dict[int, list[MessageEvent]] = defaultdict(list)
        self.acks: dict[str, Ack] = {}
        self.connections: asyncio.Queue[Conn] = asyncio.Queue()
        self.live: list[Conn] = []
        self.crash_on: set[str] = set()  # bodies stored, then 1012 before the ack is sent
        self.hold: set[str] = set()  # bodies received and left unanswered
        self.ignore_cursors = False  # misbehave: replay from seq 1 whatever the hello says
        self.refuse = False  # answer handshakes with HTTP 503
        self.refused = asyncio.Queue[None]()

    def store(self, conv: int, body: str, cid: str = "") -> MessageEvent:
        seq = len(self.messages[conv]) + 1
        msg = MessageEvent(
            conv=conv,
            seq=seq,
            id=conv * 1000 + seq,
            sender=ME,
            kind="text",
            body=body,
            at=AT,
            cid=cid,
        )
        self.messages[conv].append(msg)
        if cid:
            self.acks[cid] = Ack(cid=cid, conv=conv, seq=seq, id=msg.id, at=AT)
        return msg

    def process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if self.refuse:
            self.refused.put_nowait(None)
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "down\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        conn = Conn(ws)
        self.connections.put_nowait(conn)
        if ws.request is None or ws.request.headers.get("Authorization") != f"Bearer {TOKEN}":
            await ws.close(CloseCode.NOT_AUTHENTICATED, "not authenticated")
            return
        self.live.append(conn)
        try:
            async for data in ws:
                frame = decode_client(data)
                conn.received.put_nowait(frame)
                await self.answer(conn, frame)
        finally:
            self.live.remove(conn)

    async def answer(self, conn: Conn, frame: ClientFrame | ProtocolError) -> None:
        ws = conn.ws
        if isinstance(frame, ProtocolError):
            await ws.send(encode(frame.frame()), text=True)
        elif isinstance(frame, Hello):
            limits = Limits(max_frame_bytes=16384, max_body_chars=2000)
            await ws.send(encode(Welcome(user=ME, heartbeat=30.0, limits=limits)), text=True)
            for conv, msgs in self.messages.items():
                after = 0 if self.ignore_cursors else frame.resume.get(conv, 0)
                for msg in msgs[after:]:
                    await ws.send(encode(msg), text=True)
        elif isinstance(frame, Send) and frame.body not in self.hold:
            known = self.acks.get(frame.cid)
            if known is not None:  # the same cid never makes a second message
                await ws.send(encode(known), text=True)
                return
            msg = self.store(frame.conv, frame.body, frame.cid)
            if frame.body in self.crash_on:
                await ws.close(CloseCode.RESTARTING, "restarting")
                return
            await ws.send(encode(self.acks[frame.cid]), text=True)
            for other in list(self.live):
                with contextlib.suppress(Exception):
                    await other.ws.send(encode(msg), text=True)


@contextlib.asynccontextmanager
async def fake_server() -> AsyncIterator[FakeServer]:
    fake = FakeServer()
    async with serve(
        fake.handler,
        "127.0.0.1",
        0,
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        compression=None,
        process_request=fake.process_request,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}/ws"
        yield fake


def make_client(url: str, token: str = TOKEN, origin: str | None = None) -> KinlineClient:
    return KinlineClient(url, token=token, origin=origin, backoff_base=0.001, backoff_cap=0.01)


async def next_frames(events: AsyncIterator[ServerFrame], n: int) -> list[ServerFrame]:
    return [await anext(events) for _ in range(n)]


async def test_send_gets_its_ack() -> None:
    async with asyncio.timeout(GUARD), fake_server() as server:
        client = make_client(server.url, origin="https://kinline.example")
        async with client:
            assert client.connected.is_set()  # state is ClientState.CONNECTED
            conn = server.connections.get_nowait()
            assert conn.ws.subprotocol == SUBPROTOCOL
            assert conn.ws.request is not None
            headers: Headers = conn.ws.request.headers
            assert headers["Origin"] == "https://kinline.example"
            assert "Sec-WebSocket-Extensions" not in headers  # compression disabled
            assert await conn.received.get() == Hello(resume={})  # hello comes first

            ack = await client.send(7, "hello there")
            assert (ack.conv, ack.seq) == (7, 1)
            assert len(ack.cid) == 32  # uuid4 hex
            assert client.unacked == {}

            events = client.events()
            welcome, message = await next_frames(events, 2)
            assert isinstance(welcome, Welcome)
            assert client.welcome == welcome
            assert isinstance(message, MessageEvent)
            assert (message.conv, message.seq, message.cid) == (7, 1, ack.cid)
            assert client.last_seq == {7: 1}

            ack2 = await client.send(7, "again", cid="my-cid")
            assert (ack2.cid, ack2.seq) == ("my-cid", 2)
        assert client.state is ClientState.CLOSED
        assert client.final is None  # closed by us


async def test_send_error_is_raised_with_its_code() -> None:
    async with asyncio.timeout(GUARD), fake_server() as server, make_client(server.url) as client:
        with pytest.raises(SendError) as info:
            await client.send(1, "   ")
        assert info.value.code == "body_empty"
        with pytest.raises(SendError) as info:
            await client.send(0, "conv zero")
        assert info.value.code == "invalid_frame"
        assert client.unacked == {}
        assert server.messages == {}


async def test_restart_1012_reconnects_resumes_and_resends_same_cid() -> None:
    async with asyncio.timeout(GUARD), fake_server() as server, make_client(server.url) as client:
        events = client.events()
        first_conn = await server.connections.get()
        await client.send(1, "first")
        welcome, first = await next_frames(events, 2)
        assert isinstance(welcome, Welcome)
        assert isinstance(first, MessageEvent)
        assert first.seq == 1

        # The server stores "boom", then restarts (1012) before acknowledging it.
        server.crash_on.add("boom")
        pending = asyncio.create_task(client.send(1, "boom"))

        conn = await server.connections.get()  # the client came back
        assert await conn.received.get() == Hello(resume={1: 1})  # hello first, with cursors
        resent = await conn.received.get()
        assert isinstance(resent, Send)
        assert resent.body == "boom"

        ack = await pending
        assert (ack.cid, ack.seq) == (resent.cid, 2)
        assert [m.body for m in server.messages[1]] == ["first", "boom"]  # stored once

        # The first connection saw hello, "first", then "boom" with the same cid.
        seen = [first_conn.received.get_nowait() for _ in range(3)]
        assert isinstance(seen[2], Send)
        assert seen[2].cid == resent.cid

        welcome2, replayed = await next_frames(events, 2)
        assert isinstance(welcome2, Welcome)
        assert isinstance(replayed, MessageEvent)
        assert (replayed.seq, replayed.body) == (2, "boom")  # replayed from the cursor
        assert client.reconnects == 1
        assert client.last_seq == {1: 2}
        assert client.unacked == {}


async def test_duplicates_are_not_yielded() -> None:
    async with asyncio.timeout(GUARD), fake_server() as server:
        server.ignore_cursors = True  # a server that replays everything on every hello
        server.store(1, "one")
        server.store(1, "two")
        server.store(2, "other conversation")
        async with make_client(server.url) as client:
            events = client.events()
            conn = await server.connections.get()
            frames = await next_frames(events, 4)
            assert [type(f).__name__ for f in frames] == [
                "Welcome",
                "MessageEvent",
                "MessageEvent",
                "MessageEvent",
            ]
            assert client.last_seq == {1: 2, 2: 1}

            # live duplicates and stale frames are dropped too
            for seq in (1, 2, 1):
                await conn.ws.send(encode(server.messages[1][seq - 1]), text=True)
            await conn.ws.send(encode(LinkEvent(id=1, state="verified")), text=True)  # a marker
            assert await anext(events) == LinkEvent(id=1, state="verified")
            assert client.duplicates == 3

            # after a restart the whole history is replayed again: only "three" is new
            server.store(1, "three")
            await conn.ws.close(CloseCode.RESTARTING)
            conn2 = await server.connections.get()
            assert await conn2.received.get() == Hello(resume={1: 2, 2: 1})
            welcome, three = await next_frames(events, 2)
            assert isinstance(welcome, Welcome)
            assert isinstance(three, MessageEvent)
            assert (three.conv, three.seq, three.body) == (1, 3, "three")
            assert client.duplicates == 6
            assert client.reconnects == 1


async def test_4401_is_final() -> None:
    async with asyncio.timeout(GUARD), fake_server() as server:
        client = make_client(server.url, token="wrong")
        with pytest.raises(ClientClosed) as info:
            await client.connect()
        assert info.value.code == CloseCode.NOT_AUTHENTICATED
        assert client.state is ClientState.CLOSED  # the connection task has returned
        assert client.final is info.value
        assert client.reconnects == 0
        assert server.connections.qsize() == 1  # one attempt, no retry
        with pytest.raises(ClientClosed):
            await client.send(1, "hi")
        with pytest.raises(ClientClosed):
            await anext(client.events())
        await client.close()


async def test_4401_mid_session_fails_pending_sends_and_ends_events() -> None:
    async with asyncio.timeout(GUARD), fake_server() as server, make_client(server.url) as client:
        conn = await server.connections.get()
        await conn.received.get()  # hello
        server.hold.add("pending")  # the server never answers this send...
        pending = asyncio.create_task(client.send(1, "pending"))
        sent = await conn.received.get()
        assert isinstance(sent, Send)
        # ...and revokes the session
        await conn.ws.close(CloseCode.NOT_AUTHENTICATED, "session ended")
        with pytest.raises(ClientClosed) as info:
            await pending
        assert info.value.code == CloseCode.NOT_AUTHENTICATED
        assert info.value.reason == "session ended"
        frames = [frame async for frame in _drain(client)]
        assert isinstance(frames[0], Welcome)
        assert client.final is not None
        assert client.final.code == CloseCode.NOT_AUTHENTICATED
        assert client.state is ClientState.CLOSED


async def _drain(client: KinlineClient) -> AsyncIterator[ServerFrame]:
    with contextlib.suppress(ClientClosed):
        async for frame in client.events():
            yield frame


async def test_send_while_disconnected_waits_for_the_connection() -> None:
    async with asyncio.timeout(GUARD), fake_server() as server:
        server.refuse = True  # handshakes fail with HTTP 503: a connection error, retried
        client = make_client(server.url)
        connecting = asyncio.create_task(client.connect())
        await server.refused.get()
        assert client.state is not ClientState.CONNECTED
        pending = asyncio.create_task(client.send(3, "queued while down"))
        await server.refused.get()  # still refused, still retrying; the send waits
        assert not pending.done()
        server.refuse = False
        await connecting
        ack = await pending
        assert (ack.conv, ack.seq) == (3, 1)
        conn = await server.connections.get()
        assert await conn.received.get() == Hello(resume={})
        assert await conn.received.get() == Send(conv=3, cid=ack.cid, body="queued while down")
        assert client.reconnects == 0  # first successful connection
        await client.close()


async def test_abnormal_close_reconnects_and_rewatches() -> None:
    async with asyncio.timeout(GUARD), fake_server() as server, make_client(server.url) as client:
        conn = await server.connections.get()
        assert await conn.received.get() == Hello(resume={})
        await client.watch(5)
        assert await conn.received.get() == Watch(conv=5)
        assert conn.ws.transport is not None
        conn.ws.transport.abort()  # no close frame: 1006 on the client
        conn2 = await server.connections.get()
        assert await conn2.received.get() == Hello(resume={})
        assert await conn2.received.get() == Watch(conv=5)  # subscriptions come back
        await client.connected.wait()
        assert client.reconnects == 1


async def test_close_ends_events_and_fails_pending_sends() -> None:
    async with asyncio.timeout(GUARD), fake_server() as server:
        server.refuse = True
        client = make_client(server.url)
        connecting = asyncio.create_task(client.connect())
        await server.refused.get()
        pending = asyncio.create_task(client.send(1, "never"))
        collected = asyncio.create_task(_collect(client))
        await client.close()
        with pytest.raises(ClientClosed) as info:
            await pending
        assert info.value.code == CloseCode.NORMAL
        with pytest.raises(ClientClosed):
            await connecting
        assert await collected == []
        assert client.final is None


async def _collect(client: KinlineClient) -> list[ServerFrame]:
    return [frame async for frame in client.events()]
