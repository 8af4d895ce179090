"""Who may use the desk settings, comments on announcements and the period figures (issue 16):
every actor against every route, over real HTTP to an in-process server on PostgreSQL, and
the same rules straight on ``server/policy.py``. ``ROUTES`` lists each row's
``(method, path)`` for ``test_policy_matrix``'s check that every route has a row."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from domain.records import User
from server.config import Settings
from server.policy import (
    Denied,
    DeskSettingsAction,
    NotSignedIn,
    Principal,
    check_comment_moderation,
    check_comment_post,
    check_desk_settings,
    comment_moderation_scope,
    sees_comment,
)
from storage import comments
from storage.announcements import NewAnnouncement, post
from storage.postgres import PostgresDatabase
from tests.servers import free_port, inprocess
from tests.world import World, seed, seed_staff

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
Outcome = tuple[int, str | None]
NOT_SIGNED_IN: Outcome = (401, "not_authenticated")
FORBIDDEN: Outcome = (403, "forbidden")
NOT_FOUND: Outcome = (404, "not_found")


def ok(status: int = 200) -> Outcome:
    return (status, None)


def row(default: Outcome, **cells: Outcome) -> dict[str, Outcome]:
    """``default`` for every actor not named (anonymous: 401 unless named)."""
    assert set(cells) <= set(ACTORS), set(cells) - set(ACTORS)
    return {a: cells.get(a, NOT_SIGNED_IN if a == "anonymous" else default) for a in ACTORS}


@dataclass
class Ctx:
    api: str
    http: aiohttp.ClientSession
    store: PostgresDatabase
    world: World
    users: dict[str, User]
    gm_news: int
    ss_news: int

    async def fresh_comment(self) -> int:
        made = await comments.post(
            self.store, self.gm_news, self.world.relative.id, "谢谢", datetime.now(UTC)
        )
        return made.id


Prepare = Callable[[Ctx], Awaitable[dict[str, Any]]]


async def _nothing(_: Ctx) -> dict[str, Any]:
    return {}


async def _comment(ctx: Ctx) -> dict[str, Any]:
    return {"comment": await ctx.fresh_comment()}


SETTINGS_BODY = {"auto_assign": "round_robin", "assign_cap": 3, "away_reply": True}


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # {gm}, {ss}: prison ids; {gm_news}, {ss_news}: announcements; {comment}
    expect: dict[str, Outcome]
    body: dict[str, Any] | None = None
    prepare: Prepare = _nothing

    @property
    def route(self) -> str:
        parts = self.path.split("?", maxsplit=1)[0].split("/")
        return "/".join("{id}" if p.startswith("{") else p for p in parts)


ROWS: dict[str, Row] = {
    "read GM's desk settings": Row(
        "GET",
        "/prisons/{gm}/desk-settings",
        row(NOT_FOUND, officer=ok(), supervisor=ok(), admin=ok()),
    ),
    "change GM's desk settings": Row(
        "PUT",
        "/prisons/{gm}/desk-settings",
        row(NOT_FOUND, officer=FORBIDDEN, supervisor=FORBIDDEN, admin=ok()),
        SETTINGS_BODY,
    ),
    "read a GM announcement's comments": Row(
        "GET", "/announcements/{gm_news}/comments", row(ok(), anonymous=ok())
    ),
    "comment on a GM announcement": Row(
        "POST",
        "/announcements/{gm_news}/comments",
        row(FORBIDDEN, relative_a=ok(201)),
        {"body": "谢谢通知"},
    ),
    "comment on a Sanshui announcement": Row(
        "POST",
        "/announcements/{ss_news}/comments",
        row(FORBIDDEN, relative_a=NOT_FOUND),
        {"body": "谢谢通知"},
    ),
    "the moderation queue": Row(
        "GET", "/comments", row(FORBIDDEN, officer=ok(), officer_other=ok(), admin=ok())
    ),
    "approve a GM comment": Row(
        "POST",
        "/comments/{comment}/approve",
        row(FORBIDDEN, officer=ok(), officer_other=NOT_FOUND, admin=ok()),
        prepare=_comment,
    ),
    "reject a GM comment": Row(
        "POST",
        "/comments/{comment}/reject",
        row(FORBIDDEN, officer=ok(), officer_other=NOT_FOUND, admin=ok()),
        prepare=_comment,
    ),
    "period figures": Row(
        "GET",
        "/stats/period",
        row(
            FORBIDDEN,
            officer=ok(),
            officer_other=ok(),
            supervisor=ok(),
            supervisor_other=ok(),
            admin=ok(),
        ),
    ),
    "period figures of GM": Row(
        "GET",
        "/stats/period?prison={gm}",
        row(
            FORBIDDEN,
            officer=ok(),
            officer_other=NOT_FOUND,
            supervisor=ok(),
            supervisor_other=NOT_FOUND,
            admin=ok(),
        ),
    ),
}
ROUTES = {(r.method, r.route) for r in ROWS.values()}


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
    now = datetime.now(UTC)
    gm_news = await post(
        pg_store,
        NewAnnouncement(
            author_id=world.officer.id, title="GM", body="b", prison_id=world.gaoming.id
        ),
        now=now,
    )
    ss_news = await post(
        pg_store,
        NewAnnouncement(
            author_id=world.other_officer.id, title="SS", body="b", prison_id=world.sanshui.id
        ),
        now=now,
    )
    settings = Settings(database_url=pg_url, port=free_port(), secret="routing-policy")
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Ctx(served.http_url + "/api/v1", http, pg_store, world, users, gm_news.id, ss_news.id)


async def cell(ctx: Ctx, r: Row, actor: str) -> Outcome:
    w = ctx.world
    names = {"gm": w.gaoming.id, "ss": w.sanshui.id, "gm_news": ctx.gm_news, "ss_news": ctx.ss_news}
    names |= await r.prepare(ctx)
    headers = (
        {} if actor == "anonymous" else {"Authorization": f"Bearer {w.token(ctx.users[actor])}"}
    )
    async with ctx.http.request(
        r.method, ctx.api + r.path.format(**names), json=r.body, headers=headers
    ) as response:
        got: Any = await response.json()
    if response.status >= 400:
        return (response.status, got["error"]["code"])
    return (response.status, None)


@pytest.mark.parametrize("name", list(ROWS))
async def test_matrix_over_http(ctx: Ctx, name: str) -> None:
    r = ROWS[name]
    got = {actor: await cell(ctx, r, actor) for actor in ACTORS}
    assert got == r.expect


# the same rules, straight on the policy


def principal(
    role: str,
    prisons: tuple[int, ...] = (),
    inmates: frozenset[int] = frozenset(),
    at: frozenset[int] = frozenset(),
) -> Principal:
    return Principal(User(1, role, "x", "X", prisons), inmates, at)  # type: ignore[arg-type]


def decide(call: Callable[[], Any]) -> Any:
    try:
        result = call()
    except NotSignedIn:
        return 401
    except Denied as denied:
        return denied.code
    return "ok" if isinstance(result, Principal) else result


OFFICER = principal("officer", (1,))
OFFICER_2 = principal("officer", (2,))
SUPERVISOR = principal("supervisor", (1,))
ADMIN = principal("admin")
RELATIVE = principal("relative", inmates=frozenset({10}), at=frozenset({1}))
STRANGER = principal("relative")


def test_desk_settings_rules() -> None:
    cases: list[tuple[Principal | None, DeskSettingsAction, Any]] = [
        (None, "read", 401),
        (STRANGER, "read", "not_found"),
        (RELATIVE, "read", "not_found"),
        (OFFICER, "read", "ok"),
        (OFFICER, "update", "forbidden"),
        (OFFICER_2, "read", "not_found"),
        (SUPERVISOR, "read", "ok"),
        (SUPERVISOR, "update", "forbidden"),
        (ADMIN, "read", "ok"),
        (ADMIN, "update", "ok"),
    ]
    for who, action, expected in cases:
        assert decide(lambda: check_desk_settings(who, 1, action)) == expected, (who, action)  # noqa: B023


def test_comment_rules() -> None:
    for who, prison, expected in [
        (None, 1, 401),
        (STRANGER, None, "forbidden"),  # verified for nobody
        (RELATIVE, 1, "ok"),
        (RELATIVE, None, "ok"),  # bureau-wide
        (RELATIVE, 2, "not_found"),  # no inmate there
        (OFFICER, 1, "forbidden"),
        (ADMIN, None, "forbidden"),
    ]:
        assert decide(lambda: check_comment_post(who, prison)) == expected, (who, prison)  # noqa: B023
    for who, prison, expected in [
        (None, 1, 401),
        (RELATIVE, 1, "forbidden"),
        (SUPERVISOR, 1, "forbidden"),
        (OFFICER, 1, "ok"),
        (OFFICER, 2, "not_found"),
        (OFFICER, None, "not_found"),  # bureau-wide: the admin's
        (ADMIN, None, "ok"),
        (ADMIN, 2, "ok"),
    ]:
        assert decide(lambda: check_comment_moderation(who, prison)) == expected, (who, prison)  # noqa: B023
    assert decide(lambda: comment_moderation_scope(OFFICER)) == (1,)
    assert decide(lambda: comment_moderation_scope(ADMIN)) is None
    assert decide(lambda: comment_moderation_scope(SUPERVISOR)) == "forbidden"
    other = 99  # another relative wrote it
    assert sees_comment(None, other, "approved", 1)
    assert not sees_comment(None, other, "pending", 1)
    assert sees_comment(RELATIVE, RELATIVE.id, "pending", 1)  # its own
    assert not sees_comment(RELATIVE, other, "pending", 1)
    assert sees_comment(OFFICER, other, "rejected", 1)
    assert not sees_comment(OFFICER_2, other, "pending", 1)
    assert not sees_comment(SUPERVISOR, other, "pending", 1)
    assert sees_comment(ADMIN, other, "pending", None)
