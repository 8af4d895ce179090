"""The thread list paged by a cursor and filtered (issue 18), on both databases, over HTTP:
paging through the queue (ties in the wait broken by id) and a relative's list gives the
unpaged order exactly, each thread once; filters by state, inmate number, relative name and
last activity; cursors and date ranges it did not give are 400s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from domain.records import NewMessage, User
from server import sessions
from server.config import Settings
from storage import accounts, desk, links, prisons, thread_list
from storage.sql import Database, utcnow
from tests.servers import free_port, inprocess
from tests.world import World, seed

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)


@dataclass
class Listed:
    api: str
    http: aiohttp.ClientSession
    store: Database
    world: World
    li: User  # a third relative, "Li Xiaohong", with threads of its own
    threads: list[int]  # the nine threads made here, GM-101..GM-109

    async def get(self, who: User, **params: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.world.token(who)}"}
        async with self.http.get(
            self.api + "/conversations", params=params, headers=headers
        ) as response:
            return response.status, await response.json()

    async def all_pages(self, who: User, **params: Any) -> tuple[list[int], list[int]]:
        """Every thread id, following ``next``; and the size of each page."""
        ids: list[int] = []
        sizes: list[int] = []
        cursor = None
        while True:
            status, page = await self.get(who, **params, **({"cursor": cursor} if cursor else {}))
            assert status == 200, page
            ids += [t["id"] for t in page["conversations"]]
            sizes.append(len(page["conversations"]))
            cursor = page["next"]
            if cursor is None:
                return ids, sizes


@pytest.fixture
async def listed(store: Database) -> AsyncIterator[Listed]:
    """Nine more threads of Gaoming: three per relative, in every state, three of them with
    the very same wait start (so the keyset's tie-break by id is exercised)."""
    w = await seed(store)
    li = await accounts.add_user(store, "relative", "13800000010", "Li Xiaohong", "x")
    w.tokens[li.login] = await sessions.issue(store, li, days=1)
    await desk.set_duty(store, w.officer.id, [w.gaoming.id], True, utcnow())
    relatives = [w.relative, w.relative_b, li]
    made = []
    for n in range(9):
        who = relatives[n % 3]
        inmate = await prisons.add_inmate(store, w.gaoming.id, f"GM-10{n + 1}", f"Inmate {n}")
        link = await links.request_link(store, who.id, inmate.id, "son", "card")
        await links.decide_link(store, link, "verified", w.officer.id, None)
        thread, _ = await desk.open_thread(store, who.id, inmate.id, utcnow())
        made.append(thread.id)
        if n % 4 != 3:  # 3 and 7 stay new
            await store.append_messages(
                [NewMessage(thread.id, who.id, "relative", f"q{n}", "question", "text")]
            )
        if n % 4 == 1:
            await desk.claim(store, thread.id, w.officer.id, utcnow())
        if n == 6:
            await desk.resolve(store, thread.id, w.officer.id, utcnow())
    async with store.write() as sql:
        for n, conv in enumerate(made):  # last activity one day apart, from T0
            await sql.execute(
                "UPDATE conversations SET updated_at = $1 WHERE id = $2",
                T0 + timedelta(days=n),
                conv,
            )
        for conv in (made[0], made[2], made[4]):  # the same wait start: ties
            await sql.execute(
                "UPDATE conversations SET wait_started_at = $1 WHERE id = $2", T0, conv
            )
    async with (
        inprocess(Settings(port=free_port(), secret="threads"), store) as served,
        aiohttp.ClientSession() as http,
    ):
        yield Listed(served.http_url + "/api/v1", http, store, w, li, made)


async def test_paging_the_queue_gives_the_whole_order_each_thread_once(listed: Listed) -> None:
    w = listed.world
    unpaged = [t.id for t in await desk.threads(listed.store, prison_ids=[w.gaoming.id])]
    assert len(unpaged) == 11  # the seeded two (new) and the nine
    ids, sizes = await listed.all_pages(w.officer, state="all", limit=2)
    assert ids == unpaged and sizes == [2, 2, 2, 2, 2, 1]
    ids, sizes = await listed.all_pages(w.supervisor, limit=3)  # the open queue, by default
    open_queue = [
        t.id
        for t in await desk.threads(
            listed.store, prison_ids=[w.gaoming.id], states=["waiting", "active"]
        )
    ]
    assert ids == open_queue and sizes == [3, 3]
    status, page = await listed.get(w.officer, state="all", limit=500)
    assert status == 200 and page["next"] is None and len(page["conversations"]) == 11


async def test_a_relatives_list_pages_most_recent_first(listed: Listed) -> None:
    li = listed.li
    ids, sizes = await listed.all_pages(li, limit=1)
    assert ids == [listed.threads[8], listed.threads[5], listed.threads[2]]
    assert sizes == [1, 1, 1]


async def test_filters(listed: Listed) -> None:
    w, made = listed.world, listed.threads

    async def ids(**params: Any) -> set[int]:
        status, page = await listed.get(w.officer, **params)
        assert status == 200, page
        return {t["id"] for t in page["conversations"]}

    assert await ids(state="active") == {made[1], made[5]}
    assert await ids(state="new", inmate="gm-10") == {made[3], made[7]}
    assert await ids(state="all", inmate="GM-105") == {made[4]}
    assert await ids(state="all", inmate="GM-1") == set(made)
    assert await ids(state="all", inmate="%") == set()  # a literal character
    assert await ids(state="all", relative="xiao") == {made[2], made[5], made[8]}
    assert await ids(state="all", relative="XIAOHONG", inmate="GM-106") == {made[5]}
    day = T0.date()
    seeded = {w.conv.id, w.conv_b.id}  # active today
    assert await ids(state="all", since=str(day + timedelta(days=7))) == {
        made[7],
        made[8],
        *seeded,
    }
    assert await ids(
        state="all", since=str(day + timedelta(days=2)), until=str(day + timedelta(days=3))
    ) == {made[2], made[3]}
    assert await ids(state="all", until=str(day)) == {made[0]}
    # filters and paging together
    found, sizes = await listed.all_pages(w.officer, state="all", relative="Chen", limit=2)
    assert set(found) == {made[0], made[3], made[6], w.conv.id} and sizes == [2, 2]


async def test_cursors_and_ranges_it_did_not_give_are_refused(listed: Listed) -> None:
    w = listed.world
    status, page = await listed.get(listed.li, limit=1)
    relatives_cursor = page["next"]
    for params in (
        {"cursor": "not-a-cursor"},
        {"cursor": relatives_cursor},  # of the other order
        {"cursor": "W10"},  # base64 of []
        {"cursor": "x" * 201},
        {"since": "2026-03-05", "until": "2026-03-04"},
        {"since": "yesterday"},
    ):
        status, body = await listed.get(w.officer, **params)
        assert status == 400 and body["error"]["code"] == "invalid_request", params
    with pytest.raises(thread_list.BadCursor):
        await thread_list.page(listed.store, thread_list.Filters(), cursor="WyJxIiwxXQ")
