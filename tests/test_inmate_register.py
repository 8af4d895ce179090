"""The bureau's inmate register over real HTTP and sockets, on PostgreSQL and Redis: a CSV
import reported line by line (a dry run writes nothing), a transfer carrying the inmate's
links and threads, a release ending its links with a ``link`` event and a notice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from domain.records import User
from storage import audit_trail, conversations, inmate_records, prisons
from storage.postgres import PostgresDatabase
from tests.browser import web_settings
from tests.servers import inprocess
from tests.world import World, seed, seed_staff


@dataclass
class Ctx:
    base: str
    ws: str
    http: aiohttp.ClientSession
    world: World
    admin: User
    store: PostgresDatabase

    async def call(
        self, method: str, path: str, who: User, *, json_body: Any = None, csv: bytes | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.world.token(who)}"}
        kwargs: dict[str, Any] = {}
        if csv is not None:
            headers["Content-Type"] = "text/csv"
            kwargs["data"] = csv
        elif json_body is not None:
            kwargs["json"] = json_body
        async with self.http.request(
            method, self.base + "/api/v1" + path, headers=headers, **kwargs
        ) as response:
            return response.status, await response.json()


@pytest.fixture
async def ctx(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Ctx]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    settings = web_settings(pg_url, redis_url, redis_prefix)
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Ctx(served.http_url, served.ws_url, http, world, staff.admin, pg_store)


EXPORT = (
    "罪犯编号,姓名,监区\r\n"
    "GM-001,Chen Jian,一监区\r\n"  # unchanged
    "GM-002,Huang Bo Jr,一监区\r\n"  # renamed
    "GM-010,Li Wei,二监区\r\n"  # new
    "bad number!,Somebody,二监区\r\n"  # error
    "GM-010,Li Wei again,二监区\r\n"  # the same number twice: the second line is the error
    "GM-011,,二监区\r\n"  # no name
)


async def test_a_dry_run_reports_each_line_and_writes_nothing_then_apply_does(ctx: Ctx) -> None:
    w = ctx.world
    path = f"/admin/prisons/{w.gaoming.id}/inmates/import"
    data = EXPORT.encode("gb18030")  # as the records system writes it
    status, dry = await ctx.call("POST", path + "?dry_run=true", ctx.admin, csv=data)
    assert status == 200, dry
    outcomes = [
        (line["line"], line["number"], line["outcome"], line.get("error")) for line in dry["lines"]
    ]
    assert outcomes == [
        (2, "GM-001", "unchanged", None),
        (3, "GM-002", "updated", None),
        (4, "GM-010", "added", None),
        (5, "bad number!", "error", "bad_number"),
        (6, "GM-010", "error", "duplicate_line"),
        (7, "GM-011", "error", "bad_name"),
    ]
    assert (dry["applied"], dry["added"], dry["updated"], dry["unchanged"], dry["errors"]) == (
        False,
        1,
        1,
        1,
        3,
    )
    assert dry["lines"][1]["before"] == "Huang Bo"
    # nothing written: no new inmate, no rename, no audit entry
    assert await prisons.inmate_by_number(ctx.store, w.gaoming.id, "GM-010") is None
    b = await prisons.inmate_by_number(ctx.store, w.gaoming.id, "GM-002")
    assert b is not None and b.name == "Huang Bo"
    assert await audit_trail.audit_entries(ctx.store, actor_id=ctx.admin.id) == []

    status, done = await ctx.call("POST", path + "?dry_run=false", ctx.admin, csv=data)
    assert status == 200, done
    assert (done["applied"], done["added"], done["updated"], done["errors"]) == (True, 1, 1, 3)
    added = await prisons.inmate_by_number(ctx.store, w.gaoming.id, "GM-010")
    assert added is not None and added.name == "Li Wei"
    b = await prisons.inmate_by_number(ctx.store, w.gaoming.id, "GM-002")
    assert b is not None and b.name == "Huang Bo Jr"
    trail = await audit_trail.audit_entries(ctx.store, actor_id=ctx.admin.id)
    assert sorted((e.action, e.object_id) for e in trail) == sorted(
        [("inmate.add", added.id), ("inmate.update", b.id)]
    )
    # the same file again: everything unchanged (or the same errors)
    status, again = await ctx.call("POST", path + "?dry_run=false", ctx.admin, csv=data)
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 3)


async def test_a_file_that_cannot_be_read_is_refused_with_a_code(ctx: Ctx) -> None:
    path = f"/admin/prisons/{ctx.world.gaoming.id}/inmates/import"
    status, answer = await ctx.call("POST", path, ctx.admin, csv=b"foo,bar\n1,2\n")
    assert (status, answer["error"]["code"]) == (400, "csv_header")
    status, answer = await ctx.call("POST", path, ctx.admin, csv=b"\xff\xfe\x00number")
    assert (status, answer["error"]["code"]) == (400, "csv_encoding")
    status, answer = await ctx.call(
        "POST", "/admin/prisons/999999/inmates/import", ctx.admin, csv=b"number,name\n"
    )
    assert (status, answer["error"]["code"]) == (404, "not_found")


async def test_a_transfer_carries_links_and_threads_to_the_new_prison(ctx: Ctx) -> None:
    w = ctx.world
    inmate_a = w.conv.inmate_id
    status, moved = await ctx.call(
        "POST",
        f"/admin/inmates/{inmate_a}/transfer",
        ctx.admin,
        json_body={"prison_id": w.sanshui.id},
    )
    assert status == 200, moved
    assert moved["inmate"]["prison_id"] == w.sanshui.id and moved["from_prison"] == w.gaoming.id
    assert (moved["links"], moved["conversations"], moved["notified"]) == (1, 1, 1)
    conv = await conversations.conversation(ctx.store, w.conv.id)
    assert conv.prison_id == w.sanshui.id
    # the new prison's officer sees the inmate and the thread; the old one no longer
    status, _ = await ctx.call("GET", f"/inmates/{inmate_a}", w.other_officer)
    assert status == 200
    status, _ = await ctx.call("GET", f"/inmates/{inmate_a}", w.officer)
    assert status == 404
    status, _ = await ctx.call("GET", f"/conversations/{w.conv.id}/messages", w.officer)
    assert status == 404
    # the relative still reads its card and has a notice naming the new prison
    status, _ = await ctx.call("GET", f"/inmates/{inmate_a}", w.relative)
    assert status == 200
    status, notices = await ctx.call("GET", "/notices", w.relative)
    assert [n["kind"] for n in notices["notices"]] == ["transferred"]
    assert "Sanshui Prison" in notices["notices"][0]["body"]
    # again to the same prison: refused with a code
    status, answer = await ctx.call(
        "POST",
        f"/admin/inmates/{inmate_a}/transfer",
        ctx.admin,
        json_body={"prison_id": w.sanshui.id},
    )
    assert (status, answer["error"]["field"]) == (400, "prison_id")
    entries = await audit_trail.audit_entries(ctx.store, action="inmate.transfer")
    assert [(e.before, (e.after or {}).get("prison_id")) for e in entries] == [
        ({"prison_id": w.gaoming.id}, w.sanshui.id)
    ]


async def _socket(ctx: Ctx, who: User) -> aiohttp.ClientWebSocketResponse:
    ws = await ctx.http.ws_connect(
        ctx.ws,
        protocols=("kinline.v1",),
        headers={"Authorization": f"Bearer {ctx.world.token(who)}"},
    )
    assert json.loads((await ws.receive()).data)["type"] == "welcome"
    await ws.send_str(json.dumps({"type": "hello", "resume": {}}))
    while json.loads((await ws.receive(timeout=10)).data)["type"] != "subscribed":
        pass
    return ws


async def test_a_release_ends_the_links_tells_the_relative_and_resolves_the_thread(
    ctx: Ctx,
) -> None:
    w = ctx.world
    inmate_a = w.conv.inmate_id
    ws = await _socket(ctx, w.relative)
    try:
        status, done = await ctx.call(
            "POST", f"/admin/inmates/{inmate_a}/release", ctx.admin, json_body={"note": "刑满释放"}
        )
        assert status == 200, done
        assert (done["inmate"]["status"], done["links"], done["notified"]) == ("released", 1, 1)
        frames: list[dict[str, Any]] = []
        while not {"link", "announcement"} <= {f["type"] for f in frames}:
            frames.append(json.loads((await ws.receive(timeout=10)).data))
        link = next(f for f in frames if f["type"] == "link")
        assert link["state"] == "revoked" and "released" in link["reason"]
        notice = next(f for f in frames if f["type"] == "announcement")
        assert "Chen Jian" in notice["body"]
    finally:
        await ws.close()
    # the relative no longer sees the inmate or the thread; the notice stays readable
    status, _ = await ctx.call("GET", f"/inmates/{inmate_a}", w.relative)
    assert status == 404
    status, notices = await ctx.call("GET", "/notices", w.relative)
    assert [n["kind"] for n in notices["notices"]] == ["released"]
    conv = await conversations.conversation(ctx.store, w.conv.id)
    assert conv.state in ("new", "resolved")
    # the other relative (another inmate) was told nothing
    status, others = await ctx.call("GET", "/notices", w.relative_b)
    assert others["notices"] == []
    # once released: no transfer, no second release
    status, answer = await ctx.call(
        "POST", f"/admin/inmates/{inmate_a}/archive", ctx.admin, json_body={}
    )
    assert (status, answer["error"]["code"]) == (409, "not_held")
    register = await inmate_records.register(ctx.store, status="released")
    assert [i.id for i in register] == [inmate_a]
    actions = {e.action for e in await audit_trail.audit_entries(ctx.store, actor_id=ctx.admin.id)}
    assert actions == {"inmate.released", "link.revoked"}
