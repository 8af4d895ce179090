"""Who keeps the inmate register (the admin, for every prison), who uploads supervisors' photos
(the admin) and who reads notices (a
relative, its own): every actor against every route of the area over real HTTP to an
in-process server on PostgreSQL, and the same rules straight on ``server/policy.py``.

Nobody but the admin changes the register: staff of the inmate's prison are ``forbidden``,
anyone who may not see the inmate ``not_found`` (ids cannot be probed)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from PIL import Image

from domain.records import Inmate, User
from server.api import inmate_records as register_api
from server.api import photos as photos_api
from server.config import Settings
from server.policy import (
    Denied,
    NotSignedIn,
    Person,
    Principal,
    check_notices,
    check_register,
    check_register_inmate,
    moved_inmate_staff,
    notice_audience,
)
from storage import prisons
from storage.postgres import PostgresDatabase
from tests.servers import free_port, inprocess
from tests.world import World, seed, seed_staff

ACTORS = (
    "anonymous",
    "relative_none",
    "relative_a",  # verified for inmate A of Gaoming (not for the rows' inmates)
    "officer",  # of Gaoming
    "officer_other",  # of Sanshui
    "supervisor",  # of Gaoming
    "supervisor_other",  # of Sanshui
    "admin",
)
Outcome = int | tuple[int, str]
UNAUTH: Outcome = (401, "not_authenticated")
FORBID: Outcome = (403, "forbidden")
HIDDEN: Outcome = (404, "not_found")


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # as described in the OpenAPI paths
    path: str  # {gm}, {ss}: prisons; {inmate}: the row's own inmate of Gaoming
    body: Any
    expected: dict[str, Outcome]
    csv: bool = False
    upload: bool = False  # body: a small PNG as multipart field file


def everyone_but_admin(cell: Outcome, admin: Outcome) -> dict[str, Outcome]:
    return {a: UNAUTH if a == "anonymous" else admin if a == "admin" else cell for a in ACTORS}


def on_an_inmate(admin: Outcome) -> dict[str, Outcome]:
    """Seen by Gaoming's staff (forbidden), hidden from everyone else but the admin."""
    seen = {"officer", "supervisor"}
    return {
        a: UNAUTH
        if a == "anonymous"
        else admin
        if a == "admin"
        else FORBID
        if a in seen
        else HIDDEN
        for a in ACTORS
    }


ROWS = {
    "list": Row("GET", "/admin/inmates", "/admin/inmates", None, everyone_but_admin(FORBID, 200)),
    "add": Row(
        "POST",
        "/admin/inmates",
        "/admin/inmates",
        {"prison_id": "{gm}", "number": "GM-900", "name": "Lin Hai"},
        everyone_but_admin(FORBID, 201),
    ),
    "import": Row(
        "POST",
        "/admin/prisons/{id}/inmates/import",
        "/admin/prisons/{gm}/inmates/import?dry_run=true",
        "number,name\nGM-901,Zhou Yu\n",
        everyone_but_admin(FORBID, 200),
        csv=True,
    ),
    "transfer": Row(
        "POST",
        "/admin/inmates/{id}/transfer",
        "/admin/inmates/{inmate}/transfer",
        {"prison_id": "{ss}"},
        on_an_inmate(200),
    ),
    "release": Row(
        "POST",
        "/admin/inmates/{id}/release",
        "/admin/inmates/{inmate}/release",
        {},
        on_an_inmate(200),
    ),
    "archive": Row(
        "POST",
        "/admin/inmates/{id}/archive",
        "/admin/inmates/{inmate}/archive",
        {},
        on_an_inmate(200),
    ),
    "upload a supervisor photo": Row(
        "POST",
        "/admin/supervisors/{id}/photo",
        "/admin/supervisors/{sup}/photo",
        None,
        everyone_but_admin(FORBID, 201),
        upload=True,
    ),
    "read a photo (public; none with this id)": Row(
        "GET", "/photos/{id}", "/photos/999999", None, {a: HIDDEN for a in ACTORS}
    ),
    "notices": Row(
        "GET",
        "/notices",
        "/notices",
        None,
        {
            a: UNAUTH if a == "anonymous" else 200 if a.startswith("relative") else FORBID
            for a in ACTORS
        },
    ),
}


@dataclass
class Ctx:
    api: str
    http: aiohttp.ClientSession
    world: World
    users: dict[str, User]
    store: PostgresDatabase


@pytest.fixture
async def ctx(pg_store: PostgresDatabase, pg_url: str) -> AsyncIterator[Ctx]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    users = {
        "relative_none": world.stranger,
        "relative_a": world.relative,
        "officer": world.officer,
        "officer_other": world.other_officer,
        "supervisor": world.supervisor,
        "supervisor_other": staff.other_supervisor,
        "admin": staff.admin,
    }
    settings = Settings(database_url=pg_url, port=free_port(), secret="register-policy")
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Ctx(served.http_url + "/api/v1", http, world, users, pg_store)


