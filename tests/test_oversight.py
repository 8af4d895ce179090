"""Supervisors: watching live read-only (and audited), and the live overview of a prison.

Real sockets and HTTP against an in-process server on PostgreSQL and Redis; the overview's
figures are also checked on both stores against a scripted scenario at a fixed moment.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect

from channels.client import SendError
from channels.protocol import ErrorFrame, PresenceEvent, ReadEvent, TypingEvent
from domain.records import Conversation, NewMessage, User
from server.config import Settings
from storage import accounts, audit_trail, conversations, desk, messages, prisons
from storage.complaints import NewComplaint, file_complaint
from storage.overview import (
    AnsweredLate,
    StateCounts,
    Unanswered,
    Waiting,
    prison_overview,
)
from storage.postgres import PostgresDatabase
from storage.sql import Database, utcnow
from tests.faults import CuttableProxy
from tests.realtime import Reader, client
from tests.servers import free_port, inprocess
from tests.world import Staff, World, read_cursors, seed, seed_staff

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Site:
    api: str
    ws: str
    http: aiohttp.ClientSession
    store: PostgresDatabase
    world: World
    staff: Staff
    settings: Settings

    async def call(
        self, method: str, path: str, who: User | None = None, /, **params: Any
    ) -> tuple[int, Any]:
        """``method path?params`` as ``who`` (anonymous when None); status and JSON body."""
        headers = {"Authorization": f"Bearer {self.world.token(who)}"} if who else {}
        url = self.api + path + ("?" + urlencode(params) if params else "")
        async with self.http.request(method, url, headers=headers) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    async def post(self, path: str, who: User, payload: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.world.token(who)}"}
        async with self.http.post(self.api + path, json=payload, headers=headers) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    async def opened(self, conv: int | None = None) -> list[dict[str, Any]]:
        """The ``conversation.opened`` entries (of one conversation), as the admin reads them."""
        filters: dict[str, Any] = {"action": "conversation.opened", "limit": 500}
        if conv is not None:
            filters |= {"object_type": "conversation", "object_id": conv}
        status, page = await self.call("GET", "/audit", self.staff.admin, **filters)
        assert status == 200, page
        entries: list[dict[str, Any]] = page["entries"]
        return entries


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    settings = Settings(
        database_url=pg_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        port=free_port(),
        secret="oversight",
        send_rate=500,
        send_burst=500,
    )
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Site(
            served.http_url + "/api/v1", served.ws_url, http, pg_store, world, staff, settings
        )


async def raw(url: str, token: str) -> ClientConnection:
    """A bare kinline.v1 socket: every frame it sends is exactly what the test says."""
    ws = await connect(
        url,
        subprotocols=["kinline.v1"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
    )
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def answer(ws: ClientConnection, accept: Any) -> dict[str, Any]:
    """The first ``error`` frame, or the first frame ``accept`` takes (presence skipped)."""
    while True:
        frame: dict[str, Any] = json.loads(await ws.recv())
        if frame["type"] == "error" or (frame["type"] != "presence" and accept(frame)):
            return frame


def message(conv: int, seq: int) -> Any:
    return lambda f: f["type"] == "message" and f["conv"] == conv and f["seq"] == seq


async def watch(ws: ClientConnection, conv: int, seq: int) -> dict[str, Any]:
    """Watch ``conv`` from the start; the answer is its message ``seq`` or an error."""
    await ws.send(json.dumps({"type": "watch", "conv": conv, "after": 0}))
    return await answer(ws, message(conv, seq))


def forbidden(reader: Reader) -> list[ErrorFrame]:
    return [e for e in reader.errors() if e.code == "forbidden" and e.cid is None]


# watching read-only


async def test_a_supervisor_watch_is_read_only_and_leaves_no_read_mark(site: Site) -> None:
    w, conv = site.world, site.world.conv.id
    async with (
        Reader(client(site.ws, w.token(w.relative))) as relative,
        Reader(client(site.ws, w.token(w.officer))) as officer,
        Reader(client(site.ws, w.token(w.supervisor))) as supervisor,
    ):
        await officer.watch(conv, after=0)
        await relative.client.send(conv, "How is my son?")
        await officer.client.send(conv, "He is well.")
        await officer.client.send(conv, "staff only: asked twice this week", kind="note")
        started = utcnow()
        await supervisor.watch(conv, after=0)
        assert await supervisor.until_seq(conv, 3) == [1, 2, 3]  # the history, notes included
        assert [m.kind for m in supervisor.messages] == ["text", "text", "note"]
        watched = utcnow()

        for kind in ("text", "note"):
            with pytest.raises(SendError) as refused:
                await supervisor.client.send(conv, f"a supervisor's {kind}", kind=kind)
            assert refused.value.code == "forbidden"
        await supervisor.client.read(conv, 3)
        await supervisor.until(lambda: len(forbidden(supervisor)) == 1)
        await supervisor.client.typing(conv)
        await supervisor.until(lambda: len(forbidden(supervisor)) == 2)

        # Fence: the officer's read is published on the same conversation after the
        # supervisor's refused read and typing; both sockets must receive it, and nothing
        # from the supervisor before it.
        await relative.until_seq(conv, 2)
        await officer.client.read(conv, 2)
        for reader in (relative, officer):
            await reader.until(lambda r=reader: any(isinstance(f, ReadEvent) for f in r.frames))
            reads = [(f.user, f.seq) for f in reader.frames if isinstance(f, ReadEvent)]
            assert reads == [(w.officer.id, 2)]
            typing = [f for f in reader.frames if isinstance(f, TypingEvent)]
            assert all(t.user.id != w.supervisor.id for t in typing)
        assert [m.seq for m in relative.messages] == [1, 2]  # the note never reaches the family
        # the relative's own view: everything it was sent, nothing of the supervisor

    # nor over REST: no message, note, claim, transfer or resolve
    state = (await conversations.conversation(site.store, conv)).state
    for path, payload in (
        ("messages", {"body": "a supervisor's text", "cid": "s1"}),
        ("messages", {"body": "a supervisor's note", "kind": "note", "cid": "s2"}),
        ("claim", None),
        ("transfer", {"officer_id": w.officer.id, "note": "yours"}),
        ("resolve", None),
    ):
        status, refused = await site.post(f"/conversations/{conv}/{path}", w.supervisor, payload)
        assert (status, refused["error"]["code"]) == (403, "forbidden"), path
    assert (await conversations.conversation(site.store, conv)).state == state
    assert await read_cursors(site.store, conv) == {w.officer.id: 2}
    stored = await messages.messages(site.store, conv, after=0, limit=100)
    assert [(m.seq, m.sender_id) for m in stored] == [
        (1, w.relative.id),
        (2, w.officer.id),
        (3, w.officer.id),
    ]
    [entry] = await site.opened(conv)
    assert entry["actor"] == {"id": w.supervisor.id, "name": "Wang Fang", "role": "supervisor"}
    assert (entry["object_type"], entry["prison_id"]) == ("conversation", w.gaoming.id)
    assert (entry["before"], entry["after"]) == (None, {"via": "watch"})
    assert started <= datetime.fromisoformat(entry["at"]) <= watched


async def test_every_supervisor_watch_is_audited_and_nobody_elses(site: Site) -> None:
    w = site.world
    for conv in (w.conv, w.conv_b):
        await site.store.append_messages(
            [NewMessage(conv.id, conv.relative_id, "relative", "q1", "question")]
        )
    supervisor = await raw(site.ws, w.token(w.supervisor))
    officer = await raw(site.ws, w.token(w.officer))
    relative = await raw(site.ws, w.token(w.relative))
    outsiders = [await raw(site.ws, w.token(u)) for u in (site.staff.other_supervisor,)]
    outsiders.append(await raw(site.ws, w.token(site.staff.admin)))
    try:
        # staff and the family opening a conversation is their work, not oversight
        assert (await watch(officer, w.conv.id, 1))["type"] == "message"
        assert (await watch(relative, w.conv.id, 1))["type"] == "message"
        # those who may not see it are told it does not exist, and nothing is recorded
        for ws in outsiders:
            refused = await watch(ws, w.conv.id, 1)
            assert (refused["type"], refused["code"]) == ("error", "not_found")
        assert await site.opened() == []

        # every look by a supervisor is one entry: watched again on the same socket within
        # the look window it is the same look (issue 12: a watch/unwatch loop wrote hundreds
        # of rows); from another socket it is another look; another conversation another
        assert (await watch(supervisor, w.conv.id, 1))["type"] == "message"
        await supervisor.send(json.dumps({"type": "unwatch", "conv": w.conv.id}))
        assert (await watch(supervisor, w.conv.id, 1))["type"] == "message"
        again = await raw(site.ws, w.token(w.supervisor))
        assert (await watch(again, w.conv.id, 1))["type"] == "message"
        assert (await watch(supervisor, w.conv_b.id, 1))["type"] == "message"
        await again.close()
    finally:
        for ws in (supervisor, officer, relative, *outsiders):
            await ws.close()
    entries = await site.opened()
    assert [(e["object_id"], e["actor"]["id"], e["after"]) for e in entries] == [
        (w.conv_b.id, w.supervisor.id, {"via": "watch"}),
        (w.conv.id, w.supervisor.id, {"via": "watch"}),
        (w.conv.id, w.supervisor.id, {"via": "watch"}),
    ]
    assert entries[0]["id"] > entries[1]["id"] > entries[2]["id"]  # newest first


async def test_a_supervisor_resuming_with_hello_is_audited_like_a_watch(site: Site) -> None:
    """Regression: ``hello {resume}`` joined a conversation with only the read check, so a
    supervisor could follow one without leaving an audit entry."""
    w = site.world
    await site.store.append_messages(
        [NewMessage(w.conv.id, w.relative.id, "relative", "q1", "question")]
    )
    supervisor = await raw(site.ws, w.token(w.supervisor))
    try:
        await supervisor.send(json.dumps({"type": "hello", "resume": {str(w.conv.id): 0}}))
        assert (await answer(supervisor, message(w.conv.id, 1)))["type"] == "message"
    finally:
        await supervisor.close()
    entries = await site.opened()
    assert [(e["object_id"], e["actor"]["id"], e["after"]) for e in entries] == [
        (w.conv.id, w.supervisor.id, {"via": "watch"})
    ]


async def test_a_supervisor_reading_the_history_over_rest_is_audited_too(site: Site) -> None:
    w = site.world
    await site.store.append_messages(
        [NewMessage(w.conv.id, w.relative.id, "relative", "q1", "question")]
    )
    status, page = await site.call("GET", f"/conversations/{w.conv.id}/messages", w.officer)
    assert status == 200
    assert await site.opened() == []  # an officer's reading is its work
    status, page = await site.call("GET", f"/conversations/{w.conv.id}/messages", w.supervisor)
    assert status == 200 and [m["body"] for m in page["messages"]] == ["question"]
    [entry] = await site.opened(w.conv.id)
    assert (entry["actor"]["id"], entry["after"]) == (w.supervisor.id, {"via": "history"})
    status, _ = await site.call(
        "GET", f"/conversations/{w.conv.id}/messages", site.staff.other_supervisor
    )
    assert status == 404
    assert len(await site.opened()) == 1


async def test_a_watch_that_cannot_be_audited_is_refused(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Storage down at the moment of a supervisor's watch: ``unavailable``, and no look."""
    w = await seed(pg_store)
    for conv in (w.conv, w.conv_b):
        await pg_store.append_messages(
            [NewMessage(conv.id, conv.relative_id, "relative", "q1", "question")]
        )
    target = urlsplit(pg_url)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    proxied_url = target._replace(netloc=f"postgres@127.0.0.1:{proxy.port}").geturl()
    proxied = await PostgresDatabase.open(proxied_url)
    settings = Settings(
        database_url=proxied_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        port=free_port(),
        secret="outage",
    )
    try:
        async with inprocess(settings, proxied) as served:
            supervisor = await raw(served.ws_url, w.token(w.supervisor))
            try:
                assert (await watch(supervisor, w.conv_b.id, 1))["type"] == "message"
                proxy.sever()
                refused = await watch(supervisor, w.conv.id, 1)  # nothing of it came first
                assert (refused["type"], refused["code"]) == ("error", "unavailable")
                # the subscription could not be made: closed 1013, never left half-made
                async with asyncio.timeout(5):
                    await supervisor.wait_closed()
                assert supervisor.close_code == 1013
                proxy.restore()
            finally:
                await supervisor.close()
        opened = [
            (e.object_id, e.after)
            for e in await audit_trail.audit_entries(pg_store, action="conversation.opened")
        ]
        assert opened == [(w.conv_b.id, {"via": "watch"})]
    finally:
        await proxied.close()
        await proxy.close()


