"""The authorization matrix of the information and visits area: every one of its endpoints
against every actor, over real HTTP to an in-process server on PostgreSQL.

Objects belong to inmate A of Gaoming prison (relative A is verified for it) unless a row
makes fresh ones for each cell, so one actor's allowed action never changes the next actor's
answer. An object one may not see is answered 404, never 403; a supervisor of the prison reads
cards and visits and changes nothing; the admin sets visit rules and sees no card or visit.
After each row, a check proves the denied cells changed nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from domain.records import User
from server.api import inmates as inmates_api
from server.api import visits as visits_api
from server.config import Settings
from storage import audit_trail, inmate_info, links, messages, prisons, visits
from storage.inmate_info import InfoPatch, MovementIn
from storage.postgres import PostgresDatabase
from tests.servers import free_port, inprocess
from tests.world import Staff, World, seed, seed_staff

ACTORS = (
    "anonymous",
    "relative_none",  # no verified link
    "relative_a",  # verified for inmate A (Gaoming)
    "relative_b",  # verified for inmate B (Gaoming): a relative of another inmate
    "officer",  # of Gaoming
    "officer_other",  # of Sanshui
    "supervisor",  # of Gaoming
    "supervisor_other",  # of Sanshui
    "admin",
)


@dataclass(frozen=True)
class Outcome:
    status: int
    code: str | None = None


def ok(status: int = 200) -> Outcome:
    return Outcome(status)


UNAUTHENTICATED = Outcome(401, "not_authenticated")
NOT_FOUND = Outcome(404, "not_found")
FORBIDDEN = Outcome(403, "forbidden")


def table(default: Outcome, **cells: Outcome) -> dict[str, Outcome]:
    """Outcomes for every actor: ``default`` unless named (anonymous: 401 unless named)."""
    assert not set(cells) - set(ACTORS)
    return {
        actor: cells.get(actor, UNAUTHENTICATED if actor == "anonymous" else default)
        for actor in ACTORS
    }


@dataclass
class Ctx:
    http: aiohttp.ClientSession
    api: str
    store: PostgresDatabase
    world: World
    staff: Staff
    users: dict[str, User]
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def inmate(self) -> int:
        return self.world.conv.inmate_id

    def token(self, actor: str) -> str | None:
        return None if actor == "anonymous" else self.world.token(self.users[actor])

    async def fresh_inmate(self) -> int:
        """A new inmate of Gaoming that relative A is verified for."""
        n = next(self.counter)
        inmate = await prisons.add_inmate(
            self.store, self.world.gaoming.id, f"GM-P{n}", f"Inmate {n}"
        )
        link = await links.request_link(
            self.store, self.world.relative.id, inmate.id, "son", "card"
        )
        await links.decide_link(self.store, link, "verified", self.world.officer.id, None)
        return inmate.id

    async def pending_visit(self) -> int:
        inmate = await self.fresh_inmate()
        visit = await visits.request_visit(
            self.store,
            relative_id=self.world.relative.id,
            inmate_id=inmate,
            slot_start=datetime.now(UTC) + timedelta(days=10),
            visitors=1,
            visitor_names=[],
            now=datetime.now(UTC),
            zone=ZoneInfo("Asia/Shanghai"),
        )
        return visit.id


Values = dict[str, Any]


async def _nothing(_: Ctx) -> Values:
    return {}


async def _fresh_inmate(ctx: Ctx) -> Values:
    return {"inmate": await ctx.fresh_inmate()}


async def _pending_visit(ctx: Ctx) -> Values:
    return {"visit": await ctx.pending_visit()}


async def _balance_is_one_deposit(ctx: Ctx) -> None:
    """Only the officer's deposit (of 100 fen) went through; the card started at 500 fen."""
    _, info = await inmate_info.card(ctx.store, ctx.inmate)
    assert info.money.balance_fen == 600


async def _no_check(_: Ctx) -> None:
    return None


async def _one_approved(ctx: Ctx) -> None:
    assert len(await visits.visits(ctx.store, state="approved")) == 1


async def _one_declined(ctx: Ctx) -> None:
    assert len(await visits.visits(ctx.store, state="declined")) == 1


async def _one_cancelled(ctx: Ctx) -> None:
    """Only relative A, who asked, withdrew its request."""
    assert len(await visits.visits(ctx.store, state="cancelled")) == 1


async def _one_requested(ctx: Ctx) -> None:
    found = await visits.visits(ctx.store, relative_id=ctx.world.relative.id)
    assert [v.state for v in found] == ["pending"]


async def _one_fact(ctx: Ctx) -> None:
    page = await messages.messages(ctx.store, ctx.world.conv.id)
    assert [(m.kind, m.sender_id) for m in page] == [("system", ctx.world.officer.id)]


async def _rules_set_twice(ctx: Ctx) -> None:
    """By the officer and by the admin, and by no one else."""
    entries = await audit_trail.audit_entries(ctx.store, action="prison.visit_rules_set")
    assert sorted(e.actor_id or 0 for e in entries) == sorted(
        [ctx.world.officer.id, ctx.users["admin"].id]
    )


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # under /api/v1; {names} filled from ctx and prepare()
    expect: dict[str, Outcome]
    prepare: Callable[[Ctx], Awaitable[Values]] = _nothing
    body: Callable[[Values], Any] | None = None
    after: Callable[[Ctx], Awaitable[None]] = _no_check  # what the row's cells left behind

    @property
    def route(self) -> tuple[str, str]:
        path = self.path.split("?")[0]
        parts = ["{id}" if p.startswith("{") or p.isdigit() else p for p in path.split("/")]
        return self.method, "/".join(parts)


