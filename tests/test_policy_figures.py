"""Who reads which figures: every actor against every scope of GET /stats and GET
/stats/bureau, over real HTTP to an in-process server on PostgreSQL, and the same rules
straight on ``server/policy.py``. A prison one may not read is answered 404, like one that
does not exist; a role that reads no figures at all gets 403."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from domain.records import User
from server.config import Settings
from server.policy import Denied, NotSignedIn, Principal, check_figures, figure_prisons
from storage.postgres import PostgresDatabase
from tests.servers import free_port, inprocess
from tests.world import Staff, World, seed, seed_staff

ACTORS = (
    "anonymous",
    "relative_none",  # no verified link
    "relative_a",  # verified for an inmate of Gaoming
    "officer",  # of Gaoming
    "officer_other",  # of Sanshui
    "supervisor",  # of Gaoming
    "supervisor_other",  # of Sanshui
    "admin",
)

# an outcome: the prisons (by code) whose figures come back, or the denial's status and code
Outcome = tuple[str, ...] | tuple[int, str]
NOT_SIGNED_IN: Outcome = (401, "not_authenticated")
FORBIDDEN: Outcome = (403, "forbidden")
NOT_FOUND: Outcome = (404, "not_found")
GM, SS, BOTH = ("GM",), ("SS",), ("GM", "SS")
BUREAU = ("bureau",)


def row(**cells: Outcome) -> dict[str, Outcome]:
    """Anonymous is 401 and relatives 403 unless named; every staff actor must be named."""
    base = {"anonymous": NOT_SIGNED_IN, "relative_none": FORBIDDEN, "relative_a": FORBIDDEN}
    table = {**base, **cells}
    assert set(table) == set(ACTORS), set(ACTORS) ^ set(table)
    return {actor: table[actor] for actor in ACTORS}


# "{gm}", "{ss}" are the prisons' ids; 999999 is no prison
MATRIX: dict[str, dict[str, Outcome]] = {
    "/stats": row(
        officer=GM,
        officer_other=SS,
        supervisor=GM,
        supervisor_other=SS,
        admin=BOTH,
    ),
    "/stats?prison={gm}": row(
        officer=GM,
        officer_other=NOT_FOUND,
        supervisor=GM,
        supervisor_other=NOT_FOUND,
        admin=GM,
    ),
    "/stats?prison={ss}": row(
        officer=NOT_FOUND,
        officer_other=SS,
        supervisor=NOT_FOUND,
        supervisor_other=SS,
        admin=SS,
    ),
    "/stats?prison=999999": row(
        officer=NOT_FOUND,
        officer_other=NOT_FOUND,
        supervisor=NOT_FOUND,
        supervisor_other=NOT_FOUND,
        admin=NOT_FOUND,
    ),
    "/stats/bureau": row(
        officer=FORBIDDEN,
        officer_other=FORBIDDEN,
        supervisor=FORBIDDEN,
        supervisor_other=FORBIDDEN,
        admin=BUREAU,
    ),
}


@dataclass
class Ctx:
    api: str
    http: aiohttp.ClientSession
    world: World
    users: dict[str, User]

    async def outcome(self, path: str, actor: str) -> Outcome:
        w = self.world
        headers = {}
        if actor != "anonymous":
            headers["Authorization"] = f"Bearer {w.token(self.users[actor])}"
        url = self.api + path.format(gm=w.gaoming.id, ss=w.sanshui.id)
        async with self.http.get(url, headers=headers) as response:
            body: Any = await response.json()
        if response.status != 200:
            return (response.status, body["error"]["code"])
        if "prisons" in body:
            return tuple(p["code"] for p in body["prisons"])
        assert "days" in body
        return BUREAU


@pytest.fixture
async def ctx(pg_store: PostgresDatabase, pg_url: str) -> AsyncIterator[Ctx]:
    world = await seed(pg_store)
    staff: Staff = await seed_staff(pg_store, world)
    users = {
        "relative_none": world.stranger,
        "relative_a": world.relative,
        "officer": world.officer,
        "officer_other": world.other_officer,
        "supervisor": world.supervisor,
        "supervisor_other": staff.other_supervisor,
        "admin": staff.admin,
    }
    settings = Settings(database_url=pg_url, port=free_port(), secret="figures-policy")
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Ctx(served.http_url + "/api/v1", http, world, users)


@pytest.mark.parametrize("path", list(MATRIX))
async def test_figures_matrix_over_http(ctx: Ctx, path: str) -> None:
    got = {actor: await ctx.outcome(path, actor) for actor in ACTORS}
    assert got == MATRIX[path]


# the same rules, straight on the policy


def principal(role: str, prisons: tuple[int, ...] = ()) -> Principal:
    return Principal(User(1, role, "x", "X", prisons))  # type: ignore[arg-type]


def decide(call: Any) -> Any:
    try:
        return call()
    except NotSignedIn:
        return 401
    except Denied as denied:
        return denied.code


def test_policy_rules_by_role_and_prison() -> None:
    officer, other_officer = principal("officer", (1,)), principal("officer", (2,))
    supervisor, both = principal("supervisor", (1,)), principal("supervisor", (1, 2))
    admin, relative = principal("admin"), principal("relative")
    cases: list[tuple[Principal | None, int | None, Any]] = [
        (None, None, 401),
        (None, 1, 401),
        (relative, None, "forbidden"),
        (relative, 1, "forbidden"),
        (officer, None, (1,)),
        (officer, 1, (1,)),
        (officer, 2, "not_found"),
        (other_officer, 1, "not_found"),
        (supervisor, None, (1,)),
        (supervisor, 2, "not_found"),
        (both, None, (1, 2)),
        (both, 2, (2,)),
        (admin, None, None),  # every prison
        (admin, 7, (7,)),  # whether it exists is the handler's question (404 if not)
        (principal("supervisor"), None, ()),  # a supervisor of no prison reads none
    ]
    for who, prison, expected in cases:
        assert decide(lambda: figure_prisons(who, prison)) == expected, (who, prison)  # noqa: B023
    for who, expected in [
        (None, 401),
        (relative, "forbidden"),
        (officer, "forbidden"),
        (supervisor, "forbidden"),
        (admin, admin),
    ]:
        assert decide(lambda: check_figures(who, "bureau")) == expected  # noqa: B023
