"""The public prison page: exactly the public fields, nothing else about anyone; supervisors'
profiles set by the admin (audited)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import pytest

from domain.records import User
from server.config import Settings
from storage import accounts, audit_trail, prisons_public
from storage.announcements import NewAnnouncement, post
from storage.errors import NotFound
from storage.postgres import PostgresDatabase
from storage.profiles import SupervisorProfile, set_supervisor_profile
from storage.sql import Database
from tests.servers import free_port, inprocess
from tests.world import Staff, World, seed, seed_staff

RULES = {
    "days": [2, 6],
    "hours": [{"start": "09:00", "end": "11:30"}],
    "min_days_between": 14,
    "max_visitors": 2,
    "allowed_items": ["clothes", "books"],
    "forbidden_items": ["cash", "phones"],
    "notes": "Bring your identity card.",
}
PROFILE = SupervisorProfile(
    title="People's Congress deputy",
    photo="/static/photos/wang.jpg",
    address="1 Renmin Road, Foshan",
    phone="0757-8888-0001",
)
SECRET_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2VjcmV0c2FsdA$notapublicvalue"
ACCOUNT_PHONE = "13912345678"


async def test_the_directory_lists_the_prisons_supervisors_and_their_profile(
    store: Database,
) -> None:
    w = await seed(store)
    second = await accounts.add_user(
        store, "supervisor", "sup.liu", "Liu Yang", "x", [w.gaoming.id, w.sanshui.id]
    )
    gone = await accounts.add_user(
        store, "supervisor", "sup.gone", "Gone Away", "x", [w.gaoming.id]
    )
    async with store.write() as sql:
        await sql.execute("UPDATE users SET disabled = $1 WHERE id = $2", True, gone.id)
    at = datetime(2026, 4, 1, tzinfo=UTC)
    assert await set_supervisor_profile(store, w.supervisor.id, PROFILE, now=at) == PROFILE
    gm = await prisons_public.supervisors(store, w.gaoming.id)
    assert gm == [
        prisons_public.PublicSupervisor(second.id, "Liu Yang", "", "", "", ""),
        prisons_public.PublicSupervisor(
            w.supervisor.id,
            "Wang Fang",
            PROFILE.title,
            PROFILE.photo,
            PROFILE.address,
            PROFILE.phone,
        ),
    ]
    assert [s.id for s in await prisons_public.supervisors(store, w.sanshui.id)] == [second.id]
    [entry] = await audit_trail.audit_entries(store, action="supervisor.profile")
    assert (entry.actor_id, entry.object_type, entry.object_id, entry.at) == (
        None,
        "user",
        w.supervisor.id,
        at,
    )
    assert entry.before == {"title": "", "photo": "", "address": "", "phone": ""}
    assert entry.after == {
        "title": PROFILE.title,
        "photo": PROFILE.photo,
        "address": PROFILE.address,
        "phone": PROFILE.phone,
    }
    with pytest.raises(NotFound):
        await set_supervisor_profile(store, w.officer.id, PROFILE)  # not a supervisor
    assert await prisons_public.public_prison(store, 999999, at) is None
    assert [p.code for p in await prisons_public.public_prisons(store)] == ["GM", "SS"]


@dataclass
class Site:
    api: str
    http: aiohttp.ClientSession
    store: PostgresDatabase
    world: World
    staff: Staff
    hidden: User  # an officer with an account phone and a real-looking password hash

    async def call(
        self, method: str, path: str, who: Any = None, json: Any = None
    ) -> tuple[int, Any, str]:
        headers = {"Authorization": f"Bearer {self.world.token(who)}"} if who else {}
        async with self.http.request(
            method, self.api + path, json=json, headers=headers
        ) as response:
            text = await response.text()
            return response.status, (await response.json()), text


@pytest.fixture
async def site(pg_store: PostgresDatabase, pg_url: str) -> AsyncIterator[Site]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    hidden = await accounts.add_user(
        pg_store,
        "officer",
        "officer.hidden",
        "Hidden Officer",
        SECRET_HASH,
        [world.gaoming.id],
        phone=ACCOUNT_PHONE,
    )
    async with pg_store.write() as sql:
        await sql.execute(
            "UPDATE users SET phone = $1, password_hash = $2 WHERE id = $3",
            "13700000000",
            SECRET_HASH,
            world.supervisor.id,
        )
        await sql.execute(
            "UPDATE prisons SET visit_rules = $1 WHERE id = $2", RULES, world.gaoming.id
        )
    settings = Settings(database_url=pg_url, port=free_port(), secret="public")
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Site(served.http_url + "/api/v1", http, pg_store, world, staff, hidden)


def keys(value: Any) -> set[str]:
    """Every key at every depth."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