# the overview: a scripted prison at a fixed moment

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
MIDNIGHT = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)  # 00:00 in Shanghai, the same day


@dataclass
class Scenario:
    conv: dict[str, Conversation]
    officer: User
    gaoming: int
    sanshui: int


async def _cycle(
    store: Database,
    conv: Conversation,
    cycle: int,
    started: datetime,
    replied: datetime | None = None,
    resolved: datetime | None = None,
) -> None:
    async with store.write() as sql:
        await sql.execute(
            "INSERT INTO conversation_cycles (conversation_id, cycle, prison_id,"
            " wait_started_at, first_reply_at, resolved_at) VALUES ($1, $2, $3, $4, $5, $6)",
            conv.id,
            cycle,
            conv.prison_id,
            started,
            replied,
            resolved,
        )


async def _state(
    store: Database,
    conv: Conversation,
    state: str,
    cycle: int = 0,
    started: datetime | None = None,
    replied: datetime | None = None,
    officer: int | None = None,
) -> None:
    async with store.write() as sql:
        await sql.execute(
            "UPDATE conversations SET state = $2, cycle = $3, wait_started_at = $4,"
            " first_reply_at = $5, assigned_officer_id = $6 WHERE id = $1",
            conv.id,
            state,
            cycle,
            started,
            replied,
            officer,
        )


