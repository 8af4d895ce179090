"""Announcements: stored and listed (both stores), posted by whom (HTTP), and fanned out live
through Redis to the relatives of the prison on every server process, and to no one else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from channels.protocol import AnnouncementEvent, LinkEvent
from domain.records import User
from server.config import Settings
from storage import accounts, announcements, audit_trail, conversations, links, prisons
from storage.announcements import NewAnnouncement
from storage.errors import NotFound
from storage.postgres import PostgresDatabase
from storage.sql import Database
from tests.realtime import Reader, client
from tests.servers import Served, free_port, inprocess
from tests.world import Staff, World, seed, seed_staff

T0 = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)


async def test_a_prisons_list_includes_the_bureau_wide_ones_newest_first(store: Database) -> None:
    w = await seed(store)
    admin = await accounts.add_user(store, "admin", "admin.x", "Admin X", "x")

    async def post(title: str, prison: int | None, at: int, by: User = admin) -> int:
        new = NewAnnouncement(
            author_id=by.id,
            title=title,
            body=f"{title}.",
            prison_id=prison,
            open_day=date(2026, 6, 1) if prison else None,
        )
        return (await announcements.post(store, new, now=T0 + timedelta(hours=at))).id

    bureau = await post("Bureau", None, 1)
    gm = await post("Gaoming", w.gaoming.id, 2, w.officer)
    ss = await post("Sanshui", w.sanshui.id, 3, w.other_officer)
    listed = await announcements.announcements(store, prison_id=w.gaoming.id)
    assert [(a.id, a.title, a.prison_id) for a in listed] == [
        (gm, "Gaoming", w.gaoming.id),
        (bureau, "Bureau", None),
    ]
    assert listed[0].open_day == date(2026, 6, 1) and listed[1].open_day is None
    assert listed[0].created_at == T0 + timedelta(hours=2)
    assert [a.id for a in await announcements.announcements(store)] == [ss, gm, bureau]
    assert [a.id for a in await announcements.announcements(store, before=ss, limit=1)] == [gm]
    with pytest.raises(NotFound):
        await post("Nowhere", 999999, 4)
    audited = {
        e.object_id: e for e in await audit_trail.audit_entries(store, action="announcement.posted")
    }
    assert set(audited) == {bureau, gm, ss}
    assert (audited[gm].actor_id, audited[gm].prison_id, audited[gm].after) == (
        w.officer.id,
        w.gaoming.id,
        {"title": "Gaoming", "prison_id": w.gaoming.id, "open_day": "2026-06-01"},
    )
    assert audited[bureau].prison_id is None


# two server processes' worth of apps, sharing PostgreSQL and Redis


@dataclass
class Cluster:
    one: Served
    two: Served
    http: aiohttp.ClientSession
    store: PostgresDatabase
    world: World
    staff: Staff
    ss_relative: User  # verified for an inmate of Sanshui
    ss_conv: int  # its conversation

    async def call(
        self, served: Served, method: str, path: str, who: Any = None, json: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.world.token(who)}"} if who else {}
        url = served.http_url + "/api/v1" + path
        async with self.http.request(method, url, json=json, headers=headers) as response:
            return response.status, await response.json()

    def reader(self, served: Served, who: User) -> Reader:
        return Reader(client(served.ws_url, self.world.token(who)))


@pytest.fixture
async def cluster(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Cluster]:
    from server import sessions

    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    inmate = await prisons.add_inmate(pg_store, world.sanshui.id, "SS-001", "Zhou Li")
    ss_relative = await accounts.add_user(pg_store, "relative", "13800000004", "Zhou Fang", "x")
    link = await links.request_link(pg_store, ss_relative.id, inmate.id, "sister", "register")
    await links.decide_link(pg_store, link, "verified", world.other_officer.id, None)
    ss_conv = await conversations.open_conversation(pg_store, ss_relative.id, inmate.id)
    world.tokens[ss_relative.login] = await sessions.issue(pg_store, ss_relative, days=1)
    second = await PostgresDatabase.open(pg_url)

    def settings(name: str) -> Settings:
        return Settings(
            database_url=pg_url,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            port=free_port(),
            secret="announcements",
        )

    try:
        async with (
            inprocess(settings("one"), pg_store) as one,
            inprocess(settings("two"), second) as two,
            aiohttp.ClientSession() as http,
        ):
            yield Cluster(one, two, http, pg_store, world, staff, ss_relative, ss_conv.id)
    finally:
        await second.close()


async def settled(reader: Reader) -> None:
    """Wait until the server handles this socket's frames, hence has joined its topics."""
    before = len(reader.errors())
    await reader.client.typing(999_999_999)
    await reader.until(lambda: len(reader.errors()) > before)


def announced(reader: Reader) -> list[AnnouncementEvent]:
    return [f for f in reader.frames if isinstance(f, AnnouncementEvent)]


async def until_announced(reader: Reader, announcement: int) -> None:
    await reader.until(lambda: announcement in [a.id for a in announced(reader)])


async def until_seq(reader: Reader, conv: int, seq: int) -> None:
    await reader.until(lambda: seq in reader.seqs[conv])


