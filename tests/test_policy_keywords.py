"""Who may use keyword review: every actor against every route (the admin's lists, the review
queue, marking a flag reviewed), over real HTTP to an in-process server on PostgreSQL, and
the same rules straight on ``server/policy.py``. The admin keeps the lists and never reads a
message; officers and supervisors review their own prisons' flags (another prison's: 404);
relatives have no part in it. ``ROUTES`` lists each row's ``(method, path)`` for
``test_policy_matrix``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from domain.records import NewMessage, User
from server.config import Settings
from server.policy import (
    Denied,
    NotSignedIn,
    Principal,
    audits_flag_reading,
    check_flag_review,
    check_keywords,
    flag_scope,
)
from storage.postgres import PostgresDatabase
from tests.servers import free_port, inprocess
from tests.world import World, seed, seed_staff

ACTORS = (
    "anonymous",
    "relative_none",
    "relative_a",
    "officer",  # of Gaoming
    "officer_other",  # of Sanshui
    "supervisor",  # of Gaoming
    "supervisor_other",  # of Sanshui
    "admin",
)
Outcome = tuple[int, str | None]
NOT_SIGNED_IN: Outcome = (401, "not_authenticated")
FORBIDDEN: Outcome = (403, "forbidden")
NOT_FOUND: Outcome = (404, "not_found")
OK: Outcome = (200, None)


def row(**cells: Outcome) -> dict[str, Outcome]:
    """Anonymous is 401 and relatives 403 unless named; every staff actor must be named."""
    base = {"anonymous": NOT_SIGNED_IN, "relative_none": FORBIDDEN, "relative_a": FORBIDDEN}
    table = {**base, **cells}
    assert set(table) == set(ACTORS), set(ACTORS) ^ set(table)
    return {actor: table[actor] for actor in ACTORS}


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # "{gm}": Gaoming's id; "{flag}": a fresh flagged message of Gaoming per cell
    expect: dict[str, Outcome]
    body: Any = None


ADMIN_ONLY = row(
    officer=FORBIDDEN,
    officer_other=FORBIDDEN,
    supervisor=FORBIDDEN,
    supervisor_other=FORBIDDEN,
    admin=OK,
)
LISTS = {"lists": [{"category": "escape", "label": "脱逃", "words": ["越狱"]}]}

ROWS: dict[str, Row] = {
    "read the lists": Row("GET", "/admin/keywords", ADMIN_ONLY),
    "replace the lists": Row("PUT", "/admin/keywords", ADMIN_ONLY, LISTS),
    "list the queue": Row(
        "GET",
        "/flags",
        row(officer=OK, officer_other=OK, supervisor=OK, supervisor_other=OK, admin=FORBIDDEN),
    ),
    "list one prison's queue": Row(
        "GET",
        "/flags?prison={gm}",
        row(
            officer=OK,
            officer_other=NOT_FOUND,
            supervisor=OK,
            supervisor_other=NOT_FOUND,
            admin=FORBIDDEN,
        ),
    ),
    "review a flag": Row(
        "POST",
        "/flags/{flag}/review",
        row(
            officer=OK,
            officer_other=NOT_FOUND,
            supervisor=OK,
            supervisor_other=NOT_FOUND,
            admin=FORBIDDEN,
        ),
        {"note": "reviewed"},
    ),
    "review a message that carries no flag": Row(
        "POST",
        "/flags/{plain}/review",
        row(
            officer=NOT_FOUND,
            officer_other=NOT_FOUND,
            supervisor=NOT_FOUND,
            supervisor_other=NOT_FOUND,
            admin=FORBIDDEN,
        ),
        {"note": "reviewed"},
    ),
}


def _route(path: str) -> str:
    return path.split("?", 1)[0].replace("{flag}", "{id}").replace("{plain}", "{id}")


ROUTES = [(r.method, _route(r.path)) for r in ROWS.values()]


@dataclass
class Ctx:
    api: str
    http: aiohttp.ClientSession
    store: PostgresDatabase
    world: World
    users: dict[str, User]
    cids: int = 0

    async def message(self, flags: str | None) -> int:
        w = self.world
        self.cids += 1
        [done] = await self.store.append_messages(
            [NewMessage(w.conv.id, w.relative.id, "relative", f"m{self.cids}", "越狱", flags=flags)]
        )
        assert done is not None
        return done.message.id

    async def outcome(self, r: Row, actor: str) -> Outcome:
        headers = {}
        if actor != "anonymous":
            headers["Authorization"] = f"Bearer {self.world.token(self.users[actor])}"
        path = r.path.replace("{gm}", str(self.world.gaoming.id))
        if "{flag}" in path:
            path = path.replace("{flag}", str(await self.message("escape")))
        if "{plain}" in path:
            path = path.replace("{plain}", str(await self.message(None)))
        async with self.http.request(
            r.method, self.api + path, json=r.body, headers=headers
        ) as response:
            got: Any = await response.json()
        if response.status >= 400:
            return (response.status, got["error"]["code"])
        return (response.status, None)


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
    settings = Settings(database_url=pg_url, port=free_port(), secret="keywords-policy")
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Ctx(served.http_url + "/api/v1", http, pg_store, world, users)


@pytest.mark.parametrize("name", list(ROWS))
async def test_keyword_routes_over_http(ctx: Ctx, name: str) -> None:
    r = ROWS[name]
    got = {actor: await ctx.outcome(r, actor) for actor in ACTORS}
    assert got == r.expect


def test_every_keyword_route_has_a_row() -> None:
    from server.api import keywords

    assert {(r.method, r.path) for r in keywords.ROUTES} == set(ROUTES)


# the same rules, straight on the policy


def principal(role: str, prisons: tuple[int, ...] = ()) -> Principal:
    return Principal(User(1, role, "x", "X", prisons))  # type: ignore[arg-type]


def decide(call: Any) -> Any:
    try:
        result = call()
    except NotSignedIn:
        return 401
    except Denied as denied:
        return denied.code
    return result if not isinstance(result, Principal) else "ok"


def test_keyword_rules_by_role_and_prison() -> None:
    officer, other_officer = principal("officer", (1,)), principal("officer", (2,))
    supervisor, both = principal("supervisor", (1,)), principal("supervisor", (1, 2))
    admin, relative = principal("admin"), principal("relative")
    for action in ("keywords.read", "keywords.edit"):
        for who, expected in [
            (None, 401),
            (relative, "forbidden"),
            (officer, "forbidden"),
            (supervisor, "forbidden"),
            (admin, "ok"),
        ]:
            assert decide(lambda: check_keywords(who, action)) == expected, (who, action)  # noqa: B023
    scopes: list[tuple[Principal | None, int | None, Any]] = [
        (None, None, 401),
        (relative, None, "forbidden"),
        (relative, 1, "forbidden"),
        (admin, None, "forbidden"),  # the admin reads counts, never messages
        (admin, 1, "forbidden"),
        (officer, None, (1,)),
        (officer, 1, (1,)),
        (officer, 2, "not_found"),
        (other_officer, 1, "not_found"),
        (supervisor, None, (1,)),
        (supervisor, 2, "not_found"),
        (both, None, (1, 2)),
        (both, 2, (2,)),
    ]
    for who, prison, expected in scopes:
        assert decide(lambda: flag_scope(who, prison)) == expected, (who, prison)  # noqa: B023
    reviews: list[tuple[Principal | None, int | None, Any]] = [
        (None, 1, 401),
        (relative, 1, "forbidden"),
        (admin, 1, "forbidden"),
        (officer, 1, "ok"),
        (officer, 2, "not_found"),
        (officer, None, "not_found"),  # no such flag
        (other_officer, 1, "not_found"),
        (supervisor, 1, "ok"),
        (both, 2, "ok"),
        (supervisor, 2, "not_found"),
    ]
    for who, prison, expected in reviews:
        assert decide(lambda: check_flag_review(who, prison)) == expected, (who, prison)  # noqa: B023
    assert audits_flag_reading(supervisor)
    assert not audits_flag_reading(officer)
