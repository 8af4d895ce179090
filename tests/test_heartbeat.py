"""Heartbeats (server/heartbeat.py): the sweep's rules as a table, then over real sockets on
a real server (SQLite, in-process broker) with a short heartbeat: a peer that stops
answering is cut within the configured time, one that answers stays, and a socket busy
with a slow frame of its own is not mistaken for a dead one."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import REGISTRY

from server import heartbeat
from server.config import Settings
from server.gateway import Gateway
from server.heartbeat import Beating, sweep
from server.keys import GATEWAY
from storage.sqlite import SqliteDatabase
from tests.servers import Served, free_port, inprocess
from tests.world import World, seed

HEARTBEAT = 0.5  # seconds: pinged after a tick unheard, cut after one more


@dataclass
class Fake:
    heard: bool = False
    pinged: bool = False
    busy: bool = False
    closed: bool = False
    pings: int = 0
    cuts: int = 0

    def ping(self) -> None:
        self.pings += 1

    def cut(self) -> None:
        self.cuts += 1
        self.closed = True


# (heard, pinged, busy, closed) before a tick -> (heard, pinged, pings, cuts) after it
RULES = [
    ((True, False, False, False), (False, False, 0, 0)),  # heard: fine, nothing sent
    ((True, True, False, False), (False, False, 0, 0)),  # answered its ping
    ((False, False, False, False), (False, True, 1, 0)),  # a tick unheard: pinged
    ((False, True, False, False), (False, True, 0, 1)),  # pinged, still unheard: cut
    ((False, True, True, False), (False, False, 0, 0)),  # busy with its frame: alive
    ((False, False, True, False), (False, False, 0, 0)),
    ((False, True, False, True), (False, True, 0, 0)),  # closed already: left alone
    ((False, False, False, True), (False, False, 0, 0)),
]


@pytest.mark.parametrize(("before", "after"), RULES)
def test_sweep_rules(
    before: tuple[bool, bool, bool, bool], after: tuple[bool, bool, int, int]
) -> None:
    sock = Fake(*before)
    sweep([sock])
    assert (sock.heard, sock.pinged, sock.pings, sock.cuts) == after


def test_a_silent_socket_is_cut_on_the_third_tick_an_answering_one_pinged_every_other() -> None:
    silent, answering = Fake(heard=True), Fake(heard=True)  # both just connected
    for _ in range(6):
        sweep([silent, answering])
        if answering.pinged:
            answering.heard = True  # its pong arrives before the next tick
    assert (silent.pings, silent.cuts) == (1, 1)  # tick 1: heard, 2: pinged, 3: cut
    assert (answering.pings, answering.cuts) == (3, 0)  # ticks 2, 4 and 6: every heartbeat


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Served, World]]:
    db = await SqliteDatabase.open(str(tmp_path / "kinline.db"))
    await db.migrate()
    world = await seed(db)
    settings = Settings(port=free_port(), secret="t", heartbeat=HEARTBEAT)
    try:
        async with inprocess(settings, db) as server:
            yield server, world
    finally:
        await db.close()


async def _open(
    http: aiohttp.ClientSession, served: tuple[Served, World]
) -> aiohttp.ClientWebSocketResponse:
    """A socket that answers nothing by itself (no autoping, no heartbeat of its own)."""
    server, world = served
    ws = await http.ws_connect(
        server.ws_url,
        protocols=("kinline.v1",),
        headers={"Authorization": f"Bearer {world.token(world.officer)}"},
        autoping=False,
        autoclose=False,
    )
    welcome = await ws.receive(timeout=10)
    assert welcome.type == aiohttp.WSMsgType.TEXT and '"welcome"' in welcome.data
    return ws


async def _until(ws: aiohttp.ClientWebSocketResponse, *, answer: bool, pings: int) -> list[float]:
    """Read until ``pings`` pings came (answering them if ``answer``) or the socket ends;
    the loop times of the pings, then of the end if it ended."""
    loop = asyncio.get_running_loop()
    seen: list[float] = []
    while len(seen) < pings:
        msg = await ws.receive(timeout=10)
        if msg.type == aiohttp.WSMsgType.PING:
            seen.append(loop.time())
            if answer:
                await ws.pong(msg.data)
        elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return [*seen, loop.time()]
    return seen


async def _error_reply(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read (answering pings) until the ``error`` frame that answers a bad frame."""
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type == aiohttp.WSMsgType.PING:
            await ws.pong(msg.data)
            continue
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        if msg.data.startswith('{"type":"error"'):
            return


async def test_a_peer_that_stops_answering_pings_is_cut_within_one_and_a_half_heartbeats(
    served: tuple[Served, World],
) -> None:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        started = loop.time()
        ws = await _open(http, served)
        welcomed = loop.time()  # the server heard the peer last before this
        cuts = REGISTRY.get_sample_value("kinline_heartbeat_cuts_total") or 0.0
        times = await _until(ws, answer=False, pings=10)
        assert len(times) == 2, f"pinged once, then cut: {times}"
        ended = times[-1]
        assert ended - started >= HEARTBEAT  # not before a heartbeat without a word
        assert ended - welcomed <= 1.5 * HEARTBEAT + 0.5  # the bound, with slack for the loop
        assert REGISTRY.get_sample_value("kinline_heartbeat_cuts_total") == cuts + 1


async def test_a_peer_that_answers_is_pinged_every_heartbeat_and_kept(
    served: tuple[Served, World],
) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await _open(http, served)
        times = await _until(ws, answer=True, pings=4)
        assert len(times) == 4 and not ws.closed, "kept open while it answers"
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= HEARTBEAT * 0.9, gaps  # once per heartbeat, not a flood
        await ws.send_str("not json")  # and it is served
        await _error_reply(ws)
        await ws.close()


async def test_a_socket_busy_with_a_slow_frame_is_not_cut(
    served: tuple[Served, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its handler does not read while it handles a frame, so a pong would wait unread:
    the sweep counts the socket alive meanwhile."""
    gateway: Gateway = served[0].app[GATEWAY]
    release, ticks = asyncio.Event(), asyncio.Event()
    seen = 0
    real_frame, real_sweep = gateway.frame, heartbeat.sweep

    async def slow_frame(conn: object, data: str, received: float) -> None:
        await release.wait()
        await real_frame(conn, data, received)  # type: ignore[arg-type]

    def counting_sweep(sockets: Iterable[Beating]) -> tuple[int, int]:
        nonlocal seen
        socks = list(sockets)
        seen += any(sock.busy for sock in socks)
        if seen >= 4:  # an unheard socket is pinged on the 2nd tick and cut on the 3rd
            ticks.set()
        return real_sweep(socks)

    monkeypatch.setattr(gateway, "frame", slow_frame)
    monkeypatch.setattr(heartbeat, "sweep", counting_sweep)
    async with aiohttp.ClientSession() as http:
        ws = await _open(http, served)
        await ws.send_str("not json")
        await asyncio.wait_for(ticks.wait(), 10)
        assert not ws.closed and gateway.open_count == 1
        release.set()
        await _error_reply(ws)
        await ws.close()