async def test_an_announcement_reaches_the_prisons_relatives_on_both_processes_only(
    cluster: Cluster,
) -> None:
    c, w = cluster, cluster.world
    one, two = c.one, c.two
    async with (
        c.reader(one, w.relative) as relative,  # Gaoming, process one
        c.reader(two, w.relative_b) as relative_b,  # Gaoming, process two
        c.reader(two, c.ss_relative) as ss_relative,  # Sanshui, process two
        c.reader(one, w.stranger) as stranger,  # no verified inmate
        c.reader(one, w.officer) as officer,  # Gaoming staff
        c.reader(two, w.supervisor) as supervisor,  # Gaoming staff
        c.reader(two, w.other_officer) as other_officer,  # Sanshui staff
        c.reader(one, c.staff.admin) as admin,
    ):
        everyone = (relative, relative_b, ss_relative, stranger, officer, supervisor)
        for reader in (*everyone, other_officer, admin):
            await settled(reader)
        await officer.watch(w.conv.id)
        await supervisor.watch(w.conv.id)
        await other_officer.watch(c.ss_conv)

        # Gaoming's officer posts on process one: Gaoming's relatives on both processes
        status, gm = await c.call(
            one,
            "POST",
            "/announcements",
            w.officer,
            {
                "title": "Open day",
                "body": "Families welcome.",
                "open_day": "2026-06-01",
                "prison_id": w.gaoming.id,
            },
        )
        assert status == 201, gm
        assert set(gm) == {"id", "prison_id", "title", "body", "open_day", "created_at"}
        expected = AnnouncementEvent(
            id=gm["id"],
            title="Open day",
            body="Families welcome.",
            at=datetime.fromisoformat(gm["created_at"]),
            prison=w.gaoming.id,
            open_day=date(2026, 6, 1),
        )
        for reader in (relative, relative_b):
            await until_announced(reader, gm["id"])
            assert announced(reader) == [expected]

        # the admin posts bureau-wide on process two: every verified relative, both processes
        status, bureau = await c.call(
            two, "POST", "/announcements", c.staff.admin, {"title": "New hours", "body": "9-17."}
        )
        assert status == 201 and bureau["prison_id"] is None
        for reader in (relative, relative_b, ss_relative):
            await until_announced(reader, bureau["id"])

        # fences: a later event each of the others is entitled to, on its own socket
        await prisons.add_inmate(c.store, w.gaoming.id, "GM-404", "Inmate 404")
        await c.call(
            one,
            "POST",
            "/links",
            w.stranger,
            {"prison": "GM", "inmate_number": "GM-404", "relationship": "son"},
        )
        _, pending = await c.call(one, "GET", "/links?state=pending", w.officer)
        [asked] = [x for x in pending["links"] if x["inmate_number"] == "GM-404"]
        await c.call(two, "POST", f"/links/{asked['id']}/reject", w.officer, {"reason": "no"})
        await stranger.until(lambda: any(isinstance(f, LinkEvent) for f in stranger.frames))
        sent = await relative.client.send(w.conv.id, "fence")
        for reader in (officer, supervisor):
            await until_seq(reader, w.conv.id, sent.seq)
        ss_sent = await ss_relative.client.send(c.ss_conv, "fence")
        await until_seq(other_officer, c.ss_conv, ss_sent.seq)
        await settled(admin)

        assert [a.id for a in announced(relative)] == [gm["id"], bureau["id"]]
        assert [a.id for a in announced(relative_b)] == [gm["id"], bureau["id"]]
        assert [a.id for a in announced(ss_relative)] == [bureau["id"]]  # not Gaoming's
        for reader in (stranger, officer, supervisor, other_officer, admin):
            assert announced(reader) == []


async def test_who_may_post_and_the_public_list(cluster: Cluster) -> None:
    c, w = cluster, cluster.world
    admin = c.staff.admin

    def post(prison: int | None) -> dict[str, Any]:
        return {"title": "T", "body": "B", **({"prison_id": prison} if prison else {})}

    cases = [
        (None, post(w.gaoming.id), 401),
        (w.relative, post(w.gaoming.id), 403),
        (w.supervisor, post(w.gaoming.id), 403),
        (w.officer, post(None), 403),  # bureau-wide: the admin's
        (w.officer, post(w.sanshui.id), 403),  # another prison
        (w.officer, post(w.gaoming.id), 201),
        (admin, post(w.sanshui.id), 201),
        (admin, post(None), 201),
        (admin, post(999999), 400),
        (admin, {"title": " ", "body": "B"}, 400),
        (admin, {"title": "T", "body": "B", "author": "x"}, 400),
    ]
    for who, payload, expected in cases:
        status, answer = await c.call(c.one, "POST", "/announcements", who, payload)
        assert status == expected, (who and who.login, payload, answer)
    status, gm = await c.call(c.one, "GET", f"/announcements?prison={w.gaoming.id}")
    assert status == 200
    assert [a["prison_id"] for a in gm["announcements"]] == [None, w.gaoming.id]
    _, everything = await c.call(c.two, "GET", "/announcements")
    assert [a["prison_id"] for a in everything["announcements"]] == [
        None,
        w.sanshui.id,
        w.gaoming.id,
    ]
    status, _ = await c.call(c.one, "GET", "/announcements?prison=999999")
    assert status == 404
