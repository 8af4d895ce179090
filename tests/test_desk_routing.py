"""Auto-assignment and the away reply (issue 16), end to end over real HTTP and sockets on
PostgreSQL and Redis: in one process, and across two ``kinline serve`` processes, where a
question must never be given twice nor an officer past its cap."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from channels.protocol import ConversationEvent, MessageEvent, PresenceEvent
from domain.records import NewMessage, User
from server import sessions
from server.config import Settings
from server.keys import ROUTER
from storage import (
    accounts,
    audit_trail,
    conversations,
    desk,
    desk_settings,
    links,
    prisons,
    routing,
)
from storage.audit_trail import TrailQuery
from storage.desk_settings import DeskSettings
from storage.postgres import PostgresDatabase
from tests.realtime import Reader, client
from tests.servers import Served, ServerProcess, free_port, inprocess
from tests.test_desk import Site, events, put_on_duty, servers, site  # noqa: F401 (fixtures)
from tests.world import World, seed, seed_staff


def settings(mode: str = "round_robin", cap: int = 1, away: bool = False) -> dict[str, Any]:
    return {
        "auto_assign": mode,
        "assign_cap": cap,
        "away_reply": away,
        "desk_hours": {"zh-CN": "周一至周五 8:30-17:30", "en": "Mon-Fri 8:30-17:30"},
    }


def present(reader: Reader, count: int) -> bool:
    return any(isinstance(f, PresenceEvent) and f.on_duty == count for f in reader.frames)


def last_presence(reader: Reader) -> int | None:
    counts = [f.on_duty for f in reader.frames if isinstance(f, PresenceEvent)]
    return counts[-1] if counts else None


def claims(reader: Reader) -> list[ConversationEvent]:
    return [e for e in events(reader) if e.event == "claimed"]


async def ask(site: Site, who: User, conv: int, body: str) -> None:  # noqa: F811
    status, got = await site.call("POST", f"/conversations/{conv}/messages", who, {"body": body})
    assert status == 201, got


async def auto_claims(store: PostgresDatabase) -> list[dict[str, Any]]:
    entries = await audit_trail.entries(store, TrailQuery(action="conversation.claimed"))
    return [e.after for e in entries if e.after and e.after.get("via") == "auto"]


async def test_desk_settings_are_the_admins_to_change_and_audited(site: Site) -> None:  # noqa: F811
    w = site.world
    staff = await seed_staff(site.store, w)
    path = f"/prisons/{w.gaoming.id}/desk-settings"
    status, got = await site.call("GET", path, w.officer)
    assert (status, got["auto_assign"], got["away_reply"]) == (200, "off", False)
    status, got = await site.call("PUT", path, w.officer, settings())
    assert (status, got["error"]["code"]) == (403, "forbidden")
    status, got = await site.call("PUT", path, staff.admin, {**settings(), "assign_cap": 0})
    assert (status, got["error"]["code"], got["error"]["field"]) == (
        400,
        "invalid_request",
        "assign_cap",
    )
    status, got = await site.call("PUT", path, staff.admin, settings("spread"))
    assert (status, got["error"]["code"]) == (400, "invalid_request")
    status, got = await site.call("PUT", path, staff.admin, settings(cap=3, away=True))
    assert (status, got["changed"], got["assign_cap"]) == (200, True, 3)
    assert got["desk_hours"] == {"zh-CN": "周一至周五 8:30-17:30", "en": "Mon-Fri 8:30-17:30"}
    status, got = await site.call("PUT", path, staff.admin, settings(cap=3, away=True))
    assert (status, got["changed"]) == (200, False)
    [entry] = await audit_trail.entries(site.store, TrailQuery(action="desk_settings.changed"))
    assert entry.actor is not None and entry.actor.id == staff.admin.id
    assert entry.before is not None and entry.before["auto_assign"] == "off"
    assert entry.after is not None and entry.after["assign_cap"] == 3
    status, got = await site.call("GET", path, w.other_officer)  # another prison's officer
    assert status == 404
    status, got = await site.call("GET", "/prisons/999999/desk-settings", staff.admin)
    assert status == 404


async def test_round_robin_gives_questions_at_once_and_waits_at_the_cap(site: Site) -> None:  # noqa: F811
    """Cap 1, two officers on duty: each of two questions goes at once to a different officer.
    Then one officer alone: the next question waits at the cap, and is given to it the moment
    it resolves what it held."""
    w = site.world
    staff = await seed_staff(site.store, w)
    colleague = w.extra_officers[0]
    await put_on_duty(site, w.officer, colleague)
    status, _ = await site.call(
        "PUT", f"/prisons/{w.gaoming.id}/desk-settings", staff.admin, settings(cap=1)
    )
    assert status == 200
    async with (
        Reader(client(site.ws, w.token(w.officer))) as li,
        Reader(client(site.ws, w.token(colleague))),
    ):
        await li.until(lambda: present(li, 2))
        await ask(site, w.relative, w.conv.id, "他还好吗？")
        await li.until(lambda: len(claims(li)) == 1)
        await ask(site, w.relative_b, w.conv_b.id, "探视时间？")
        await li.until(lambda: len(claims(li)) == 2)
        given = {e.conv: e.officer for e in claims(li)}
        assert given == {w.conv.id: w.officer.id, w.conv_b.id: colleague.id}
        assert all(e.by is None for e in claims(li))
        for conv, officer in given.items():
            thread = await desk.thread(site.store, conv)
            assert (thread.state, thread.assigned_officer_id) == ("active", officer)
        assert sorted(a["officer_id"] for a in await auto_claims(site.store)) == sorted(
            (w.officer.id, colleague.id)
        )

    # the colleague leaves (its thread back to the queue is given to Li? no: Li is at the cap)
    status, _ = await site.call("PUT", "/duty", colleague, {"on_duty": False})
    assert status == 200
    async with Reader(client(site.ws, w.token(w.officer))) as li:
        await li.until(lambda: present(li, 1))
        assert (await desk.thread(site.store, w.conv_b.id)).state == "waiting"  # at the cap
        status, _ = await site.call("POST", f"/conversations/{w.conv.id}/resolve", w.officer)
        assert status == 200
        await li.until(lambda: any(e.conv == w.conv_b.id for e in claims(li)))
        thread = await desk.thread(site.store, w.conv_b.id)
        assert (thread.state, thread.assigned_officer_id) == ("active", w.officer.id)


@pytest.fixture
async def routed(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Served]:
    settings = Settings(
        database_url=pg_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        port=free_port(),
        secret="desk",
        send_rate=100,
        send_burst=100,
    )
    async with inprocess(settings, pg_store) as served:
        yield served


async def test_away_reply_once_per_question_and_no_answer(
    routed: Served, pg_store: PostgresDatabase
) -> None:
    """Nobody on duty: the relative's question is answered once with the desk hours (a system
    card in both languages), not again for its next message, and the question still waits:
    no first response, nothing answered in the figures. The next question gets its own."""
    w = await seed(pg_store)
    async with aiohttp.ClientSession() as http:
        site = Site(routed.http_url + "/api/v1", routed.ws_url, http, pg_store, w)
        await away(site, routed)


async def away(site: Site, routed: Served) -> None:  # noqa: F811
    w = site.world
    staff = await seed_staff(site.store, w)
    status, _ = await site.call(
        "PUT", f"/prisons/{w.gaoming.id}/desk-settings", staff.admin, settings("off", away=True)
    )
    assert status == 200

    def system(reader: Reader) -> list[MessageEvent]:
        return [m for m in reader.messages if m.kind == "system"]

    async with Reader(client(site.ws, w.token(w.relative))) as relative:
        await ask(site, w.relative, w.conv.id, "有人吗？")
        await relative.until(lambda: len(system(relative)) == 1)
        card = json.loads(system(relative)[0].body)
        assert card["fact"] == "away"
        assert "Mon-Fri 8:30-17:30" in card["text"]["en"]
        assert "周一至周五 8:30-17:30" in card["text"]["zh-CN"]
        await ask(site, w.relative, w.conv.id, "还在吗？")
        await relative.until(lambda: [m.body for m in relative.messages][-1] == "还在吗？")
        thread = await desk.thread(site.store, w.conv.id)
        assert (thread.state, thread.first_reply_at) == ("waiting", None)
        [cycle] = await desk.cycles(site.store, w.conv.id)
        assert cycle.first_reply_at is None
        status, figures = await site.call("GET", "/stats", w.officer)
        assert status == 200
        today = figures["prisons"][0]["days"][-1]
        assert (today["cycles"], today["answered"]) == (1, 0)

        await put_on_duty(site, w.officer)
        async with Reader(client(site.ws, w.token(w.officer))) as li:
            await li.until(lambda: present(li, 1))
            await li.client.send(w.conv.id, "在的，请讲。")
            status, _ = await site.call("POST", f"/conversations/{w.conv.id}/resolve", w.officer)
            assert status == 200
            await ask(site, w.relative, w.conv.id, "谢谢，还有一个问题")
            await relative.until(lambda: relative.messages[-1].body == "谢谢，还有一个问题")
            await routed.app[ROUTER].settled()  # Li was on duty when it was asked
        # Li left (its socket closed): the next question gets its own away reply
        await relative.until(lambda: last_presence(relative) == 0)
        await site.call("POST", f"/conversations/{w.conv.id}/resolve", w.officer)
        await ask(site, w.relative, w.conv.id, "晚上好")
        await relative.until(lambda: len(system(relative)) == 2)
        assert json.loads(system(relative)[1].body)["cycle"] == 3
    kinds = Counter(m.kind for m in await conversations_messages(site.store, w.conv.id))
    assert kinds["system"] == 2


async def conversations_messages(store: PostgresDatabase, conv: int) -> list[Any]:
    from storage import messages

    return list(await messages.messages(store, conv, after=0, limit=100))


async def more_threads(store: PostgresDatabase, world: World, n: int) -> list[tuple[User, int]]:
    """``n`` more relatives of Gaoming, each verified and with its thread open."""
    made = []
    for i in range(n):
        relative = await accounts.add_user(store, "relative", f"1390000{i:04d}", f"R{i}", "x")
        inmate = await prisons.add_inmate(store, world.gaoming.id, f"GM-9{i:02d}", f"I{i}")
        link = await links.request_link(store, relative.id, inmate.id, "son", "register")
        await links.decide_link(store, link, "verified", world.officer.id, None)
        conv = await conversations.open_conversation(store, relative.id, inmate.id)
        world.tokens[relative.login] = await sessions.issue(store, relative, days=1)
        made.append((relative, conv.id))
    return made


async def test_two_processes_never_give_a_question_twice_nor_past_the_cap(
    pg_store: PostgresDatabase,
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    servers: list[ServerProcess],  # noqa: F811
) -> None:
    """Ten questions sent at once, half to each of two processes, three officers on duty with
    a cap of two: exactly six are given, one each, at most two per officer; the other four
    wait. One resolved frees one place: exactly one more is given."""
    world = await seed(pg_store, extra_officers=2)
    staff = await seed_staff(pg_store, world)
    asking = await more_threads(pg_store, world, 10)
    officers = [world.officer, *world.extra_officers]
    for officer in officers:
        await desk.change_duty(pg_store, officer.id, officer.prison_ids, True, _now())
    env = {"KINLINE_REDIS_PREFIX": redis_prefix, "KINLINE_ASSIGN_INTERVAL": "0.2"}
    a = ServerProcess(pg_url, redis_url, env=env)
    b = ServerProcess(pg_url, redis_url, env=env)
    servers.extend((a, b))
    await asyncio.gather(a.start(), b.start())
    async with aiohttp.ClientSession() as http:
        site_a = Site(a.http_url + "/api/v1", a.ws_url, http, pg_store, world)
        site_b = Site(b.http_url + "/api/v1", b.ws_url, http, pg_store, world)
        status, _ = await site_a.call(
            "PUT", f"/prisons/{world.gaoming.id}/desk-settings", staff.admin, settings(cap=2)
        )
        assert status == 200
        async with (
            Reader(client(a.ws_url, world.token(officers[0]))) as first,
            Reader(client(b.ws_url, world.token(officers[1]))),
            Reader(client(a.ws_url, world.token(officers[2]))),
            Reader(client(b.ws_url, world.token(world.supervisor))) as watcher,
        ):
            await first.until(lambda: present(first, 3))
            await asyncio.gather(
                *(
                    ask(site_a if n % 2 else site_b, relative, conv, f"问题 {n}")
                    for n, (relative, conv) in enumerate(asking)
                )
            )
            await watcher.until(lambda: len({e.conv for e in claims(watcher)}) == 6)
            held = await desk.held_threads(pg_store)
            load = Counter(t.assigned_officer_id for t in held)
            assert len(held) == 6 and set(load.values()) == {2}
            given = await auto_claims(pg_store)
            assert len(given) == 6  # one claim per thread, never two

            one = held[0]
            assert one.assigned_officer_id is not None
            holder = next(o for o in officers if o.id == one.assigned_officer_id)
            status, _ = await site_b.call("POST", f"/conversations/{one.id}/resolve", holder)
            assert status == 200
            await watcher.until(lambda: len({e.conv for e in claims(watcher)}) == 7)
            held = await desk.held_threads(pg_store)
            assert len(held) == 6
            assert max(Counter(t.assigned_officer_id for t in held).values()) == 2
            assert len(await auto_claims(pg_store)) == 7
            waiting = await desk.threads(
                pg_store, prison_ids=[world.gaoming.id], states=["waiting"]
            )
            assert len(waiting) == 3


def _now() -> Any:
    from storage.sql import utcnow

    return utcnow()


async def test_settings_and_assignment_in_the_store_on_both_databases(store: Any) -> None:
    """The rule itself, on SQLite and PostgreSQL: defaults, an audited change, round robin by
    id after the last one given, the cap, candidates off duty or of another prison left out,
    and nothing when assignment is off."""
    w = await seed(store, extra_officers=1)
    colleague = w.extra_officers[0]
    now = _now()
    assert await desk_settings.settings(store, w.gaoming.id) == DeskSettings(prison_id=w.gaoming.id)
    for conv in (w.conv, w.conv_b):
        who = w.relative if conv is w.conv else w.relative_b
        await store.append_messages(
            [NewMessage(conv.id, who.id, "relative", f"q{conv.id}", "在吗？")]
        )
    everyone = [w.officer.id, colleague.id, w.other_officer.id]
    assert await routing.assign_next(store, w.gaoming.id, everyone, now) is None  # off
    await desk_settings.update(
        store,
        DeskSettings(prison_id=w.gaoming.id, auto_assign="round_robin", assign_cap=1),
        w.officer.id,
        now,
    )
    assert await routing.assign_next(store, w.gaoming.id, everyone, now) is None  # nobody on duty
    for officer in (w.officer, colleague, w.other_officer):
        await desk.change_duty(store, officer.id, officer.prison_ids, True, now)
    first = await routing.assign_next(store, w.gaoming.id, everyone, now)
    second = await routing.assign_next(store, w.gaoming.id, everyone, now)
    assert first is not None and second is not None
    assert (first.id, first.assigned_officer_id) == (w.conv.id, w.officer.id)  # oldest first
    assert (second.id, second.assigned_officer_id) == (w.conv_b.id, colleague.id)
    assert await routing.assign_next(store, w.gaoming.id, everyone, now) is None  # nothing left
    assert routing.next_in_turn([3, 1, 2], 2) == 3 and routing.next_in_turn([3, 1, 2], 3) == 1
    entries = await audit_trail.entries(store, TrailQuery(action="conversation.claimed"))
    assert sorted((e.object_id, e.actor) for e in entries) == [
        (w.conv.id, None),
        (w.conv_b.id, None),
    ]
    [changed] = await audit_trail.entries(store, TrailQuery(action="desk_settings.changed"))
    assert changed.after is not None and changed.after["auto_assign"] == "round_robin"
