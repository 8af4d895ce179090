"""The authorization matrix: every endpoint and every WebSocket action, against every actor.

Each row is data: what to call and, for each of the nine actors, the exact outcome (allowed
with its status, or the denial's status and error code). A later issue adds its endpoints as
rows; ``test_every_api_route_has_a_row`` fails until it does. Everything goes over real HTTP
and real sockets to an in-process server on PostgreSQL. Objects belong to relative A and to
Gaoming prison; each cell gets fresh ones, so one actor's allowed action never changes the
next actor's answer. An object one may not see is answered 404, never 403.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from domain.records import NewMessage, User
from server import passwords, sessions
from server.config import Settings
from storage import accounts, links, prisons
from storage.postgres import PostgresDatabase
from tests.idnumbers import valid_id
from tests.servers import free_port, inprocess
from tests.world import Staff, World, seed, seed_staff

PASSWORD = "a long passphrase here"

ACTORS = (
    "anonymous",
    "relative_none",  # no verified link
    "relative_a",  # verified for inmate A (Gaoming); owns the links and the conversation
    "relative_b",  # verified for inmate B (Gaoming)
    "officer",  # of Gaoming
    "officer_other",  # of Sanshui
    "supervisor",  # of Gaoming
    "supervisor_other",  # of Sanshui
    "admin",
)


@dataclass(frozen=True)
class Outcome:
    status: int  # HTTP status; for a socket action 200 means allowed
    code: str | None = None  # error code of a denial


def ok(status: int = 200) -> Outcome:
    return Outcome(status)


UNAUTHENTICATED = Outcome(401, "not_authenticated")
NOT_FOUND = Outcome(404, "not_found")
FORBIDDEN = Outcome(403, "forbidden")


def table(default: Outcome, **cells: Outcome) -> dict[str, Outcome]:
    """Outcomes for every actor: ``default`` unless named (anonymous: 401 unless named)."""
    unknown = set(cells) - set(ACTORS)
    assert not unknown, unknown
    return {
        actor: cells.get(actor, UNAUTHENTICATED if actor == "anonymous" else default)
        for actor in ACTORS
    }


# who sees what, the usual shapes
SIGNED_IN = table(ok())
ADMIN_ONLY = table(FORBIDDEN, admin=ok())
ADMIN_CREATES = table(FORBIDDEN, admin=ok(201))
LINK_READ = table(NOT_FOUND, relative_a=ok(), officer=ok(), supervisor=ok(), admin=ok())
LINK_DECIDE = table(
    NOT_FOUND, relative_a=FORBIDDEN, officer=ok(), supervisor=FORBIDDEN, admin=FORBIDDEN
)
LINK_REVOKE = table(NOT_FOUND, relative_a=FORBIDDEN, officer=ok(), supervisor=ok(), admin=ok())
RELATIVES = table(FORBIDDEN, relative_none=ok(201), relative_a=ok(201), relative_b=ok(201))


@dataclass
class Ctx:
    http: aiohttp.ClientSession
    api: str
    ws: str
    store: PostgresDatabase
    world: World
    staff: Staff
    users: dict[str, User]
    login_password: str
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def token(self, actor: str) -> str | None:
        return None if actor == "anonymous" else self.world.token(self.users[actor])

    async def fresh_inmate(self) -> int:
        n = next(self.counter)
        return (
            await prisons.add_inmate(self.store, self.world.gaoming.id, f"GM-M{n}", f"Inmate {n}")
        ).id

    async def pending_link(self) -> int:
        inmate = await self.fresh_inmate()
        return await links.request_link(
            self.store, self.world.relative.id, inmate, "father", "card"
        )

    async def verified_link(self) -> int:
        link = await self.pending_link()
        await links.decide_link(self.store, link, "verified", self.world.officer.id, None)
        return link


Prepare = Callable[[Ctx, str], Awaitable[dict[str, Any]]]


async def _nothing(_: Ctx, __: str) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class HttpRow:
    method: str
    path: str  # under /api/v1; {names} are filled from prepare()
    expect: dict[str, Outcome]
    # fresh objects for one cell; "_token" replaces the actor's, "_body" the cell's body
    prepare: Prepare = _nothing
    body: Callable[[int], dict[str, Any]] | None = None  # n: unique per cell

    @property
    def route(self) -> str:
        """The route as registered (placeholders renamed to the route's ``{id}``)."""
        parts = self.path.split("?", maxsplit=1)[0].split("/")
        return "/api/v1" + "/".join("{id}" if p.startswith("{") else p for p in parts)


async def _link_request(ctx: Ctx, _: str) -> dict[str, Any]:
    """A request naming a fresh inmate of Gaoming (a number the prison does not hold is
    refused at once, 400 ``inmate_not_found``): the cell's body, as ``_body``."""
    inmate = await prisons.inmate(ctx.store, await ctx.fresh_inmate())
    return {"_body": {"prison": "GM", "inmate_number": inmate.number, "relationship": "son"}}


async def _pending(ctx: Ctx, _: str) -> dict[str, Any]:
    return {"link": await ctx.pending_link()}


async def _verified(ctx: Ctx, _: str) -> dict[str, Any]:
    return {"link": await ctx.verified_link()}


async def _own_session(ctx: Ctx, actor: str) -> dict[str, Any]:
    if actor == "anonymous":
        return {}
    return {"_token": await sessions.issue(ctx.store, ctx.users[actor], days=1)}


async def _own_password(ctx: Ctx, actor: str) -> dict[str, Any]:
    """The actor's password set to ``PASSWORD`` and a session of its own (a change ends its
    other sessions)."""
    if actor == "anonymous":
        return {}
    user = ctx.users[actor]
    await accounts.set_password_hash(ctx.store, user.id, passwords.hash_password(PASSWORD))
    return {"_token": await sessions.issue(ctx.store, user, days=1)}


async def _linked_relative(ctx: Ctx, _: str) -> dict[str, Any]:
    """A relative with a pending link to an inmate of Gaoming (the officer's prison)."""
    n = next(ctx.counter)
    user = await accounts.add_user(ctx.store, "relative", f"1370000{n:04d}", "Temp", "x")
    inmate = await ctx.fresh_inmate()
    await links.request_link(ctx.store, user.id, inmate, "son", "card")
    return {"user": user.id}


async def _the_conversation(ctx: Ctx, _: str) -> dict[str, Any]:
    return {"conv": ctx.world.conv.id}


async def _some_user(ctx: Ctx, _: str) -> dict[str, Any]:
    n = next(ctx.counter)
    user = await accounts.add_user(
        ctx.store, "officer", f"temp.{n}", "Temp", "x", [ctx.world.gaoming.id]
    )
    await sessions.issue(ctx.store, user, days=1)
    return {"user": user.id}


HTTP_ROWS: dict[str, HttpRow] = {
    "register": HttpRow(
        "POST",
        "/auth/register",
        table(ok(201), anonymous=ok(201)),
        body=lambda n: {
            "phone": f"1390000{n:04d}",
            "name": "New Relative",
            "password": "a long passphrase here",
            "id_number": valid_id(n),
        },
    ),
    "login": HttpRow(
        "POST",
        "/auth/login",
        table(ok(), anonymous=ok()),
        body=lambda _: {"login": "13800000099", "password": "a long passphrase here"},
    ),
    "logout": HttpRow("POST", "/auth/logout", table(ok(204)), prepare=_own_session),
    "me": HttpRow("GET", "/me", SIGNED_IN),
    "export own data": HttpRow("GET", "/me/export", SIGNED_IN),
    "register code": HttpRow(
        "POST",
        "/auth/register/code",
        table(ok(202), anonymous=ok(202)),
        body=lambda n: {"phone": f"1360000{n:04d}"},
    ),
    "reset code": HttpRow(
        "POST",
        "/auth/reset/code",
        table(ok(202), anonymous=ok(202)),
        body=lambda n: {"phone": f"1350000{n:04d}"},
    ),
    "reset by code": HttpRow(  # anyone may try; a wrong code is the same answer for all
        "POST",
        "/auth/reset",
        table(Outcome(400, "invalid_code"), anonymous=Outcome(400, "invalid_code")),
        body=lambda n: {
            "phone": f"1340000{n:04d}",
            "code": "000000",
            "new_password": "a long passphrase here",
        },
    ),
    "request link": HttpRow(
        "POST",
        "/links",
        RELATIVES,
        prepare=_link_request,
    ),
    "list links": HttpRow("GET", "/links", SIGNED_IN),
    "conversation transcript": HttpRow(
        "GET",
        "/conversations/{conv}/transcript",
        table(NOT_FOUND, relative_a=ok(), officer=ok(), supervisor=ok()),
        prepare=_the_conversation,
    ),
    "conversation record export": HttpRow(  # the hash-chain record: as reading it
        "GET",
        "/conversations/{conv}/export",
        table(NOT_FOUND, relative_a=ok(), officer=ok(), supervisor=ok()),
        prepare=_the_conversation,
    ),
    "audit range export": HttpRow(
        "GET",
        "/audit/export?since=2026-01-01T00:00:00Z&until=2027-01-01T00:00:00Z",
        table(FORBIDDEN, supervisor=ok(), supervisor_other=ok(), admin=ok()),
    ),
    "read link": HttpRow("GET", "/links/{link}", LINK_READ, prepare=_pending),
    "read missing link": HttpRow("GET", "/links/999999", table(NOT_FOUND)),
    "verify link": HttpRow(
        "POST", "/links/{link}/verify", LINK_DECIDE, prepare=_pending, body=lambda _: {}
    ),
    "reject link": HttpRow(
        "POST",
        "/links/{link}/reject",
        LINK_DECIDE,
        prepare=_pending,
        body=lambda _: {"reason": "no evidence"},
    ),
    "revoke link": HttpRow(
        "POST",
        "/links/{link}/revoke",
        LINK_REVOKE,
        prepare=_verified,
        body=lambda _: {"reason": "court order"},
    ),
    "list users": HttpRow("GET", "/admin/users", ADMIN_ONLY),
    "create user": HttpRow(
        "POST",
        "/admin/users",
        ADMIN_CREATES,
        body=lambda n: {
            "role": "admin",
            "login": f"new.admin{n}",
            "name": "New Admin",
            "password": "a long passphrase here",
        },
    ),
    "revoke sessions": HttpRow(
        "POST", "/admin/users/{user}/revoke-sessions", ADMIN_ONLY, prepare=_some_user
    ),
    "disable user": HttpRow("POST", "/admin/users/{user}/disable", ADMIN_ONLY, prepare=_some_user),
    "enable user": HttpRow("POST", "/admin/users/{user}/enable", ADMIN_ONLY, prepare=_some_user),
    "edit staff": HttpRow(
        "PATCH",
        "/admin/users/{user}",
        ADMIN_ONLY,
        prepare=_some_user,
        body=lambda _: {"name": "Renamed"},
    ),
    "set a staff password": HttpRow(
        "POST",
        "/admin/users/{user}/password",
        ADMIN_ONLY,
        prepare=_some_user,
        body=lambda n: {"new_password": f"a fresh passphrase number {n}"},
    ),
    "set a relative's password": HttpRow(
        "POST",
        "/admin/users/{user}/password",
        table(FORBIDDEN, officer=ok(), admin=ok()),
        prepare=_linked_relative,
        body=lambda n: {"new_password": f"a fresh passphrase number {n}"},
    ),
    "change own password": HttpRow(
        "POST",
        "/auth/password",
        SIGNED_IN,
        prepare=_own_password,
        body=lambda n: {"old_password": PASSWORD, "new_password": f"a new passphrase no {n}"},
    ),
    "list prisons": HttpRow("GET", "/admin/prisons", ADMIN_ONLY),
    "create prison": HttpRow(
        "POST",
        "/admin/prisons",
        ADMIN_CREATES,
        body=lambda n: {"code": f"NP{n}", "name": f"New Prison {n}"},
    ),
    "openapi": HttpRow("GET", "/openapi.json", table(ok(), anonymous=ok())),
}


# WebSocket actions on conversation A (relative A <-> Gaoming about inmate A)

CONV_PARTICIPANT = table(NOT_FOUND, relative_a=ok(), officer=ok(), supervisor=ok())
CONV_WRITERS = table(NOT_FOUND, relative_a=ok(), officer=ok(), supervisor=FORBIDDEN)
WS_ROWS: dict[str, dict[str, Outcome]] = {
    "hello resume": CONV_PARTICIPANT,
    "send": CONV_WRITERS,
    "send note": table(NOT_FOUND, relative_a=FORBIDDEN, officer=ok(), supervisor=FORBIDDEN),
    "watch": CONV_PARTICIPANT,
    "typing": CONV_WRITERS,
    "read": CONV_WRITERS,
}


@pytest.fixture
async def ctx(pg_store: PostgresDatabase, pg_url: str) -> AsyncIterator[Ctx]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    password = "a long passphrase here"
    hashed = await asyncio.to_thread(passwords.hash_password, password)
    await accounts.add_user(pg_store, "relative", "13800000099", "Login Test", hashed)
    await pg_store.append_messages(
        [NewMessage(world.conv.id, world.relative.id, "relative", "seed-1", "first question")]
    )
    settings = Settings(  # registration's SMS code is tested in test_accounts
        database_url=pg_url,
        port=free_port(),
        secret="matrix",
        send_rate=500,
        send_burst=500,
        verify_phone=False,
    )
    users = {
        "relative_none": world.stranger,
        "relative_a": world.relative,
        "relative_b": world.relative_b,
        "officer": world.officer,
        "officer_other": world.other_officer,
        "supervisor": world.supervisor,
        "supervisor_other": staff.other_supervisor,
        "admin": staff.admin,
    }
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Ctx(
            http,
            served.http_url + "/api/v1",
            served.ws_url,
            pg_store,
            world,
            staff,
            users,
            password,
        )


async def http_cell(ctx: Ctx, row: HttpRow, actor: str) -> Outcome:
    values = await row.prepare(ctx, actor)
    token = values.pop("_token", ctx.token(actor))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    n = next(ctx.counter)
    payload = row.body(n) if row.body else ({} if row.method == "POST" else None)
    payload = values.pop("_body", payload)
    async with ctx.http.request(
        row.method, ctx.api + row.path.format(**values), json=payload, headers=headers
    ) as response:
        if response.status >= 400:
            error = (await response.json())["error"]
            return Outcome(response.status, error["code"])
        return Outcome(response.status)


@pytest.mark.parametrize("name", list(HTTP_ROWS))
async def test_http_matrix(ctx: Ctx, name: str) -> None:
    row = HTTP_ROWS[name]
    got = {actor: await http_cell(ctx, row, actor) for actor in ACTORS}
    assert got == row.expect


async def _open(ctx: Ctx, actor: str) -> ClientConnection:
    token = ctx.token(actor)
    ws = await connect(
        ctx.ws,
        subprotocols=["kinline.v1"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token}"} if token else {},
        compression=None,
    )
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def _frames(ws: ClientConnection) -> AsyncIterator[dict[str, Any]]:
    while True:
        yield json.loads(await ws.recv())


async def _first(ws: ClientConnection, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async for frame in _frames(ws):
        if frame["type"] == "error" or accept(frame):
            return frame
    raise AssertionError("socket closed")


async def ws_cell(ctx: Ctx, action: str, actor: str, observer: ClientConnection) -> Outcome:
    conv = ctx.world.conv.id
    if actor == "anonymous":
        with pytest.raises(InvalidStatus) as refused:
            await _open(ctx, actor)
        body = json.loads(refused.value.response.body or b"{}")
        return Outcome(refused.value.response.status_code, body["error"]["code"])
    me = ctx.users[actor].id
    ws = await _open(ctx, actor)
    try:
        cid = f"m-{next(ctx.counter)}"
        own: Callable[[dict[str, Any]], bool] = lambda _: False  # noqa: E731
        seen: Callable[[dict[str, Any]], bool] | None = None  # what the observer must see
        if action == "hello resume":
            frame: dict[str, Any] = {"type": "hello", "resume": {str(conv): 0}}
            own = lambda f: f["type"] == "message" and f["seq"] == 1  # noqa: E731
        elif action in ("send", "send note"):
            kind = "note" if action == "send note" else "text"
            frame = {"type": "send", "conv": conv, "cid": cid, "body": "hi", "kind": kind}
            own = lambda f: f["type"] == "ack" and f["cid"] == cid  # noqa: E731
        elif action == "watch":
            frame = {"type": "watch", "conv": conv, "after": 0}
            own = lambda f: f["type"] == "message" and f["seq"] == 1  # noqa: E731
        elif action == "typing":
            frame = {"type": "typing", "conv": conv}
            seen = lambda f: f["type"] == "typing" and f["user"]["id"] == me  # noqa: E731
        else:
            frame = {"type": "read", "conv": conv, "seq": 1}
            seen = lambda f: f["type"] == "read" and f["user"] == me  # noqa: E731
        await ws.send(json.dumps(frame))
        waits = [asyncio.ensure_future(_first(ws, own))]
        if seen is not None:
            waits.append(asyncio.ensure_future(_first(observer, seen)))
        async with asyncio.timeout(5):
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        result = done.pop().result()
        if result["type"] == "error":
            return Outcome({"not_found": 404, "forbidden": 403}[result["code"]], result["code"])
        return ok()
    finally:
        await ws.close()


@pytest.mark.parametrize("action", list(WS_ROWS))
async def test_websocket_matrix(ctx: Ctx, action: str) -> None:
    observer = await _open(ctx, "officer")
    await observer.send(json.dumps({"type": "watch", "conv": ctx.world.conv.id}))
    async with asyncio.timeout(5):  # typing is not replayed: observe only once the watch is live
        answer = await _first(observer, lambda f: f["type"] == "subscribed")
    assert answer["type"] == "subscribed", answer
    try:
        got = {actor: await ws_cell(ctx, action, actor, observer) for actor in ACTORS}
    finally:
        await observer.close()
    assert got == WS_ROWS[action]


async def test_every_api_route_has_a_row(ctx: Ctx) -> None:
    """A new endpoint without a row in the matrix fails here."""
    async with ctx.http.get(ctx.api + "/openapi.json") as response:
        described = {
            (method.upper(), path)
            for path, operations in (await response.json())["paths"].items()
            for method in operations
        }
    covered = {(row.method, row.route) for row in HTTP_ROWS.values()} | area_matrix_routes()
    assert described - covered == set()


def area_matrix_routes() -> set[tuple[str, str]]:
    """Routes covered by an area's own matrix (``tests/test_policy_<area>.py``), which checks
    that each of its area's routes has a row."""
    from tests import (
        test_policy_attachments,
        test_policy_complaints_and_announcements,
        test_policy_consent,
        test_policy_contest,
        test_policy_desk,
        test_policy_desk_routing,
        test_policy_figures,
        test_policy_information,
        test_policy_keywords,
        test_policy_outreach,
        test_policy_register,
        test_policy_search,
        test_policy_watching_and_audit,
    )

    def bare(path: str) -> str:
        return path.split("?", maxsplit=1)[0].removeprefix("/api/v1")

    rows = [
        *(row.route for row in test_policy_desk.DESK_ROWS.values()),
        *(row.route for row in test_policy_information.ROWS.values()),
        *((r.method, r.route) for r in test_policy_register.ROWS.values()),
        *((r.method, r.route) for r in test_policy_complaints_and_announcements.ROWS.values()),
        *(tuple(name.split(" ", 1)) for name in test_policy_watching_and_audit.HTTP_EXPECTED),
        *(("GET", path) for path in test_policy_figures.MATRIX),
        *test_policy_outreach.ROUTES,
        *((r.method, r.route) for r in test_policy_consent.ROWS.values()),
        *test_policy_attachments.ROUTES,
        *((r.method, r.route) for r in test_policy_contest.ROWS.values()),  # issue 15
        *test_policy_keywords.ROUTES,
        *test_policy_desk_routing.ROUTES,
        *test_policy_search.ROUTES,
    ]
    return {(method, "/api/v1" + bare(path)) for method, path in rows}


def test_the_table_names_every_actor_in_every_row() -> None:
    for expect in [*(r.expect for r in HTTP_ROWS.values()), *WS_ROWS.values()]:
        assert tuple(expect) == ACTORS
