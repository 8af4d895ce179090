"""Keyword review without censorship: matching (pure), the lists and the review flow on both
stores, and over real sockets and HTTP: a matching message is delivered exactly as any other
(the same frames to the relative and the officer), flagged in the append's own statement,
listed in the review queue, marked reviewed with a note (audited), counted by the figures;
and a list change reaches a second server process, by the broker and by the version check."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect

from channels.broker_memory import MemoryBroker
from channels.hub import Hub
from domain import chain
from domain.keywords import Matcher, join_flags, normalise, split_flags
from domain.records import NewMessage, User
from server.config import Settings
from server.keys import KEYWORDS
from server.keywords import KEYWORDS_TOPIC, LiveKeywords
from storage import audit_trail, chains, figures, keywords
from storage.errors import Conflict, NotFound
from storage.keywords import KeywordList
from storage.postgres import PostgresDatabase
from storage.sql import Database, utcnow
from storage.sqlite import SqliteDatabase
from tests.servers import free_port, inprocess
from tests.world import Staff, World, seed, seed_staff

LISTS = {
    "escape": ["越狱", "翻墙", "Escape Plan"],
    "contraband": ["手机", "ＳＩＭ卡"],  # a full-width keyword
    "threats": ["杀了你"],
    "self-harm": ["不想活"],
}


# matching, pure


def test_normalisation_makes_full_width_half_width_and_case_one() -> None:
    assert normalise("ＡＢＣ１２３") == normalise("abc123") == "abc123"
    assert normalise("ESCAPE Plan") == normalise("ｅｓｃａｐｅ　ｐｌａｎ") == "escapeplan"
    assert normalise("ｶﾀｶﾅ") == "カタカナ"  # half-width katakana are the full-width ones
    assert normalise("越 狱。") == normalise("越\u200b狱！") == normalise("越，狱") == "越狱"
    assert normalise("①") == "1"
    assert normalise("!!! ...") == ""


def test_chinese_text_matches_in_every_width_and_case() -> None:
    m = Matcher(LISTS, version=3)
    assert m.version == 3
    assert m.categories("我们计划越狱") == ["escape"]
    assert m.categories("越 狱，就在今晚") == ["escape"]
    assert m.categories("给我带一张sim卡和手机") == ["contraband"]  # half-width, keyword full-width
    assert m.categories("ＳＩＭ卡") == ["contraband"]
    assert m.categories("Sim卡") == ["contraband"]
    assert m.categories("the ESCAPE plan") == ["escape"]
    assert m.categories("ｔｈｅ　ｅｓｃａｐｅ　ｐｌａｎ") == ["escape"]
    assert m.categories("我不想活了，他说要杀了你") == ["self-harm", "threats"]
    assert m.categories("今天的饭菜很好吃") == []
    assert m.flags("今天的饭菜很好吃") is None
    assert m.flags("越狱要用手机") == "contraband,escape"


def test_overlapping_keywords_of_two_categories_both_match() -> None:
    """Regression guard: one alternation over every keyword would report only the longest
    keyword at a position and lose a shorter one of another category inside it."""
    m = Matcher({"a": ["越狱计划"], "b": ["越狱"], "c": ["计划"]})
    assert m.categories("越狱计划") == ["a", "b", "c"]


def test_no_lists_match_nothing_and_flags_round_trip() -> None:
    assert not Matcher({})
    assert not Matcher({"escape": ["", "  ", "!!"]})
    assert Matcher({}).categories("越狱") == []
    assert join_flags(["threats", "escape", "escape"]) == "escape,threats"
    assert join_flags([]) is None
    assert split_flags("escape,threats") == ["escape", "threats"]
    assert split_flags(None) == []


# storage, on both databases


async def _world(store: Database) -> tuple[World, Staff]:
    world = await seed(store)
    return world, await seed_staff(store, world)


async def test_lists_are_replaced_as_a_whole_versioned_and_audited(store: Database) -> None:
    _, staff = await _world(store)
    first = await keywords.version(store)
    new = [KeywordList(c, c.upper(), w) for c, w in LISTS.items()]
    stored = await keywords.replace_lists(store, new, staff.admin.id, utcnow())
    assert stored.version == first + 1
    assert stored.as_mapping() == LISTS
    assert await keywords.lists(store) == stored
    again = await keywords.replace_lists(
        store, [KeywordList("escape", "脱逃", ["越狱"])], staff.admin.id, utcnow()
    )
    assert again.version == first + 2
    assert [k.category for k in again.lists] == ["escape"]  # a category left out is gone
    [entry, _] = await audit_trail.audit_entries(store, action="keywords.updated")
    assert entry.actor_id == staff.admin.id
    assert entry.object_id == again.version
    assert entry.before is not None and len(entry.before["lists"]) == 4
    assert entry.after == {"lists": [{"category": "escape", "label": "脱逃", "words": ["越狱"]}]}


async def _append(store: Database, world: World, cid: str, body: str, flags: str | None) -> int:
    w = world
    [done] = await store.append_messages(
        [NewMessage(w.conv.id, w.relative.id, "relative", cid, body, flags=flags)]
    )
    assert done is not None and done.created
    return done.message.id


async def test_flags_are_stored_by_the_append_and_reviewed_once_with_a_note(
    store: Database,
) -> None:
    w, _ = await _world(store)
    plain = await _append(store, w, "c1", "你好", None)
    flagged_id = await _append(store, w, "c2", "越狱要带手机", "contraband,escape")
    with pytest.raises(NotFound):
        await keywords.flag(store, plain)
    [item] = await keywords.flagged(store, [w.gaoming.id])
    assert (item.id, item.categories, item.body, item.review) == (
        flagged_id,
        ["contraband", "escape"],
        "越狱要带手机",
        None,
    )
    assert (item.conversation_id, item.prison_id, item.seq) == (w.conv.id, w.gaoming.id, 2)
    assert await keywords.flagged(store, [w.sanshui.id]) == []
    assert await keywords.flagged(store, [w.gaoming.id], state="reviewed") == []

    at = utcnow()
    await keywords.review(store, item, w.officer.id, "家属询问探视安排，非脱逃", at)
    with pytest.raises(Conflict):
        await keywords.review(store, item, w.supervisor.id, "again", at)
    assert await keywords.flagged(store, [w.gaoming.id]) == []
    [done] = await keywords.flagged(store, [w.gaoming.id], state="reviewed")
    assert done.review is not None
    assert (done.review.by.id, done.review.note) == (w.officer.id, "家属询问探视安排，非脱逃")
    assert len(await keywords.flagged(store, [w.gaoming.id], state="all")) == 1
    [entry] = await audit_trail.audit_entries(store, action="flag.reviewed")
    assert (entry.actor_id, entry.object_type, entry.object_id, entry.prison_id) == (
        w.officer.id,
        "message",
        flagged_id,
        w.gaoming.id,
    )
    assert entry.after is not None and entry.after["note"] == "家属询问探视安排，非脱逃"


async def test_flags_are_not_part_of_the_message_hash(store: Database) -> None:
    """The chain (DESIGN.md section 9) covers at_us, body, conv, kind, sender and seq only: a
    flagged message hashes as the same message unflagged would, and the chains and the audit
    chain still verify after a flag is reviewed."""
    w, _ = await _world(store)
    await _append(store, w, "c1", "越狱", "escape")
    flagged = await keywords.flag(store, (await keywords.flagged(store, [w.gaoming.id]))[0].id)
    async with store.read() as sql:
        row = await sql.fetchrow("SELECT hash, created_at FROM messages WHERE id = $1", flagged.id)
        assert row is not None
        stored_hash, at = bytes(row["hash"]), sql.when(row["created_at"])
    form = chain.message_form(
        at_us=chain.at_us(at), body="越狱", conv=w.conv.id, kind="text", sender=w.relative.id, seq=1
    )
    assert stored_hash == chain.step(bytes(32), form)
    await keywords.review(store, flagged, w.officer.id, "ok", utcnow())
    verdict = await chains.verify(store)
    assert verdict.broken is None and verdict.messages == 1


async def test_figures_count_flags_per_category_reviewed_and_not(store: Database) -> None:
    w, _ = await _world(store)
    a = await _append(store, w, "c1", "越狱", "escape")
    await _append(store, w, "c2", "越狱带手机", "contraband,escape")
    await _append(store, w, "c3", "没事", None)
    await keywords.review(store, await keywords.flag(store, a), w.officer.id, "ok", utcnow())
    now = utcnow() + timedelta(seconds=1)
    today = now.astimezone(UTC).date()
    named = await figures.prisons(store, [w.gaoming.id, w.sanshui.id])
    gm, ss = await figures.prison_figures(
        store, named, today - timedelta(days=1), today + timedelta(days=1), UTC, now
    )
    assert [msgspec_tuple(f) for f in gm.flags] == [("contraband", 1, 0, 1), ("escape", 2, 1, 1)]
    assert gm.flags_unreviewed == 1
    assert (ss.flags, ss.flags_unreviewed) == ([], 0)
    before = date(2020, 1, 1)
    [old] = await figures.prison_figures(store, named[:1], before, before, UTC, now)
    assert (old.flags, old.flags_unreviewed) == ([], 1)  # the queue is now, the range is not


def msgspec_tuple(f: figures.FlagFigures) -> tuple[str, int, int, int]:
    return (f.category, f.flagged, f.reviewed, f.unreviewed)


# over real sockets and HTTP (PostgreSQL, Redis)


@dataclass
class Live:
    http: aiohttp.ClientSession
    api: str
    ws: str
    world: World
    staff: Staff

    def auth(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.world.token(user)}"}

    async def call(self, method: str, path: str, user: User, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method, self.api + path, json=body, headers=self.auth(user)
        ) as response:
            return response.status, await response.json()


def settings_for(pg_url: str, redis_url: str | None, prefix: str, **extra: Any) -> Settings:
    base = Settings(
        database_url=pg_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        port=free_port(),
        secret="keywords",
        send_rate=500,
        send_burst=500,
    )
    return dataclasses.replace(base, **extra)


@pytest.fixture
async def live(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Live]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    settings = settings_for(pg_url, redis_url, redis_prefix)
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Live(http, served.http_url + "/api/v1", served.ws_url, world, staff)


async def socket(url: str, token: str) -> ClientConnection:
    ws = await connect(
        url,
        subprotocols=["kinline.v1"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
    )
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def frame_of(ws: ClientConnection, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame


def shape(frame: dict[str, Any]) -> dict[str, Any]:
    """A frame with what differs between two messages (ids, seq, text, time) blanked."""
    blank = {"seq", "id", "body", "at", "cid"}
    return {k: ("*" if k in blank else v) for k, v in frame.items()}


async def put_lists(live: Live, lists: dict[str, list[str]]) -> int:
    status, got = await live.call(
        "PUT",
        "/admin/keywords",
        live.staff.admin,
        {"lists": [{"category": c, "label": c, "words": w} for c, w in lists.items()]},
    )
    assert status == 200, got
    version: int = got["version"]
    return version


async def test_a_matching_message_is_delivered_as_any_other_and_flagged(live: Live) -> None:
    w = live.world
    await put_lists(live, LISTS)
    officer = await socket(live.ws, w.token(w.officer))
    relative = await socket(live.ws, w.token(w.relative))
    try:
        await officer.send(json.dumps({"type": "watch", "conv": w.conv.id, "after": 0}))
        await frame_of(officer, "subscribed")
        await relative.send(json.dumps({"type": "hello", "resume": {}}))
        await frame_of(relative, "subscribed")
        got: dict[str, list[dict[str, Any]]] = {"officer": [], "relative": [], "ack": []}
        for cid, text in (("c-1", "请问下周可以探视吗"), ("c-2", "我们的越 狱计划，带ｓｉｍ卡")):
            await relative.send(
                json.dumps({"type": "send", "conv": w.conv.id, "cid": cid, "body": text})
            )
            got["ack"].append(await frame_of(relative, "ack"))
            got["relative"].append(await frame_of(relative, "message"))
            got["officer"].append(await frame_of(officer, "message"))
        for side in ("officer", "relative", "ack"):
            plain, flagged = got[side]
            assert shape(plain) == shape(flagged), side  # the same frame, key for key
            assert not {"flags", "categories", "review"} & set(flagged), side
            assert "escape" not in json.dumps(flagged), side
        assert got["relative"][1]["body"] == "我们的越 狱计划，带ｓｉｍ卡"  # delivered unaltered
    finally:
        await officer.close()
        await relative.close()

    status, queue = await live.call("GET", "/flags", w.officer)
    assert status == 200
    [item] = queue["items"]
    assert item["categories"] == ["contraband", "escape"]
    assert queue["labels"] == {"contraband": "contraband", "escape": "escape"}  # names given
    assert (item["conv"], item["seq"], item["review"]) == (w.conv.id, 2, None)
    assert item["sender"]["id"] == w.relative.id

    # the relative's own reads never show a flag
    status, history = await live.call("GET", f"/conversations/{w.conv.id}/messages", w.relative)
    assert status == 200 and "escape" not in json.dumps(history)

    # the review: a note is required, one review per flag, audited
    status, bad = await live.call("POST", f"/flags/{item['id']}/review", w.officer, {"note": " "})
    assert (status, bad["error"]["code"]) == (400, "invalid_request")
    status, done = await live.call(
        "POST", f"/flags/{item['id']}/review", w.supervisor, {"note": "已核实：无脱逃风险"}
    )
    assert status == 200, done
    assert done["review"]["by"]["id"] == w.supervisor.id
    assert done["review"]["note"] == "已核实：无脱逃风险"
    status, again = await live.call(
        "POST", f"/flags/{item['id']}/review", w.officer, {"note": "again"}
    )
    assert (status, again["error"]["code"]) == (409, "already_reviewed")
    status, queue = await live.call("GET", "/flags", w.officer)
    assert queue["items"] == []
    status, reviewed = await live.call("GET", "/flags?state=reviewed", w.supervisor)
    assert [i["id"] for i in reviewed["items"]] == [item["id"]]
    status, trail = await live.call("GET", "/audit?action=flag.reviewed", w.supervisor)
    assert status == 200, trail
    [entry] = trail["entries"]
    assert entry["object_id"] == item["id"]
    status, trail = await live.call("GET", "/audit?action=flags.viewed", w.supervisor)
    assert trail["entries"]  # the supervisor's looks are audited

    # an officer's text is matched as any other; a private note is not (staff-only already)
    for kind in ("note", "text"):
        status, sent = await live.call(
            "POST",
            f"/conversations/{w.conv.id}/messages",
            w.officer,
            {"body": "关于越狱", "kind": kind},
        )
        assert status == 201, sent
    status, queue = await live.call("GET", "/flags", w.officer)
    [answer] = queue["items"]
    assert (answer["seq"], answer["sender"]["id"]) == (sent["seq"], w.officer.id)
    await live.call("POST", f"/flags/{answer['id']}/review", w.officer, {"note": "本人答复"})

    # the figures count it
    status, stats = await live.call("GET", "/stats", w.supervisor)
    [gm] = stats["prisons"]
    assert gm["flags"] == [
        {"category": "contraband", "flagged": 1, "reviewed": 1, "unreviewed": 0},
        {"category": "escape", "flagged": 2, "reviewed": 2, "unreviewed": 0},
    ]
    assert gm["flags_unreviewed"] == 0


async def test_bad_lists_are_refused_with_a_stable_code(live: Live) -> None:
    admin = live.staff.admin
    for lists, why in (
        ([{"category": "Escape", "words": ["越狱"]}], "category"),
        ([{"category": "escape", "words": ["!!!"]}], "no letter"),
        ([{"category": "escape", "words": []}, {"category": "escape", "words": []}], "twice"),
        ([{"category": "escape", "words": ["x" * 51]}], "length"),
    ):
        status, got = await live.call("PUT", "/admin/keywords", admin, {"lists": lists})
        assert (status, got["error"]["code"]) == (400, "invalid_request"), why
    status, got = await live.call("GET", "/admin/keywords", admin)
    assert (status, got) == (200, {"version": 0, "lists": []})  # nothing refused was stored


async def test_a_list_change_reaches_a_second_server_process(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Two server processes on one PostgreSQL and Redis: the change made through one is
    compiled by the other (told through the broker), which then flags by it."""
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    slow = {"keyword_check": 3600.0}  # so only the broker can tell it in time
    async with (
        inprocess(settings_for(pg_url, redis_url, redis_prefix, **slow), pg_store) as one,
        inprocess(settings_for(pg_url, redis_url, redis_prefix, **slow), pg_store) as two,
        aiohttp.ClientSession() as http,
    ):
        first = Live(http, one.http_url + "/api/v1", one.ws_url, world, staff)
        second = Live(http, two.http_url + "/api/v1", two.ws_url, world, staff)
        version = await put_lists(first, {"escape": ["越狱"]})
        async with asyncio.timeout(10):
            await two.app[KEYWORDS].wait_for(version)
        assert two.app[KEYWORDS].matcher.categories("越 狱") == ["escape"]
        status, sent = await second.call(
            "POST",
            f"/conversations/{world.conv.id}/messages",
            world.officer,
            {"body": "关于越狱传闻的说明"},
        )
        assert status == 201, sent
        status, queue = await second.call("GET", "/flags", world.officer)
        assert [(i["seq"], i["categories"]) for i in queue["items"]] == [(sent["seq"], ["escape"])]


