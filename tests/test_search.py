"""Search (issue 18) on both databases, over real HTTP: Chinese from two characters, Latin
case-insensitively, LIKE's wildcards taken literally, scoped by prison and role (notes for
staff only, a relative its own conversations), supervisors' and the admin's searches audited,
paged newest first, bad queries with their own codes, purged messages gone from the index."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from domain.records import Conversation, MessageKind, NewMessage, User
from server import sessions
from server.config import Settings
from storage import accounts, audit_trail, conversations, links, prisons, retention, search
from storage.postgres import PostgresDatabase
from storage.sql import Database, utcnow
from tests.servers import free_port, inprocess
from tests.tamper import triggers_off
from tests.world import Staff, World, seed, seed_staff


@dataclass
class Found:
    api: str
    http: aiohttp.ClientSession
    store: Database
    world: World
    staff: Staff
    sanshui_relative: User
    sanshui_conv: Conversation

    async def get(self, who: User | None, path: str, **params: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.world.token(who)}"} if who else {}
        async with self.http.get(self.api + path, params=params, headers=headers) as response:
            return response.status, await response.json()

    async def hits(self, who: User, q: str, **params: Any) -> list[tuple[int, int, str]]:
        status, page = await self.get(who, "/search", q=q, **params)
        assert status == 200, page
        return [(h["conv"], h["seq"], h["body"]) for h in page["items"]]


CIDS = itertools.count(1)


async def say(store: Database, conv: int, who: User, body: str, kind: MessageKind = "text") -> int:
    [appended] = await store.append_messages(
        [NewMessage(conv, who.id, who.role, f"c{next(CIDS)}", body, kind)]
    )
    assert appended is not None
    return appended.message.seq


@pytest.fixture
async def found(store: Database) -> AsyncIterator[Found]:
    """Each database (``store`` is parametrized), seeded, served in this process."""
    world = await seed(store)
    staff = await seed_staff(store, world)
    inmate = await prisons.add_inmate(store, world.sanshui.id, "SS-001", "Zhou Qiang")
    relative = await accounts.add_user(store, "relative", "13800000009", "Zhou Ling", "x")
    link = await links.request_link(store, relative.id, inmate.id, "sister", "card")
    await links.decide_link(store, link, "verified", world.other_officer.id, None)
    world.tokens[relative.login] = await sessions.issue(store, relative, days=1)
    conv = await conversations.open_conversation(store, relative.id, inmate.id)
    async with (
        inprocess(Settings(port=free_port(), secret="search"), store) as served,
        aiohttp.ClientSession() as http,
    ):
        yield Found(served.http_url + "/api/v1", http, store, world, staff, relative, conv)


async def test_chinese_from_two_characters_latin_in_any_case(found: Found) -> None:
    w = found.world
    asked = await say(found.store, w.conv.id, w.relative, "他最近身体怎么样")
    answered = await say(found.store, w.conv.id, w.officer, "Hello Chen Mei, VISIT on Monday")
    await say(found.store, w.conv.id, w.relative, "谢谢")
    assert await found.hits(w.officer, "身体") == [(w.conv.id, asked, "他最近身体怎么样")]
    assert await found.hits(w.officer, "最近身体怎么") == [(w.conv.id, asked, "他最近身体怎么样")]
    assert await found.hits(w.officer, "体好") == []
    for q in ("visit", "VISIT ON monday", "mo", "hELLO chen"):
        assert await found.hits(w.officer, q) == [
            (w.conv.id, answered, "Hello Chen Mei, VISIT on Monday")
        ], q
    status, page = await found.get(w.officer, "/search", q="  monday ")  # trimmed
    assert status == 200 and page["items"][0]["snippet"] == "…ello Chen Mei, VISIT on Monday"
    hit = page["items"][0]
    assert hit["inmate"] == {"id": w.conv.inmate_id, "name": "Chen Jian", "number": "GM-001"}
    assert hit["relative"] == {"id": w.relative.id, "name": "Chen Mei"}
    assert hit["sender"]["role"] == "officer" and hit["kind"] == "text"


async def test_like_wildcards_and_quotes_are_taken_literally(found: Found) -> None:
    w = found.world
    await say(found.store, w.conv.id, w.relative, "I sent 500 yuan")
    literal = await say(found.store, w.conv.id, w.relative, 'about 50% of it, "a_b" said')
    for q in ("50%", "a_b", '"a_b"', "% of", "%"):
        got = await found.hits(w.officer, q) if len(q) >= 2 else []
        assert [seq for _, seq, _ in got] == ([literal] if len(q) >= 2 else []), q
    assert await found.hits(w.officer, "a%b") == []
    assert await found.hits(w.officer, "__") == []


async def test_each_role_searches_its_own_scope_and_notes_are_for_staff(found: Found) -> None:
    w, s = found.world, found.staff
    a_text = await say(found.store, w.conv.id, w.relative, "身体 A")
    a_note = await say(found.store, w.conv.id, w.officer, "内部 身体 note", "note")
    b_text = await say(found.store, w.conv_b.id, w.relative_b, "身体 B")
    c_text = await say(found.store, found.sanshui_conv.id, found.sanshui_relative, "身体 C")
    a, b, c = (w.conv.id, a_text), (w.conv_b.id, b_text), (found.sanshui_conv.id, c_text)
    note = (w.conv.id, a_note)

    async def seen(who: User, **params: Any) -> list[tuple[int, int]]:
        return [(conv, seq) for conv, seq, _ in await found.hits(who, "身体", **params)]

    gaoming = [b, note, a]  # newest first
    assert await seen(w.officer) == gaoming
    assert await seen(w.supervisor) == gaoming
    assert await seen(w.other_officer) == [c]
    assert await seen(s.other_supervisor) == [c]
    assert await seen(s.admin) == [c, *gaoming]
    assert await seen(s.admin, prison=w.sanshui.id) == [c]
    assert await seen(w.relative) == [a]  # its own conversation, never the note
    assert await seen(w.relative_b) == [b]
    assert await seen(w.stranger) == []
    assert await seen(found.sanshui_relative, prison=w.gaoming.id) == []
    status, body = await found.get(w.officer, "/search", q="身体", prison=w.sanshui.id)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await found.get(None, "/search", q="身体")
    assert (status, body["error"]["code"]) == (401, "not_authenticated")


async def test_a_supervisors_and_the_admins_searches_are_audited(found: Found) -> None:
    w, s = found.world, found.staff
    await say(found.store, w.conv.id, w.relative, "身体 A")
    await say(found.store, w.conv_b.id, w.relative_b, "身体 B")
    await found.hits(w.officer, "身体")  # an officer's work: not audited
    await found.hits(w.relative, "身体")
    assert await audit_trail.audit_entries(found.store, action=search.SEARCHED) == []
    await found.hits(w.supervisor, "身体")
    await found.hits(w.supervisor, "nothing here")
    await found.hits(s.admin, "身体")
    admin, nothing, supervisor = await audit_trail.audit_entries(
        found.store, action=search.SEARCHED
    )
    assert (supervisor.actor_id, supervisor.prison_id) == (w.supervisor.id, w.gaoming.id)
    assert supervisor.after == {
        "q": "身体",
        "before": None,
        "conversations": [w.conv_b.id, w.conv.id],
    }
    assert nothing.after == {"q": "nothing here", "before": None, "conversations": []}
    assert (admin.actor_id, admin.prison_id) == (s.admin.id, None)
    assert admin.after is not None and set(admin.after["conversations"]) == {
        w.conv.id,
        w.conv_b.id,
    }
    # the supervisor reads its own search in its prison's trail
    status, trail = await found.get(w.supervisor, "/audit", action=search.SEARCHED)
    assert status == 200 and [e["actor"]["id"] for e in trail["entries"]] == [
        w.supervisor.id,
        w.supervisor.id,
    ]


async def test_pages_run_newest_first_to_the_end(found: Found) -> None:
    w = found.world
    for n in range(25):
        await say(found.store, w.conv.id, w.relative, f"page item {n}")
    seen: list[int] = []
    before: int | None = None
    sizes = []
    while True:
        params: dict[str, Any] = {"q": "item", "limit": 10}
        if before is not None:
            params["before"] = before
        status, page = await found.get(w.officer, "/search", **params)
        assert status == 200
        sizes.append(len(page["items"]))
        seen += [h["seq"] for h in page["items"]]
        before = page["next"]
        if before is None:
            break
    assert sizes == [10, 10, 5]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 25


@pytest.mark.parametrize(
    ("q", "code"),
    [
        ("", "query_too_short"),
        ("   ", "query_too_short"),
        ("身", "query_too_short"),
        (" x ", "query_too_short"),
        ("x" * 101, "query_too_long"),
    ],
)
async def test_a_bad_query_has_its_own_code(found: Found, q: str, code: str) -> None:
    status, body = await found.get(found.world.officer, "/search", q=q)
    assert status == 400 and body["error"]["code"] == code and body["error"]["field"] == "q"


async def test_bad_paging_is_refused(found: Found) -> None:
    for params in ({"limit": 0}, {"limit": 101}, {"before": "x"}, {"prison": -1}):
        status, body = await found.get(found.world.officer, "/search", q="ok", **params)
        assert status == 400 and body["error"]["code"] == "invalid_request", params
    status, body = await found.get(found.world.officer, "/search")
    assert status == 400 and body["error"]["code"] == "query_too_short"


async def test_purged_messages_leave_the_index(found: Found) -> None:
    w, store = found.world, found.store
    await say(store, w.conv.id, w.relative, "旧的消息 old words")
    await say(store, w.conv.id, w.relative, "新的消息 new words")
    async with triggers_off(store, "messages") as sql:  # back-dated (messages_kept)
        await sql.execute(
            "UPDATE messages SET created_at = $1 WHERE conversation_id = $2 AND seq = 1",
            utcnow() - timedelta(days=3000),
            w.conv.id,
        )
    assert len(await found.hits(w.officer, "消息")) == 2
    assert await retention.purge(store, utcnow() - timedelta(days=2000), utcnow()) == 1
    assert [b for _, _, b in await found.hits(w.officer, "消息")] == ["新的消息 new words"]
    assert await found.hits(w.officer, "old words") == []
    assert await found.hits(w.officer, "旧的") == []
    async with store.read() as sql:  # and nothing of it is left in the index itself
        if store.dialect == "sqlite":
            indexed = await sql.fetchval("SELECT count(*) FROM messages_fts_docsize")
            assert indexed == 1
            await sql.execute(
                "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 0)"
            )
        else:
            grams = await sql.fetchval(
                "SELECT kinline_bigrams(body) FROM messages WHERE conversation_id = $1 AND seq = 1",
                w.conv.id,
            )
            assert grams == []


async def test_the_postgres_match_is_answered_by_the_bigram_index(
    pg_store: PostgresDatabase,
) -> None:
    """The match condition the search runs is the indexed expression (a seeded table is tiny,
    so sequential scans are turned off, as the planner would choose at scale: the README has
    the plan of the whole statement on a million rows)."""
    world = await seed(pg_store)
    await say(pg_store, world.conv.id, world.relative, "他最近身体怎么样")
    args: list[Any] = []
    source, match = search._matching(pg_store, "身体", args)
    async with pg_store.write() as sql:
        await sql.execute("SET LOCAL enable_seqscan = off")
        explained = await sql.fetch(f"EXPLAIN SELECT m.id{source} WHERE {match}", *args)
        found = await sql.fetch(f"SELECT m.id{source} WHERE {match}", *args)
    plan = "\n".join(r["QUERY PLAN"] for r in explained)
    # one index scan per partition of messages (0021), each on its copy of the bigram index
    scans = re.findall(r"Bitmap Index Scan on (\S+)", plan)
    assert scans and all("bigrams" in name for name in scans), plan
    assert "Seq Scan" not in plan, plan
    assert len(found) == 1


async def test_the_bigrams_of_a_long_body_are_its_character_pairs(
    pg_store: PostgresDatabase,
) -> None:
    """Past 256 characters kinline_bigrams takes its linear path (0022): the same keys as the
    short path, so one index holds both kinds of rows."""
    for body in (
        "他最近身体怎么样 Visit HELLO" * 20,
        "长" * 15000 + "ab",
        "短" * 256,
        "x\ny" * 100,
    ):
        async with pg_store.read() as sql:
            grams = await sql.fetchval("SELECT kinline_bigrams($1)", body)
        low = body.lower()
        assert set(grams) == {low[i : i + 2] for i in range(len(low) - 1)}, body[:20]


async def test_a_term_found_everywhere_walks_the_newest_messages(
    pg_store: PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: past ``DENSE`` index candidates the search walks messages by id, without
    the index, and finds the same hits, in the same order, over the same pages."""
    world = await seed(pg_store)
    for n in range(7):
        await say(pg_store, world.conv.id, world.relative, f"身体 {n}")
        await say(pg_store, world.conv_b.id, world.relative_b, f"Visit {n}")
    where = search.Where(prison_ids=(world.gaoming.id,))

    async def pages(text: str) -> list[list[int]]:
        seen: list[list[int]] = []
        before = None
        while True:
            hits, before = await search.search(pg_store, text, where, before=before, limit=3)
            seen.append([h.id for h in hits])
            if before is None:
                return seen

    fetched = {q: await pages(q) for q in ("身体", "visit", "体 3")}
    probe, args = search.probe_sql("身体", None)
    async with pg_store.read() as sql:
        assert await sql.fetchval(probe, *args) == 7
    monkeypatch.setattr(search, "DENSE", 2)
    walked = {q: await pages(q) for q in ("身体", "visit", "体 3")}
    assert walked == fetched
    assert [len(p) for p in walked["身体"]] == [3, 3, 1]
    statement, _ = search.search_sql(pg_store, "身体", where, None, 4, dense=True)
    assert "kinline_bigrams" not in statement