async def script(store: Database, now: datetime = NOW) -> Scenario:
    """One prison's morning (Gaoming), plus a neighbour's queue that must not show."""
    gaoming = await prisons.add_prison(store, "GM", "Gaoming Prison")
    sanshui = await prisons.add_prison(store, "SS", "Sanshui Prison")
    officer = await accounts.add_user(
        store, "officer", "officer.li", "Officer Li", "x", [gaoming.id]
    )
    family = await accounts.add_user(store, "relative", "13800000001", "Chen Mei", "x")
    conv: dict[str, Conversation] = {}
    for n, name in enumerate(["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10"]):
        prison = sanshui if name == "c10" else gaoming
        inmate = await prisons.add_inmate(store, prison.id, f"N-{n}", f"Inmate {name}")
        conv[name] = await conversations.open_conversation(store, family.id, inmate.id)
    s = timedelta(seconds=1)
    # c1 waiting 400 s: over the 300 s target
    await _cycle(store, conv["c1"], 1, now - 400 * s)
    await _state(store, conv["c1"], "waiting", 1, now - 400 * s)
    # c2 waiting 100 s; its first cycle today was answered after 301 s (late)
    await _cycle(
        store, conv["c2"], 1, MIDNIGHT + 1800 * s, MIDNIGHT + 2101 * s, MIDNIGHT + 3000 * s
    )
    await _cycle(store, conv["c2"], 2, now - 100 * s)
    await _state(store, conv["c2"], "waiting", 2, now - 100 * s)
    # c3 claimed 600 s after it started waiting, still unanswered: late, not in the queue
    await _cycle(store, conv["c3"], 1, now - 600 * s)
    await _state(store, conv["c3"], "active", 1, now - 600 * s, None, officer.id)
    # c4 answered in 10 s
    await _cycle(store, conv["c4"], 1, now - 900 * s, now - 890 * s)
    await _state(store, conv["c4"], "active", 1, now - 900 * s, now - 890 * s, officer.id)
    # c5 answered today at exactly the target: on time
    await _cycle(store, conv["c5"], 1, MIDNIGHT + 7 * 3600 * s, MIDNIGHT + 7 * 3600 * s + 300 * s)
    await _state(store, conv["c5"], "resolved", 1, MIDNIGHT + 7 * 3600 * s)
    # c6 answered late, but it started a second before midnight: yesterday's
    await _cycle(store, conv["c6"], 1, MIDNIGHT - s, MIDNIGHT + 999 * s)
    await _state(store, conv["c6"], "resolved", 1, MIDNIGHT - s, MIDNIGHT + 999 * s)
    # c7 opened, nothing asked yet
    # c8 started at midnight exactly, answered after 500 s: today's, late
    await _cycle(store, conv["c8"], 1, MIDNIGHT, MIDNIGHT + 500 * s, MIDNIGHT + 600 * s)
    await _state(store, conv["c8"], "resolved", 1, MIDNIGHT, MIDNIGHT + 500 * s)
    # c9 waiting exactly 300 s: not over the target
    await _cycle(store, conv["c9"], 1, now - 300 * s)
    await _state(store, conv["c9"], "waiting", 1, now - 300 * s)
    # c10 is Sanshui's, waiting 1000 s
    await _cycle(store, conv["c10"], 1, now - 1000 * s)
    await _state(store, conv["c10"], "waiting", 1, now - 1000 * s)
    # complaints: one of Gaoming's is past its 15-day deadline, one is not; one of Sanshui's is
    for prison, filed in ((gaoming, 20), (gaoming, 2), (sanshui, 20)):
        await file_complaint(
            store,
            NewComplaint(prison_id=prison.id, complainant_id=family.id, category="x", body="y"),
            now=now - timedelta(days=filed),
            zone=SHANGHAI,
            days=15,
        )
    return Scenario(conv, officer, gaoming.id, sanshui.id)