async def test_the_page_shows_exactly_the_public_fields(site: Site) -> None:
    w = site.world
    status, _, _ = await site.call(
        "PUT",
        f"/supervisors/{w.supervisor.id}/profile",
        site.staff.admin,
        msgspec.to_builtins(PROFILE),
    )
    assert status == 200
    now = datetime.now(UTC)
    for title, prison, age in (
        ("Bureau news", None, 3),
        ("Gaoming open day", w.gaoming.id, 2),
        ("Sanshui only", w.sanshui.id, 1),
    ):
        new = NewAnnouncement(
            author_id=site.staff.admin.id, title=title, body="...", prison_id=prison
        )
        await post(site.store, new, now=now - timedelta(hours=age))
    # response figures: three answered cycles in the last 30 days, one older
    conv = w.conv.id
    async with site.store.write() as sql:
        for cycle, (started_days_ago, wait_s) in enumerate(
            ((1, 60), (2, 200), (3, 900), (40, 10)), start=1
        ):
            started = now - timedelta(days=started_days_ago)
            await sql.execute(
                "INSERT INTO conversation_cycles (conversation_id, cycle, prison_id,"
                " wait_started_at, first_reply_at) VALUES ($1, $2, $3, $4, $5)",
                conv,
                cycle,
                w.gaoming.id,
                started,
                started + timedelta(seconds=wait_s),
            )

    status, page, text = await site.call("GET", f"/prisons/{w.gaoming.id}")  # no sign-in
    assert status == 200
    assert set(page) == {
        "id",
        "code",
        "name",
        "city",
        "supervisors",
        "visit_rules",
        "announcements",
        "figures",
        "anchors",  # the hash chains' daily digests (tests/test_conversation_record.py)
    }
    assert (page["id"], page["code"], page["name"], page["city"]) == (
        w.gaoming.id,
        "GM",
        "Gaoming Prison",
        "Foshan",
    )
    assert page["supervisors"] == [
        {
            "id": w.supervisor.id,
            "name": "Wang Fang",
            "title": PROFILE.title,
            "photo": PROFILE.photo,
            "address": PROFILE.address,
            "phone": PROFILE.phone,
        }
    ]
    assert page["visit_rules"] == RULES
    assert [(a["title"], a["prison_id"]) for a in page["announcements"]] == [
        ("Gaoming open day", w.gaoming.id),
        ("Bureau news", None),
    ]
    assert set(page["announcements"][0]) == {
        "id",
        "prison_id",
        "title",
        "body",
        "open_day",
        "created_at",
    }
    assert page["figures"] == {
        "days": 30,
        "cycles": 3,
        "answered": 3,
        "median_s": 200.0,
        "p90_s": 900.0,
        "within_5_min": pytest.approx(2 / 3),
    }
    # nothing about any user beyond the supervisors' public fields
    leaks = {
        "login",
        "password",
        "password_hash",
        "id_number",
        "id_number_hash",
        "role",
        "prison_ids",
        "disabled",
        "author_id",
        "verified_inmates",
        "profile",
    }
    assert keys(page) & leaks == set()
    for secret in (
        SECRET_HASH,
        ACCOUNT_PHONE,  # an officer's account phone
        "13700000000",  # the supervisor's account phone (its public phone is the profile's)
        "officer.li",
        "officer.hidden",
        "Hidden Officer",
        "Officer Li",
        "sup.wang",
        w.relative.login,
        "Chen Mei",
        "Chen Jian",  # an inmate
        "GM-001",
    ):
        assert secret not in text, secret

    status, listing, text = await site.call("GET", "/prisons")
    assert status == 200
    assert listing == {
        "prisons": [
            {"id": w.gaoming.id, "code": "GM", "name": "Gaoming Prison", "city": "Foshan"},
            {"id": w.sanshui.id, "code": "SS", "name": "Sanshui Prison", "city": "Foshan"},
        ]
    }
    status, missing, _ = await site.call("GET", "/prisons/999999")
    assert (status, missing["error"]["code"]) == (404, "not_found")
    status, _, _ = await site.call("GET", "/prisons/abc")
    assert status == 404


async def test_only_the_admin_sets_a_supervisors_profile(site: Site) -> None:
    w, admin = site.world, site.staff.admin
    path = f"/supervisors/{w.supervisor.id}/profile"
    body = {"title": "CPPCC member", "phone": "0757-1234"}
    for who, expected in (
        (None, 401),
        (w.relative, 403),
        (w.officer, 403),
        (w.supervisor, 403),  # not even its own
        (site.staff.other_supervisor, 403),
    ):
        status, _, _ = await site.call("PUT", path, who, body)
        assert status == expected
    status, set_to, _ = await site.call("PUT", path, admin, body)
    assert (status, set_to) == (
        200,
        {
            "id": w.supervisor.id,
            "name": "Wang Fang",
            "title": "CPPCC member",
            "photo": "",
            "address": "",
            "phone": "0757-1234",
        },
    )
    for bad, field in (
        ({"photo": "javascript:alert(1)"}, "photo"),
        ({"photo": "https://tracker.example/p.png"}, "photo"),
        ({"title": "x" * 201}, "title"),
        ({"login": "sup.wang"}, "login"),
    ):
        status, refused, _ = await site.call("PUT", path, admin, bad)
        assert (status, refused["error"]["field"]) == (400, field), bad
    status, _, _ = await site.call("PUT", f"/supervisors/{w.officer.id}/profile", admin, body)
    assert status == 404
    [entry] = await audit_trail.audit_entries(site.store, action="supervisor.profile")
    assert (entry.actor_id, entry.object_id, entry.after) == (
        admin.id,
        w.supervisor.id,
        {"title": "CPPCC member", "photo": "", "address": "", "phone": "0757-1234"},
    )
    _, page, _ = await site.call("GET", f"/prisons/{w.gaoming.id}")
    assert page["supervisors"][0]["title"] == "CPPCC member"