CARD_READERS = table(NOT_FOUND, relative_a=ok(), officer=ok(), supervisor=ok())
CARD_WRITERS = table(NOT_FOUND, relative_a=FORBIDDEN, officer=ok(), supervisor=FORBIDDEN)
STAFF_LIST = table(
    FORBIDDEN, officer=ok(), officer_other=ok(), supervisor=ok(), supervisor_other=ok()
)
VISIT_DECIDERS = table(NOT_FOUND, relative_a=FORBIDDEN, officer=ok(), supervisor=FORBIDDEN)

ROWS: dict[str, Row] = {
    "read card": Row("GET", "/inmates/{inmate}", CARD_READERS),
    "read missing card": Row("GET", "/inmates/999999", table(NOT_FOUND)),
    "list inmates": Row("GET", "/inmates", STAFF_LIST),
    "list inmates of a prison": Row(
        "GET", "/inmates?prison={gaoming}", table(FORBIDDEN, officer=ok(), supervisor=ok())
    ),
    "patch card": Row(
        "PATCH",
        "/inmates/{inmate}",
        CARD_WRITERS,
        body=lambda _: {"movement": {"kind": "deposit", "amount_fen": 100}},
        after=_balance_is_one_deposit,
    ),
    "fact card": Row(
        "POST",
        "/conversations/{conv}/facts",
        table(NOT_FOUND, relative_a=FORBIDDEN, officer=ok(201), supervisor=FORBIDDEN),
        body=lambda _: {"field": "balance"},
        after=_one_fact,
    ),
    "request visit": Row(
        "POST",
        "/visits",
        table(FORBIDDEN, relative_none=NOT_FOUND, relative_a=ok(201), relative_b=NOT_FOUND),
        prepare=_fresh_inmate,  # relative A may have one pending request per inmate
        body=lambda v: {
            "inmate_id": v["inmate"],
            "slot_start": (datetime.now(UTC) + timedelta(days=10)).isoformat(),
            "visitors": 1,
        },
        after=_one_requested,
    ),
    "list visits": Row("GET", "/visits", table(ok(), admin=FORBIDDEN)),
    "approve visit": Row(
        "POST",
        "/visits/{visit}/approve",
        VISIT_DECIDERS,
        prepare=_pending_visit,
        after=_one_approved,
    ),
    "decline visit": Row(
        "POST",
        "/visits/{visit}/decline",
        VISIT_DECIDERS,
        prepare=_pending_visit,
        body=lambda _: {"reason": "no slot"},
        after=_one_declined,
    ),
    "cancel visit": Row(
        "POST",
        "/visits/{visit}/cancel",
        table(NOT_FOUND, relative_a=ok(), officer=FORBIDDEN, supervisor=FORBIDDEN),
        prepare=_pending_visit,  # relative A's
        after=_one_cancelled,
    ),
    "set visit rules": Row(
        "PUT",
        "/prisons/{gaoming}/visit-rules",
        table(FORBIDDEN, officer=ok(), admin=ok()),
        body=lambda _: {"days": [2, 6], "max_visitors": 2},
        after=_rules_set_twice,
    ),
    "set rules of a missing prison": Row(
        "PUT", "/prisons/999999/visit-rules", table(NOT_FOUND), body=lambda _: {}
    ),
}


@pytest.fixture
async def ctx(pg_store: PostgresDatabase, pg_url: str) -> AsyncIterator[Ctx]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    await inmate_info.update_info(
        pg_store,
        world.conv.inmate_id,
        InfoPatch(movement=MovementIn("deposit", 500)),
        world.officer.id,
        datetime.now(UTC),
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
    settings = Settings(database_url=pg_url, port=free_port(), secret="information")
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Ctx(http, served.http_url + "/api/v1", pg_store, world, staff, users)


async def cell(ctx: Ctx, row: Row, actor: str) -> Outcome:
    values = {
        "inmate": ctx.inmate,
        "conv": ctx.world.conv.id,
        "gaoming": ctx.world.gaoming.id,
        **await row.prepare(ctx),
    }
    token = ctx.token(actor)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload = row.body(values) if row.body else None
    async with ctx.http.request(
        row.method, ctx.api + row.path.format(**values), json=payload, headers=headers
    ) as response:
        if response.status >= 400:
            return Outcome(response.status, (await response.json())["error"]["code"])
        return Outcome(response.status)


@pytest.mark.parametrize("name", list(ROWS))
async def test_information_matrix(ctx: Ctx, name: str) -> None:
    row = ROWS[name]
    got = {actor: await cell(ctx, row, actor) for actor in ACTORS}
    assert got == row.expect
    await row.after(ctx)


def test_every_route_of_the_area_has_a_row() -> None:
    routes = {(r.method, r.path) for r in (*inmates_api.ROUTES, *visits_api.ROUTES)}
    assert routes == {row.route for row in ROWS.values()}


def test_the_table_names_every_actor_in_every_row() -> None:
    for row in ROWS.values():
        assert tuple(row.expect) == ACTORS