async def test_the_overview_matches_a_scripted_morning(store: Database) -> None:
    sc = await script(store)
    c, s = sc.conv, timedelta(seconds=1)
    seen = await prison_overview(store, sc.gaoming, NOW, SHANGHAI)
    assert (seen.prison_id, seen.at, seen.response_target_s) == (sc.gaoming, NOW, 300)
    assert seen.conversations == StateCounts(new=1, waiting=3, active=2, resolved=3)

    def queued(name: str, wait: int, over: bool) -> Waiting:
        cv = c[name]
        cycle = 2 if name == "c2" else 1
        return Waiting(
            cv.id, cycle, cv.inmate_id, f"Inmate {name}", cv.relative_id, "Chen Mei",
            NOW - wait * s, wait, over,
        )  # fmt: skip

    assert seen.queue == [
        queued("c1", 400, True),
        queued("c9", 300, False),
        queued("c2", 100, False),
    ]
    assert seen.late_now == [
        Unanswered(c["c3"].id, 1, "active", sc.officer.id, NOW - 600 * s, 600),
        Unanswered(c["c1"].id, 1, "waiting", None, NOW - 400 * s, 400),
    ]
    assert seen.late_today == [
        AnsweredLate(c["c8"].id, 1, MIDNIGHT, MIDNIGHT + 500 * s, 500),
        AnsweredLate(c["c2"].id, 1, MIDNIGHT + 1800 * s, MIDNIGHT + 2101 * s, 301),
    ]
    assert seen.complaints_overdue == 1

    # the prison's own target decides what is late
    async with store.write() as sql:
        await sql.execute("UPDATE prisons SET response_target_s = 120 WHERE id = $1", sc.gaoming)
    strict = await prison_overview(store, sc.gaoming, NOW, SHANGHAI)
    assert strict.response_target_s == 120
    assert [(q.wait_s, q.over_target) for q in strict.queue] == [
        (400, True),
        (300, True),
        (100, False),
    ]
    assert [u.conversation_id for u in strict.late_now] == [c["c3"].id, c["c1"].id, c["c9"].id]
    assert [(a.conversation_id, a.response_s) for a in strict.late_today] == [
        (c["c8"].id, 500),
        (c["c2"].id, 301),
        (c["c5"].id, 300),
    ]

    # a neighbour's overview shows only its own
    other = await prison_overview(store, sc.sanshui, NOW, SHANGHAI)
    assert other.conversations == StateCounts(waiting=1)
    assert [(q.conversation_id, q.wait_s) for q in other.queue] == [(c["c10"].id, 1000)]
    assert other.complaints_overdue == 1
    # "today" is the bureau's day: half a second before its midnight, c6 (late) was today's
    before = await prison_overview(store, sc.gaoming, MIDNIGHT - s / 2, SHANGHAI)
    assert [(a.conversation_id, a.response_s) for a in before.late_today] == [(c["c6"].id, 1000)]