async def test_a_process_the_broker_did_not_tell_catches_up_by_the_version_check(
    pg_store: PostgresDatabase, pg_url: str
) -> None:
    """Without a shared broker (each process its own in-memory one, as if every publish were
    lost), the periodic version check still brings the change to the other process."""
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    quick = {"keyword_check": 0.05}
    async with (
        inprocess(settings_for(pg_url, None, "", **quick), pg_store) as one,
        inprocess(settings_for(pg_url, None, "", **quick), pg_store) as two,
        aiohttp.ClientSession() as http,
    ):
        first = Live(http, one.http_url + "/api/v1", one.ws_url, world, staff)
        version = await put_lists(first, {"threats": ["杀了你"]})
        async with asyncio.timeout(10):
            await two.app[KEYWORDS].wait_for(version)
        assert two.app[KEYWORDS].matcher.categories("我要杀了你") == ["threats"]


async def test_the_live_lists_follow_the_topic_and_drop_a_malformed_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await SqliteDatabase.open(str(tmp_path / "k.db"))
    await store.migrate()
    broker = MemoryBroker()
    hub = Hub(broker, store)
    await broker.start()
    await hub.start()
    live = LiveKeywords(store, hub, check_every=3600.0)
    try:
        await live.start()
        assert live.version == 1 and not live.matcher  # the seeded categories, no words yet
        hub.publish(KEYWORDS_TOPIC, b"not a version")
        assert "malformed keyword-version" in caplog.text
        stored = await keywords.replace_lists(
            store, [KeywordList("escape", "", ["越狱"])], None, utcnow()
        )
        hub.publish(KEYWORDS_TOPIC, str(stored.version).encode())
        async with asyncio.timeout(5):
            await live.wait_for(stored.version)
        assert live.matcher.categories("越 狱") == ["escape"]
        hub.publish(KEYWORDS_TOPIC, b"1")  # an older version: nothing to do
        assert live.version == stored.version
    finally:
        await live.close()
        await hub.close()
        await broker.close()
        await store.close()
