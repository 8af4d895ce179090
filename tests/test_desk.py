"""The duty desk end to end: real HTTP, real sockets, PostgreSQL and Redis.

The life cycle as the people at both ends see it (a question, two officers racing to claim
it, a hand-over with a note, resolve, a rating, the question after that), notes that never
reach a relative on the socket nor in history pages, REST sends with canned replies, and the
duty toggle across two server processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from channels.protocol import ConversationEvent, PresenceEvent
from domain.records import NewMessage
from server.config import Settings
from storage import audit_trail, desk, links, messages, prisons
from storage.postgres import PostgresDatabase
from tests.realtime import Reader, client
from tests.servers import ServerProcess, free_port, inprocess
from tests.world import World, seed


@dataclass
class Site:
    api: str
    ws: str
    http: aiohttp.ClientSession
    store: PostgresDatabase
    world: World

    async def call(
        self, method: str, path: str, who: Any = None, json: Any = None, api: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.world.token(who)}"} if who else {}
        async with self.http.request(
            method, (api or self.api) + path, json=json, headers=headers
        ) as response:
            return response.status, (await response.json() if response.status != 204 else None)


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    world = await seed(pg_store, extra_officers=1)
    settings = Settings(
        database_url=pg_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        port=free_port(),
        secret="desk",
        send_rate=100,
        send_burst=100,
    )
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Site(served.http_url + "/api/v1", served.ws_url, http, pg_store, world)


async def put_on_duty(site: Site, *officers: Any) -> None:
    """Said on duty (an officer off duty claims, resolves and is handed nothing: 409)."""
    for officer in officers:
        await desk.change_duty(site.store, officer.id, officer.prison_ids, True, datetime.now(UTC))


def events(reader: Reader) -> list[ConversationEvent]:
    return [f for f in reader.frames if isinstance(f, ConversationEvent)]


def kinds(reader: Reader) -> list[str]:
    return [e.event for e in events(reader)]


def has(reader: Reader, count: int) -> Callable[[], bool]:
    return lambda: len(events(reader)) >= count


async def test_the_life_cycle_end_to_end_over_real_sockets(site: Site) -> None:
    w = site.world
    colleague = w.extra_officers[0]
    await put_on_duty(site, w.officer, colleague)
    conv = w.conv.id
    async with (
        Reader(client(site.ws, w.token(w.relative))) as relative,
        Reader(client(site.ws, w.token(w.officer))) as officer,
        Reader(client(site.ws, w.token(colleague))) as other,
        Reader(client(site.ws, w.token(w.supervisor))) as supervisor,
        Reader(client(site.ws, w.token(w.other_officer))) as sanshui,
        Reader(client(site.ws, w.token(w.relative_b))) as relative_b,
    ):
        staff = (officer, other, supervisor)
        status, opened = await site.call(
            "POST", "/conversations", w.relative, {"inmate_id": w.conv.inmate_id}
        )
        assert (status, opened["id"], opened["state"]) == (200, conv, "new")  # got back

        question = await relative.client.send(conv, "Is my son well?")
        for reader in (*staff, relative):
            await reader.until(has(reader, 1))
        created = events(officer)[0]
        assert created == ConversationEvent(
            event="created",
            conv=conv,
            state="waiting",
            by=w.relative.id,
            inmate=w.conv.inmate_id,
            relative=w.relative.id,
            cycle=1,
            waiting_since=question.at,
        )
        assert events(relative) == [created] and events(supervisor) == [created]

        status, queue = await site.call("GET", "/conversations", w.officer)
        assert status == 200
        [waiting] = queue["conversations"]
        assert (waiting["id"], waiting["state"], waiting["inmate_name"]) == (
            conv,
            "waiting",
            "Chen Jian",
        )
        assert waiting["relative"] == {"id": w.relative.id, "name": "Chen Mei"}
        assert datetime.fromisoformat(waiting["waiting_since"]) == question.at
        assert waiting["wait_s"] >= 0 and waiting["assigned_officer"] is None

        # two officers claim at once: exactly one wins, the other is told who has it
        (s1, r1), (s2, r2) = await asyncio.gather(
            site.call("POST", f"/conversations/{conv}/claim", w.officer),
            site.call("POST", f"/conversations/{conv}/claim", colleague),
        )
        assert sorted((s1, s2)) == [200, 409]
        won, lost = (r1, r2) if s1 == 200 else (r2, r1)
        holder = won["assigned_officer"]
        loser_name = "Officer 0" if holder["name"] == "Officer Li" else "Officer Li"
        assert lost["error"]["code"] == "conflict"
        assert holder["name"] in lost["error"]["message"]
        assert loser_name not in lost["error"]["message"]
        holder_user, loser_user = (
            (w.officer, colleague) if holder["id"] == w.officer.id else (colleague, w.officer)
        )
        holder_reader = officer if holder_user is w.officer else other
        for reader in (*staff, relative):
            await reader.until(has(reader, 2))
        claimed = events(officer)[1]
        assert (claimed.event, claimed.state, claimed.officer, claimed.by) == (
            "claimed",
            "active",
            holder["id"],
            holder["id"],
        )

        await holder_reader.watch(conv, after=0)
        await holder_reader.client.send(conv, "staff only: check the clinic log", kind="note")
        answer = await holder_reader.client.send(conv, "He is well and works in the kitchen")
        await relative.until(lambda: answer.seq in relative.seqs[conv])
        assert [m.kind for m in relative.messages] == ["text", "text"]  # never the note

        status, moved = await site.call(
            "POST",
            f"/conversations/{conv}/transfer",
            holder_user,
            {"officer_id": loser_user.id, "note": "secret: mother is anxious, call back"},
        )
        assert status == 200 and moved["assigned_officer"]["id"] == loser_user.id
        assert moved["handover_note"] == "secret: mother is anxious, call back"
        for reader in (*staff, relative):
            await reader.until(has(reader, 3))
        assert events(supervisor)[2].note == "secret: mother is anxious, call back"
        told = events(relative)[2]
        assert (told.event, told.officer, told.note) == ("transferred", loser_user.id, None)
        _, seen = await site.call("GET", f"/conversations/{conv}", w.relative)
        assert "handover_note" not in seen

        status, refused = await site.call(
            "POST", f"/conversations/{conv}/rate", w.relative, {"rating": 5}
        )
        assert (status, refused["error"]["code"]) == (409, "conflict")  # not resolved yet
        status, done = await site.call("POST", f"/conversations/{conv}/resolve", loser_user)
        assert (status, done["state"]) == (200, "resolved")
        status, rated = await site.call(
            "POST", f"/conversations/{conv}/rate", w.relative, {"rating": 5, "comment": "fast"}
        )
        assert (status, rated["rating"]) == (200, 5)
        status, again = await site.call(
            "POST", f"/conversations/{conv}/rate", w.relative, {"rating": 1}
        )
        assert (status, again["error"]["code"]) == (409, "conflict")

        second = await relative.client.send(conv, "When can I visit?")
        for reader in (*staff, relative):
            await reader.until(has(reader, 5))
        reopened = events(officer)[4]
        assert (reopened.event, reopened.state, reopened.cycle, reopened.waiting_since) == (
            "reopened",
            "waiting",
            2,
            second.at,
        )
        assert kinds(officer) == ["created", "claimed", "transferred", "resolved", "reopened"]
        assert kinds(relative) == kinds(officer)
        assert all("secret" not in str(f) for f in relative.frames)

        # fence for the sockets that must have seen nothing: a later event of their own
        await site.call("PUT", "/duty", w.other_officer, {"on_duty": True})
        await site.call(
            "POST", f"/conversations/{w.conv_b.id}/messages", w.relative_b, {"body": "hello"}
        )
        await relative_b.until(has(relative_b, 1))
        assert [e.conv for e in events(relative_b)] == [w.conv_b.id]
        await sanshui.until(
            lambda: any(isinstance(f, PresenceEvent) and f.on_duty for f in sanshui.frames)
        )
        assert events(sanshui) == []  # another prison's staff

    cycles = await desk.cycles(site.store, conv)
    assert [(c.cycle, c.wait_started_at, c.first_reply_at) for c in cycles] == [
        (1, question.at, answer.at),
        (2, second.at, None),
    ]
    assert (cycles[0].resolved_by, cycles[0].rating, cycles[0].rating_comment) == (
        loser_user.id,
        5,
        "fast",
    )
    audited = [
        (e.action, e.actor_id)
        for e in reversed(await audit_trail.audit_entries(site.store, prison_id=w.gaoming.id))
        if e.action.startswith("conversation.")
    ]
    assert audited == [
        ("conversation.claimed", holder_user.id),
        ("conversation.transferred", holder_user.id),
        ("conversation.resolved", loser_user.id),
        ("conversation.rated", w.relative.id),
    ]


async def test_notes_never_reach_a_relative_in_history_pages(site: Site) -> None:
    w = site.world
    r, o = w.relative, w.officer
    script = [
        (r, "text"),
        (o, "note"),
        (o, "text"),
        (o, "note"),
        (o, "note"),
        (r, "text"),
        (o, "note"),
        (o, "text"),
        (o, "note"),
    ]
    await site.store.append_messages(
        [
            NewMessage(w.conv.id, u.id, u.role, f"m{n}", f"{kind} {n}", kind, u.name)  # type: ignore[arg-type]
            for n, (u, kind) in enumerate(script, start=1)
        ]
    )
    texts = [n for n, (_, kind) in enumerate(script, start=1) if kind == "text"]  # 1, 3, 6, 8

    async def pages(who: Any, direction: str) -> list[list[int]]:
        seen: list[list[int]] = []
        cursor: int | None = 0 if direction == "after" else 100
        while True:
            status, page = await site.call(
                "GET", f"/conversations/{w.conv.id}/messages?{direction}={cursor}&limit=2", who
            )
            assert status == 200 and page["last_seq"] == 9
            seqs = [m["seq"] for m in page["messages"]]
            if not seqs:
                return seen
            seen.append(seqs)
            cursor = seqs[-1] if direction == "after" else seqs[0]

    assert await pages(r, "after") == [[1, 3], [6, 8]]
    assert await pages(r, "before") == [[6, 8], [1, 3]]
    status, latest = await site.call("GET", f"/conversations/{w.conv.id}/messages?limit=3", r)
    assert [m["seq"] for m in latest["messages"]] == [3, 6, 8]
    assert [seq for page in await pages(o, "after") for seq in page] == list(range(1, 10))
    assert [seq for page in await pages(r, "after") for seq in page] == texts

    async with Reader(client(site.ws, w.token(r))) as relative:  # replayed from the start
        fence = await site.store.append_messages(
            [NewMessage(w.conv.id, o.id, "officer", "fence", "fence", "text", o.name)]
        )
        assert fence[0] is not None
        await relative.until(lambda: 10 in relative.seqs[w.conv.id])
        assert relative.seqs[w.conv.id] == [*texts, 10]

    before = len(await audit_trail.audit_entries(site.store, action="conversation.opened"))
    status, _ = await site.call("GET", f"/conversations/{w.conv.id}/messages", w.supervisor)
    assert status == 200
    [entry, *_] = await audit_trail.audit_entries(site.store, action="conversation.opened")
    assert (entry.actor_id, entry.object_type, entry.object_id, entry.after) == (
        w.supervisor.id,
        "conversation",
        w.conv.id,
        {"via": "history"},
    )
    assert (
        len(await audit_trail.audit_entries(site.store, action="conversation.opened")) == before + 1
    )
    await site.call("GET", f"/conversations/{w.conv.id}/messages", w.officer)
    assert (
        len(await audit_trail.audit_entries(site.store, action="conversation.opened")) == before + 1
    )


async def test_rest_sends_follow_the_socket_rules_and_insert_canned_replies(site: Site) -> None:
    w = site.world
    conv = w.conv.id
    status, hello = await site.call(
        "POST", "/canned", w.officer, {"short_name": "hello", "body": "Hello, how can I help?"}
    )
    assert (status, hello["prison_id"]) == (201, w.gaoming.id)
    status, taken = await site.call(
        "POST", "/canned", w.officer, {"short_name": "hello", "body": "Hi"}
    )
    assert (status, taken["error"]["code"]) == (409, "conflict")
    status, _ = await site.call(
        "POST", "/canned", w.other_officer, {"short_name": "hello", "body": "Sanshui hello"}
    )
    assert status == 201  # unique per prison only
    _, mine = await site.call("GET", "/canned", w.officer)
    assert [(c["short_name"], c["body"]) for c in mine["canned"]] == [
        ("hello", "Hello, how can I help?")
    ]
    status, _ = await site.call(
        "PUT", f"/canned/{hello['id']}", w.other_officer, {"short_name": "x", "body": "y"}
    )
    assert status == 404
    status, _ = await site.call("DELETE", f"/canned/{hello['id']}", w.supervisor)
    assert status == 403

    async with (
        Reader(client(site.ws, w.token(w.relative))) as relative,
        Reader(client(site.ws, w.token(w.officer))) as officer,
    ):
        status, sent = await site.call(
            "POST", f"/conversations/{conv}/messages", w.relative, {"body": "first", "cid": "q1"}
        )
        assert (status, sent["seq"], sent["kind"]) == (201, 1, "text")
        await officer.until(has(officer, 1))
        assert events(officer)[0].event == "created"  # announced as on the socket
        status, repeat = await site.call(
            "POST", f"/conversations/{conv}/messages", w.relative, {"body": "first", "cid": "q1"}
        )
        assert (status, repeat["seq"]) == (201, 1)  # the same cid stores nothing new

        status, canned = await site.call(
            "POST", f"/conversations/{conv}/messages", w.officer, {"canned": "hello"}
        )
        assert (status, canned["body"], canned["sender"]["role"]) == (
            201,
            "Hello, how can I help?",
            "officer",
        )
        await relative.until(lambda: canned["seq"] in relative.seqs[conv])
        assert relative.messages[-1].body == "Hello, how can I help?"

        refusals = [
            (w.relative, {"canned": "hello"}, 403),
            (w.relative, {"body": "x", "kind": "note"}, 403),
            (w.supervisor, {"body": "x"}, 403),
            (w.other_officer, {"body": "x"}, 404),
            (w.relative_b, {"body": "x"}, 404),
            (w.officer, {"canned": "nope"}, 400),
            (w.officer, {"body": "   "}, 400),
            (w.officer, {"body": "x", "canned": "hello"}, 400),
            (w.officer, {"body": "x" * 2001}, 400),
        ]
        for who, payload, expected in refusals:
            status, _ = await site.call("POST", f"/conversations/{conv}/messages", who, payload)
            assert status == expected, (who.login, payload)
    stored = await messages.messages(site.store, conv, after=0)
    assert [(m.seq, m.body) for m in stored] == [(1, "first"), (2, "Hello, how can I help?")]
    status, _ = await site.call("DELETE", f"/canned/{hello['id']}", w.officer)
    assert status == 204
    _, mine = await site.call("GET", "/canned", w.officer)
    assert mine["canned"] == []


async def test_a_relative_opens_threads_only_for_its_verified_inmates(site: Site) -> None:
    w = site.world
    other = await prisons.add_inmate(site.store, w.gaoming.id, "GM-050", "Other")
    status, _ = await site.call("POST", "/conversations", w.relative, {"inmate_id": other.id})
    assert status == 404  # not verified: as if there were no such inmate
    link = await links.request_link(site.store, w.relative.id, other.id, "father", "")
    await links.decide_link(site.store, link, "verified", w.officer.id, None)
    status, first = await site.call("POST", "/conversations", w.relative, {"inmate_id": other.id})
    assert (status, first["state"], first["inmate_name"]) == (201, "new", "Other")
    status, again = await site.call("POST", "/conversations", w.relative, {"inmate_id": other.id})
    assert (status, again["id"]) == (200, first["id"])
    status, _ = await site.call("POST", "/conversations", w.officer, {"inmate_id": other.id})
    assert status == 403
    _, mine = await site.call("GET", "/conversations", w.relative)
    assert {c["id"] for c in mine["conversations"]} == {w.conv.id, first["id"]}
    _, queue = await site.call("GET", "/conversations?state=new", w.supervisor)
    assert {c["id"] for c in queue["conversations"]} == {w.conv.id, w.conv_b.id, first["id"]}
    _, none = await site.call("GET", "/conversations?state=all", w.other_officer)
    assert none["conversations"] == []


@pytest.fixture
async def servers() -> AsyncIterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        assert await server.stop() == 0, server.logs()[-3000:]
        assert '"level":"error"' not in server.logs(), server.logs()[-3000:]


def on_duty(reader: Reader) -> list[int]:
    return [f.on_duty for f in reader.frames if isinstance(f, PresenceEvent)]


async def test_the_duty_toggle_changes_presence_at_once_across_two_processes(
    pg_store: PostgresDatabase,
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    servers: list[ServerProcess],
) -> None:
    """The officer's sockets are on process A; its PUT /duty lands on process B; relatives
    see the count change without waiting for a heartbeat."""
    world = await seed(pg_store)
    env = {"KINLINE_REDIS_PREFIX": redis_prefix}
    a = ServerProcess(pg_url, redis_url, env=env)
    b = ServerProcess(pg_url, redis_url, env=env)
    servers.extend((a, b))
    await asyncio.gather(a.start(), b.start())
    async with aiohttp.ClientSession() as http:
        site = Site(b.http_url + "/api/v1", b.ws_url, http, pg_store, world)
        async with (
            Reader(client(b.ws_url, world.token(world.relative))) as relative,
            Reader(client(b.ws_url, world.token(world.supervisor))) as supervisor,
        ):
            await relative.until(lambda: on_duty(relative) == [0])
            async with Reader(client(a.ws_url, world.token(world.officer))) as officer:
                # connected, but it has not said it is on duty: it does not count
                await officer.until(lambda: on_duty(officer) == [0])
                status, duty = await site.call("GET", "/duty", world.relative)
                assert duty == {"prisons": [{"prison_id": world.gaoming.id, "on_duty": 0}]}

                status, done = await site.call("PUT", "/duty", world.officer, {"on_duty": True})
                assert (status, done) == (200, {"on_duty": True, "changed": True})
                await relative.until(lambda: on_duty(relative)[-1:] == [1])
                await supervisor.until(lambda: on_duty(supervisor)[-1:] == [1])
                named = [f for f in supervisor.frames if isinstance(f, PresenceEvent)][-1]
                assert [o.name for o in named.officers or []] == ["Officer Li"]
                assert all(
                    f.officers is None for f in relative.frames if isinstance(f, PresenceEvent)
                )
                _, duty = await site.call("GET", "/duty", world.officer, api=a.http_url + "/api/v1")
                assert duty["on_duty"] is True
                assert duty["prisons"][0]["officers"] == [
                    {"id": world.officer.id, "name": "Officer Li"}
                ]

                status, _ = await site.call(
                    "PUT", "/duty", world.officer, {"on_duty": False}, api=a.http_url + "/api/v1"
                )
                assert status == 200
                await relative.until(lambda: on_duty(relative)[-1:] == [0])
                await site.call("PUT", "/duty", world.officer, {"on_duty": True})
                await relative.until(lambda: on_duty(relative)[-1:] == [1])
            await relative.until(lambda: on_duty(relative)[-1:] == [0])  # on duty, but gone
            async with Reader(client(b.ws_url, world.token(world.officer))):  # back: still on
                await relative.until(lambda: on_duty(relative)[-1:] == [1])
    status_codes = [
        (e.before, e.after)
        for e in reversed(await audit_trail.audit_entries(pg_store, action="duty.changed"))
    ]
    assert status_codes == [
        ({"on_duty": False}, {"on_duty": True}),
        ({"on_duty": True}, {"on_duty": False}),
        ({"on_duty": False}, {"on_duty": True}),
    ]


async def test_an_answer_to_a_waiting_question_claims_it(site: Site) -> None:
    """An officer who answers without claiming first takes the question (one transaction with
    the answer): the queue shows it held, colleagues are told live and cannot take it, and
    the audit trail has the claim "via reply"."""
    w = site.world
    colleague = w.extra_officers[0]
    await put_on_duty(site, w.officer, colleague)
    conv = w.conv.id
    async with (
        Reader(client(site.ws, w.token(w.relative))) as relative,
        Reader(client(site.ws, w.token(w.officer))) as officer,
        Reader(client(site.ws, w.token(colleague))) as other,
    ):
        await relative.client.send(conv, "Is my son well?")
        await other.until(has(other, 1))
        answer = await officer.client.send(conv, "He is well.")
        await other.until(has(other, 2))
        claimed = events(other)[1]
        assert (claimed.event, claimed.state, claimed.officer, claimed.by, claimed.cycle) == (
            "claimed",
            "active",
            w.officer.id,
            w.officer.id,
            1,
        )
        # the relative is told by the answer itself, not by a claim event (a link revoked
        # since the question would otherwise tell it about a thread it may no longer see)
        await relative.until(lambda: any(m.seq == answer.seq for m in relative.messages))
        assert kinds(relative) == ["created"]

        status, queue = await site.call("GET", "/conversations", colleague)
        assert status == 200
        [held] = queue["conversations"]
        assert (held["state"], held["assigned_officer"]["id"]) == ("active", w.officer.id)
        status, refused = await site.call("POST", f"/conversations/{conv}/claim", colleague)
        assert status == 409 and "Officer Li" in refused["error"]["message"]

    [entry] = await audit_trail.audit_entries(site.store, action="conversation.claimed")
    assert (entry.actor_id, entry.object_id, entry.at) == (w.officer.id, conv, answer.at)
    assert entry.after == {
        "state": "active",
        "officer_id": w.officer.id,
        "cycle": 1,
        "via": "reply",
    }


async def test_a_question_sent_again_after_a_lost_announcement_is_announced(site: Site) -> None:
    """Regression: a question whose first try committed but whose announcement was lost (the
    connection dropped before the ack, or the process was killed between commit and publish)
    was sent again with its cid, stored nothing new, and announced nothing: the question
    waited in the database and never showed in the live queue."""
    w = site.world
    conv = w.conv.id
    first_try = NewMessage(conv, w.relative.id, "relative", "q-lost", "Is my son well?")
    [stored] = await site.store.append_messages([first_try])  # committed, never announced
    assert stored is not None and stored.created
    async with (
        Reader(client(site.ws, w.token(w.officer))) as officer,
        Reader(client(site.ws, w.token(w.relative))) as relative,
    ):
        again = await relative.client.send(conv, "Is my son well?", cid="q-lost")
        assert again.seq == stored.message.seq  # the same message, not a second one
        await officer.until(has(officer, 1))
        [created] = events(officer)
        assert (created.event, created.conv, created.state, created.cycle) == (
            "created",
            conv,
            "waiting",
            1,
        )
        assert created.waiting_since == stored.message.created_at