async def test_the_monitor_loads_the_overview_then_follows_presence(site: Site) -> None:
    w = site.world
    now = utcnow()
    s = timedelta(seconds=1)
    async with site.store.write() as sql:
        await sql.execute(
            "UPDATE conversations SET state = 'waiting', cycle = 1, wait_started_at = $2"
            " WHERE id = $1",
            w.conv.id,
            now - 400 * s,
        )
        await sql.execute(
            "UPDATE conversations SET state = 'waiting', cycle = 1, wait_started_at = $2"
            " WHERE id = $1",
            w.conv_b.id,
            now - 30 * s,
        )
    await file_complaint(
        site.store,
        NewComplaint(
            prison_id=w.gaoming.id, complainant_id=w.relative.id, category="x", body="late"
        ),
        now=now - timedelta(days=16),
        zone=SHANGHAI,
        days=15,
    )
    async with Reader(client(site.ws, w.token(w.supervisor))) as monitor:

        def on_duty() -> list[PresenceEvent]:
            return [f for f in monitor.frames if isinstance(f, PresenceEvent)]

        await monitor.until(lambda: bool(on_duty()))
        assert on_duty()[-1].on_duty == 0
        await desk.change_duty(site.store, w.officer.id, [w.gaoming.id], True, utcnow())
        async with Reader(client(site.ws, w.token(w.officer))):
            await monitor.until(lambda: on_duty()[-1].on_duty == 1)
            status, seen = await site.call("GET", "/overview", w.supervisor, prison=w.gaoming.id)
            assert status == 200, seen
            at = datetime.fromisoformat(seen["at"])
            assert now <= at <= utcnow()
            assert seen["prison_id"] == w.gaoming.id and seen["response_target_s"] == 300
            assert seen["conversations"] == {"new": 0, "waiting": 2, "active": 0, "resolved": 0}
            assert seen["on_duty"] == {
                "count": 1,
                "officers": [{"id": w.officer.id, "name": "Officer Li"}],
            }
            queue = [
                (q["conversation_id"], q["relative_name"], q["inmate_name"], q["over_target"])
                for q in seen["queue"]
            ]
            assert queue == [
                (w.conv.id, "Chen Mei", "Chen Jian", True),
                (w.conv_b.id, "Huang Lan", "Huang Bo", False),
            ]
            for q, started in zip(seen["queue"], (now - 400 * s, now - 30 * s), strict=True):
                assert datetime.fromisoformat(q["waiting_since"]) == started
                assert q["wait_s"] == int((at - started).total_seconds())
            assert [u["conversation_id"] for u in seen["late_now"]] == [w.conv.id]
            assert seen["late_today"] == []
            assert seen["complaints_overdue"] == 1
        # the officer left: the monitor is told, and the next load agrees
        await monitor.until(lambda: on_duty()[-1].on_duty == 0)
        _, again = await site.call("GET", "/overview", w.supervisor, prison=w.gaoming.id)
        assert again["on_duty"] == {"count": 0, "officers": []}


async def test_the_overview_is_for_the_prisons_supervisors_and_the_admin(site: Site) -> None:
    w, gm = site.world, site.world.gaoming.id
    for who, expected in (
        (None, (401, "not_authenticated")),
        (w.relative, (403, "forbidden")),
        (w.officer, (403, "forbidden")),
        (site.staff.other_supervisor, (403, "forbidden")),
    ):
        status, refused = await site.call("GET", "/overview", who, prison=gm)
        assert (status, refused["error"]["code"]) == expected
    for who in (w.supervisor, site.staff.admin):
        status, _ = await site.call("GET", "/overview", who, prison=gm)
        assert status == 200
    status, missing = await site.call("GET", "/overview", site.staff.admin, prison=999999)
    assert (status, missing["error"]["code"]) == (404, "not_found")
    status, bad = await site.call("GET", "/overview", w.supervisor)
    assert (status, bad["error"]["field"]) == (400, "prison")
    status, bad = await site.call("GET", "/overview", w.supervisor, prison="GM")
    assert (status, bad["error"]["code"]) == (400, "invalid_request")
