"""Who may use the routes of reaching relatives outside the page (WeChat binding, Web Push
devices, the channel choice, delivery reports): every actor against every route, over real
HTTP to an in-process server on PostgreSQL with the WeChat channel on (a local fake of the
platform). A relative acts on its own binding and devices only, so every relative may; staff
get 403. ``ROUTES`` lists each row's ``(method, path)`` for ``test_policy_matrix``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from domain.records import User
from server.api import notify
from server.config import Settings
from storage.postgres import PostgresDatabase
from tests import fake_outside as fx
from tests.servers import free_port, inprocess
from tests.world import World, seed, seed_staff

ACTORS = (
    "anonymous",
    "relative_none",
    "relative_a",
    "officer",
    "supervisor",
    "admin",
)
NOT_SIGNED_IN = (401, "not_authenticated")
FORBIDDEN = (403, "forbidden")
Outcome = tuple[int, str | None]


def relatives_only(status: int = 200) -> dict[str, Outcome]:
    return {
        "anonymous": NOT_SIGNED_IN,
        "relative_none": (status, None),
        "relative_a": (status, None),
        "officer": FORBIDDEN,
        "supervisor": FORBIDDEN,
        "admin": FORBIDDEN,
    }


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # as described in openapi.json, under /api/v1
    expect: dict[str, Outcome]
    body: Callable[[fx.FakeWeChat, int], Any] | None = None


def device(n: int) -> dict[str, Any]:
    return {
        "endpoint": f"http://127.0.0.1:9/push/matrix-{n}",
        "keys": {"p256dh": fx.b64url(bytes(65)), "auth": fx.b64url(bytes(16))},
    }


CONVERSATION_READERS: dict[str, Outcome] = {
    "anonymous": NOT_SIGNED_IN,
    "relative_none": (404, "not_found"),
    "relative_a": (200, None),
    "officer": (200, None),
    "supervisor": (200, None),
    "admin": (404, "not_found"),
}


ROWS: dict[str, Row] = {
    "show binding": Row("GET", "/wechat/bind", relatives_only()),
    "bind": Row(
        "POST",
        "/wechat/bind",
        relatives_only(),
        body=lambda fake, n: {"code": fake.code_for(f"o-matrix-{n}")},
    ),
    "unbind": Row("DELETE", "/wechat/bind", relatives_only()),
    # anyone may present a code: what decides is the OpenID the platform says it stands for
    "sign in through WeChat": Row(
        "POST",
        "/wechat/signin",
        {actor: (404, "not_bound") for actor in ACTORS},
        body=lambda fake, n: {"code": fake.code_for(f"o-matrix-nobody-{n}")},
    ),
    "push key": Row("GET", "/push/key", relatives_only()),
    "subscribe device": Row(
        "POST", "/push/subscriptions", relatives_only(201), body=lambda _, n: device(n)
    ),
    "unsubscribe device": Row(
        "DELETE",
        "/push/subscriptions",
        relatives_only(),
        body=lambda _, n: {"endpoint": device(n)["endpoint"]},
    ),
    "show channel": Row("GET", "/notifications", relatives_only()),
    "choose channel": Row(
        "PUT", "/notifications", relatives_only(), body=lambda _, n: {"channel": "auto"}
    ),
    "deliveries": Row("GET", "/conversations/{conv}/deliveries", CONVERSATION_READERS),
}


@dataclass
class Ctx:
    api: str
    http: aiohttp.ClientSession
    world: World
    users: dict[str, User]
    fake: fx.FakeWeChat

    async def outcome(self, row: Row, actor: str, n: int) -> Outcome:
        headers = {}
        if actor != "anonymous":
            headers["Authorization"] = f"Bearer {self.world.token(self.users[actor])}"
        payload = row.body(self.fake, n) if row.body else None
        url = self.api + row.route.format(conv=self.world.conv.id)
        async with self.http.request(row.method, url, json=payload, headers=headers) as response:
            answer: Any = await response.json() if response.status != 204 else None
        if response.status >= 400:
            return (response.status, answer["error"]["code"])
        return (response.status, None)


@pytest.fixture
async def ctx(pg_store: PostgresDatabase) -> AsyncIterator[Ctx]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    users = {
        "relative_none": world.stranger,
        "relative_a": world.relative,
        "officer": world.officer,
        "supervisor": world.supervisor,
        "admin": staff.admin,
    }
    fake = fx.FakeWeChat()
    async with fx.serve(fake) as api:
        settings = Settings(
            port=free_port(),
            secret="outreach-policy",
            wechat_appid=fx.APPID,
            wechat_secret=fx.SECRET,
            wechat_token=fx.TOKEN,
            wechat_api=api,
            push_endpoints=("http://127.0.0.1:",),
        )
        async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
            yield Ctx(served.http_url + "/api/v1", http, world, users, fake)


@pytest.mark.parametrize("name", list(ROWS))
async def test_outreach_matrix_over_http(ctx: Ctx, name: str) -> None:
    row = ROWS[name]
    got = {actor: await ctx.outcome(row, actor, n) for n, actor in enumerate(ACTORS)}
    assert got == row.expect


def test_every_outreach_route_has_a_row() -> None:
    described = {(r.method, r.path) for r in notify.ROUTES}
    assert described == ROUTES


ROUTES = {(r.method, r.route.replace("{conv}", "{id}")) for r in ROWS.values()}