def _fill(value: Any, names: dict[str, int]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return names[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


async def cell(ctx: Ctx, row: Row, actor: str, inmate: int) -> Outcome:
    w = ctx.world
    names = {"gm": w.gaoming.id, "ss": w.sanshui.id, "inmate": inmate, "sup": w.supervisor.id}
    headers = {}
    if actor != "anonymous":
        headers["Authorization"] = f"Bearer {w.token(ctx.users[actor])}"
    kwargs: dict[str, Any] = {}
    if row.upload:
        png = io.BytesIO()
        Image.new("RGB", (8, 8)).save(png, "PNG")
        form = aiohttp.FormData()
        form.add_field("file", png.getvalue(), filename="p.png", content_type="image/png")
        kwargs["data"] = form
    elif row.csv:
        kwargs["data"] = row.body.encode()
        headers["Content-Type"] = "text/csv"
    elif row.body is not None:
        kwargs["json"] = _fill(row.body, names)
    url = ctx.api + row.path.format(**names)
    async with ctx.http.request(row.method, url, headers=headers, **kwargs) as response:
        answer = await response.json()
    if response.status >= 400:
        return (response.status, answer["error"]["code"])
    return response.status


@pytest.mark.parametrize("name", list(ROWS))
async def test_register_matrix_over_http(ctx: Ctx, name: str) -> None:
    row = ROWS[name]
    inmate = await prisons.add_inmate(ctx.store, ctx.world.gaoming.id, f"GM-R{name}", "Row Inmate")
    got = {actor: await cell(ctx, row, actor, inmate.id) for actor in ACTORS}  # admin last
    assert got == row.expected


def test_every_route_of_the_area_has_a_row() -> None:
    routes = {(r.method, r.path) for r in (*register_api.ROUTES, *photos_api.ROUTES)}
    assert routes - {(row.method, row.route) for row in ROWS.values()} == set()


# the same rules, straight on the policy


def principal(role: str, prisons_: tuple[int, ...] = (), uid: int = 1) -> Principal:
    return Principal(User(uid, role, "x", "X", prisons_), frozenset({7}))  # type: ignore[arg-type]


def decide(call: Callable[[], Any]) -> Any:
    try:
        call()
    except NotSignedIn:
        return 401
    except Denied as denied:
        return denied.code
    return "ok"


PRINCIPALS: dict[str, Principal | None] = {
    "anonymous": None,
    "relative": principal("relative"),  # verified for inmate 7
    "officer": principal("officer", (1,)),
    "officer_other": principal("officer", (2,)),
    "supervisor": principal("supervisor", (1, 2)),
    "admin": principal("admin"),
}
INMATE = Inmate(5, 1, "GM-5", "Five")
VERIFIED = Inmate(7, 1, "GM-7", "Seven")


def table(**cells: str | int) -> dict[str, str | int]:
    return {actor: cells.get(actor, "forbidden") for actor in PRINCIPALS} | {"anonymous": 401}


PURE: dict[str, tuple[Callable[[Principal | None], Any], dict[str, str | int]]] = {
    "check_register list": (lambda w: check_register(w, "list"), table(admin="ok")),
    "check_register import": (lambda w: check_register(w, "import"), table(admin="ok")),
    "check_register_inmate transfer": (
        lambda w: check_register_inmate(w, INMATE, "transfer"),
        table(admin="ok", relative="not_found", officer_other="not_found"),
    ),
    "check_register_inmate release, the relative's own inmate": (
        lambda w: check_register_inmate(w, VERIFIED, "release"),
        table(admin="ok", officer_other="not_found"),
    ),
    "check_register_inmate archive, no such inmate": (
        lambda w: check_register_inmate(w, None, "archive"),
        {**{a: "not_found" for a in PRINCIPALS}, "anonymous": 401},
    ),
    "check_notices": (check_notices, {**table(relative="ok")}),
}


@pytest.mark.parametrize("name", list(PURE))
def test_the_policy_decides(name: str) -> None:
    check, expected = PURE[name]
    assert {actor: decide(lambda: check(who)) for actor, who in PRINCIPALS.items()} == expected  # noqa: B023


def test_who_is_told_of_a_moved_inmate() -> None:
    assert notice_audience(3) == Person(3)
    users = [
        User(1, "officer", "a", "A", (1,)),
        User(2, "officer", "b", "B", (2,)),
        User(3, "supervisor", "c", "C", (1, 2)),
        User(4, "admin", "d", "D"),
        User(5, "relative", "e", "E"),
    ]
    assert moved_inmate_staff(users, 1) == [1, 3]
