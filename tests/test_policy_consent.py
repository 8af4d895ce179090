"""Who records and reads an inmate's consent and family case: every actor against every route
of the area over real HTTP to an in-process server on PostgreSQL, and the same rules (with
the consent filters and the family case's reading floor) straight on ``server/policy.py``.

An officer of the inmate's prison records; its staff read every scope, a verified relative its
own; anyone who may not see the inmate is answered 404 (ids cannot be probed), a visible
inmate with an action one's role may not take 403.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from domain.records import CONSENT_CATEGORIES, Conversation, Inmate, User
from server import policy
from server.api import consent as consent_api
from server.config import Settings
from server.policy import Denied, NotSignedIn, Person, Principal
from storage import audit_trail, links, prisons
from storage.postgres import PostgresDatabase
from tests.servers import free_port, inprocess
from tests.world import Staff, World, seed, seed_staff

ACTORS = (
    "anonymous",
    "relative_none",  # no verified link
    "relative_a",  # verified for the row's inmate (of Gaoming)
    "relative_b",  # verified for inmate B (Gaoming)
    "officer",  # of Gaoming
    "officer_other",  # of Sanshui
    "supervisor",  # of Gaoming
    "supervisor_other",  # of Sanshui
    "admin",
)
Outcome = int | tuple[int, str]
U: Outcome = (401, "not_authenticated")
N: Outcome = (404, "not_found")
F: Outcome = (403, "forbidden")


def table(default: Outcome, **cells: Outcome) -> dict[str, Outcome]:
    return {a: cells.get(a, U if a == "anonymous" else default) for a in ACTORS}


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # as described in the OpenAPI paths, under /api/v1
    expect: dict[str, Outcome]
    body: Callable[[dict[str, int]], Any] | None = None


ROWS: dict[str, Row] = {
    "read consent": Row(
        "GET",
        "/inmates/{id}/consent",
        table(N, relative_a=200, officer=200, supervisor=200),
    ),
    "record consent": Row(
        "PUT",
        "/inmates/{id}/consent",
        table(N, relative_a=F, officer=200, supervisor=F),
        body=lambda v: {"relative_id": v["relative"], "categories": ["money"], "witness": "Wu"},
    ),
    "record a family case": Row(
        "PUT",
        "/inmates/{id}/family-case",
        table(N, relative_a=F, officer=200, supervisor=F),
        body=lambda _: {"enabled": True},
    ),
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

    async def fresh_inmate(self) -> int:
        """A new inmate of Gaoming that relative A is verified for: each cell its own."""
        n = next(self.counter)
        inmate = await prisons.add_inmate(
            self.store, self.world.gaoming.id, f"GM-C{n}", f"Inmate {n}"
        )
        link = await links.request_link(
            self.store, self.world.relative.id, inmate.id, "son", "card"
        )
        await links.decide_link(self.store, link, "verified", self.world.officer.id, None)
        return inmate.id


@pytest.fixture
async def ctx(pg_store: PostgresDatabase, pg_url: str) -> AsyncIterator[Ctx]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
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
    settings = Settings(database_url=pg_url, port=free_port(), secret="consent")
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Ctx(http, served.http_url + "/api/v1", pg_store, world, staff, users)


async def cell(ctx: Ctx, row: Row, actor: str) -> Outcome:
    inmate = await ctx.fresh_inmate()
    values = {"inmate": inmate, "relative": ctx.world.relative.id}
    headers = {}
    if actor != "anonymous":
        headers["Authorization"] = f"Bearer {ctx.world.token(ctx.users[actor])}"
    payload = row.body(values) if row.body else None
    path = row.route.replace("{id}", str(inmate))
    async with ctx.http.request(
        row.method, ctx.api + path, json=payload, headers=headers
    ) as response:
        if response.status >= 400:
            return (response.status, (await response.json())["error"]["code"])
        return response.status


@pytest.mark.parametrize("name", list(ROWS))
async def test_consent_matrix_over_http(ctx: Ctx, name: str) -> None:
    row = ROWS[name]
    got = {actor: await cell(ctx, row, actor) for actor in ACTORS}
    assert got == row.expect
    if row.method == "PUT":  # only the allowed cell changed anything, audited
        action = "consent.recorded" if "consent" in row.route else "inmate.family_case_set"
        entries = await audit_trail.audit_entries(ctx.store, action=action)
        assert [e.actor_id for e in entries] == [ctx.world.officer.id]


async def test_a_missing_inmate_is_not_found(ctx: Ctx) -> None:
    headers = {"Authorization": f"Bearer {ctx.world.token(ctx.world.officer)}"}
    async with ctx.http.get(ctx.api + "/inmates/999999/consent", headers=headers) as response:
        assert response.status == 404


def test_every_route_of_the_area_has_a_row() -> None:
    routes = {(r.method, r.path) for r in consent_api.ROUTES}
    assert routes == {(row.method, row.route) for row in ROWS.values()}


# -- the same rules, straight on the policy ------------------------------------------------------

GM, SS = 1, 2
A, B = 70, 71  # inmates of Gaoming
AT = datetime(2026, 5, 1, tzinfo=UTC)
INMATE_A = Inmate(A, GM, "GM-1", "Inmate A")
# relative 101's own thread about A, which is the shared thread of A's family case
SHARED = Conversation(7, GM, A, 101, "waiting", None, 9, AT)


def _user(id: int, role: Any, *prisons_: int) -> User:
    return User(id, role, f"login{id}", f"Name {id}", prisons_)


PRINCIPALS: dict[str, Principal | None] = {
    "anonymous": None,
    "relative_none": Principal(_user(100, "relative")),
    "relative_a": Principal(_user(101, "relative"), frozenset({A}), frozenset({GM})),
    "relative_b": Principal(_user(102, "relative"), frozenset({B}), frozenset({GM})),
    "officer": Principal(_user(10, "officer", GM)),
    "officer_other": Principal(_user(11, "officer", SS)),
    "supervisor": Principal(_user(20, "supervisor", GM)),
    "supervisor_other": Principal(_user(21, "supervisor", SS)),
    "admin": Principal(_user(30, "admin")),
}
MEMBER = Principal(_user(103, "relative"), frozenset({A}), frozenset({GM}), ((7, 4),))
MEMBER_REVOKED = Principal(_user(103, "relative"), frozenset(), frozenset(), ())
MEMBER_CASE_OFF = Principal(_user(103, "relative"), frozenset({A}), frozenset({GM}), ())
OK = "ok"


def decide(call: Callable[[], Any]) -> Any:
    try:
        result = call()
    except NotSignedIn:
        return 401
    except Denied as denied:
        return denied.code
    return OK if isinstance(result, Inmate) else result


def row(**cells: Any) -> dict[str, Any]:
    defaults = {a: "not_found" for a in PRINCIPALS} | {"anonymous": 401}
    return defaults | cells


RULES: dict[str, tuple[Callable[[Principal | None], Any], dict[str, Any]]] = {
    "check_consent read": (
        lambda w: policy.check_consent(w, INMATE_A, "read"),
        row(relative_a=OK, officer=OK, supervisor=OK),
    ),
    "check_consent record": (
        lambda w: policy.check_consent(w, INMATE_A, "record"),
        row(relative_a="forbidden", officer=OK, supervisor="forbidden"),
    ),
    "check_consent family_case": (
        lambda w: policy.check_consent(w, INMATE_A, "family_case"),
        row(relative_a="forbidden", officer=OK, supervisor="forbidden"),
    ),
    "check_consent of a missing inmate": (
        lambda w: policy.check_consent(w, None, "read"),
        row(),
    ),
    "consent_reader": (
        lambda w: policy.consent_reader(policy.signed_in(w)),
        row(
            relative_none=100,
            relative_a=101,
            relative_b=102,
            officer=None,
            officer_other=None,
            supervisor=None,
            supervisor_other=None,
            admin=None,
        ),
    ),
    "card_parts_shown with money and work shared": (
        lambda w: policy.card_parts_shown(policy.signed_in(w), {"money", "work"}),
        {
            a: 401
            if a == "anonymous"
            else frozenset({"money", "work"})
            if a.startswith("relative")
            else frozenset(CONSENT_CATEGORIES)
            for a in PRINCIPALS
        },
    ),
    "history_floor of the shared thread": (
        lambda w: policy.history_floor(policy.signed_in(w), SHARED),
        {a: 401 if a == "anonymous" else 0 for a in PRINCIPALS},
    ),
}


@pytest.mark.parametrize("name", list(RULES))
def test_the_policy_decides(name: str) -> None:
    check, expected = RULES[name]
    assert {a: decide(lambda: check(w)) for a, w in PRINCIPALS.items()} == expected  # noqa: B023


def test_a_family_member_reads_the_shared_thread_from_its_join_only_while_verified() -> None:
    assert policy.sees_conversation(MEMBER, SHARED)
    assert policy.relative_sees(103, {A}, SHARED, ((7, 4),))
    assert policy.history_floor(MEMBER, SHARED) == 4
    # a file sent before it joined is as unreadable to it as that message; one after, readable
    before = policy.AttachmentFacts(101, conversation=SHARED, message_kind="text", message_seq=4)
    after = policy.AttachmentFacts(101, conversation=SHARED, message_kind="text", message_seq=5)
    assert not policy.sees_attachment(MEMBER, before)
    assert policy.sees_attachment(MEMBER, after)
    assert policy.sees_attachment(policy.signed_in(PRINCIPALS["relative_a"]), before)
    assert not policy.sees_conversation(MEMBER_REVOKED, SHARED)  # its link ended
    assert not policy.sees_conversation(MEMBER_CASE_OFF, SHARED)  # the case was turned off
    assert not policy.relative_sees(103, {A}, SHARED)
    other_thread = Conversation(8, GM, A, 104, "new", None, 0, AT)
    assert not policy.sees_conversation(MEMBER, other_thread)  # a sibling's private thread
    policy.check_conversation(MEMBER, SHARED, "send")  # allowed: does not raise
    # staff's changes of the shared thread reach its other readers (never its own relative
    # twice, who is told as the thread's relative)
    assert policy.family_thread_audience(SHARED, [101, 103, 103]) == (Person(103),)
    assert policy.family_thread_audience(SHARED, []) == ()
    assert policy.consent_audience(101) == (Person(101),)  # a decision: its relative only


def test_scopes_the_default_and_the_fact_cards() -> None:
    assert policy.shared_with(None, ("activity", "money")) == {"activity", "money"}
    assert policy.shared_with((), ("activity", "money")) == frozenset()  # recorded: nothing
    assert policy.shared_with(("health",), ("activity",)) == {"health"}
    shares = {101: frozenset({"money"}), 103: frozenset({"health", "money"})}
    assert policy.card_part_audience([101, 103], "money", shares) == (Person(101), Person(103))
    assert policy.card_part_audience([101, 103], "health", shares) == (Person(103),)
    assert policy.card_part_audience([101, 103], "term", shares) == ()
    policy.check_fact_consent("balance", shares)  # shared with both: allowed
    with pytest.raises(Denied) as refused:
        policy.check_fact_consent("health", shares)
    assert refused.value.code == "consent_withheld"
    assert "health" in refused.value.message
    policy.check_fact_consent("health", {})  # nobody reads the thread now: allowed
    assert set(policy.FACT_CATEGORY.values()) == set(CONSENT_CATEGORIES)
