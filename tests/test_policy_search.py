"""Who finds what by search (GET /search): every actor against every scope, over real HTTP to
an in-process server on PostgreSQL, and the same rules straight on ``server/policy.py``.

Four messages contain the query: a relative's question in conversation A (relative A,
Gaoming), an officer's note in A, relative B's question in B (Gaoming), and a question in C
(Sanshui). A cell's outcome is the labels of the hits, newest first, or the denial."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from domain.records import NewMessage, User
from server import sessions
from server.config import Settings
from server.policy import Denied, NotSignedIn, Principal, SearchScope, search_scope
from storage import accounts, conversations, links, prisons
from storage.postgres import PostgresDatabase
from tests.servers import free_port, inprocess
from tests.world import World, seed, seed_staff

ACTORS = (
    "anonymous",
    "relative_none",  # no verified link
    "relative_a",  # verified for inmate A (Gaoming)
    "relative_b",  # verified for inmate B (Gaoming)
    "relative_c",  # verified for inmate C (Sanshui)
    "officer",  # of Gaoming
    "officer_other",  # of Sanshui
    "supervisor",  # of Gaoming
    "supervisor_other",  # of Sanshui
    "admin",
)

Outcome = tuple[str, ...] | tuple[int, str]
NOT_SIGNED_IN: Outcome = (401, "not_authenticated")
FORBIDDEN: Outcome = (403, "forbidden")
GAOMING: Outcome = ("B", "note", "A")  # newest first
NOTHING: Outcome = ()


def row(**cells: Outcome) -> dict[str, Outcome]:
    assert set(cells) | {"anonymous"} == set(ACTORS), set(ACTORS) ^ set(cells)
    return {actor: cells.get(actor, NOT_SIGNED_IN) for actor in ACTORS}


MATRIX: dict[str, dict[str, Outcome]] = {
    "/search?q=身体": row(
        relative_none=NOTHING,
        relative_a=("A",),  # its own conversation, never the note
        relative_b=("B",),
        relative_c=("C",),
        officer=GAOMING,
        officer_other=("C",),
        supervisor=GAOMING,
        supervisor_other=("C",),
        admin=("C", *GAOMING),
    ),
    "/search?q=身体&prison={gm}": row(
        relative_none=NOTHING,
        relative_a=("A",),
        relative_b=("B",),
        relative_c=NOTHING,
        officer=GAOMING,
        officer_other=FORBIDDEN,
        supervisor=GAOMING,
        supervisor_other=FORBIDDEN,
        admin=GAOMING,
    ),
    "/search?q=身体&prison={ss}": row(
        relative_none=NOTHING,
        relative_a=NOTHING,
        relative_b=NOTHING,
        relative_c=("C",),
        officer=FORBIDDEN,
        officer_other=("C",),
        supervisor=FORBIDDEN,
        supervisor_other=("C",),
        admin=("C",),
    ),
}


@dataclass
class Ctx:
    api: str
    http: aiohttp.ClientSession
    world: World
    users: dict[str, User]
    labels: dict[int, str]  # message id -> label

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
        return tuple(self.labels[hit["id"]] for hit in body["items"])


@pytest.fixture
async def ctx(pg_store: PostgresDatabase, pg_url: str) -> AsyncIterator[Ctx]:
    w = await seed(pg_store)
    staff = await seed_staff(pg_store, w)
    inmate = await prisons.add_inmate(pg_store, w.sanshui.id, "SS-001", "Zhou Qiang")
    relative_c = await accounts.add_user(pg_store, "relative", "13800000009", "Zhou Ling", "x")
    link = await links.request_link(pg_store, relative_c.id, inmate.id, "sister", "card")
    await links.decide_link(pg_store, link, "verified", w.other_officer.id, None)
    w.tokens[relative_c.login] = await sessions.issue(pg_store, relative_c, days=1)
    conv_c = await conversations.open_conversation(pg_store, relative_c.id, inmate.id)
    labels: dict[int, str] = {}
    for label, conv, who, kind in (
        ("A", w.conv.id, w.relative, "text"),
        ("note", w.conv.id, w.officer, "note"),
        ("B", w.conv_b.id, w.relative_b, "text"),
        ("C", conv_c.id, relative_c, "text"),
    ):
        [stored] = await pg_store.append_messages(
            [NewMessage(conv, who.id, who.role, label, f"{label}: 身体怎么样", kind)]  # type: ignore[arg-type]
        )
        assert stored is not None
        labels[stored.message.id] = label
    users = {
        "relative_none": w.stranger,
        "relative_a": w.relative,
        "relative_b": w.relative_b,
        "relative_c": relative_c,
        "officer": w.officer,
        "officer_other": w.other_officer,
        "supervisor": w.supervisor,
        "supervisor_other": staff.other_supervisor,
        "admin": staff.admin,
    }
    settings = Settings(database_url=pg_url, port=free_port(), secret="search-policy")
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Ctx(served.http_url + "/api/v1", http, w, users, labels)


@pytest.mark.parametrize("path", list(MATRIX))
async def test_search_matrix_over_http(ctx: Ctx, path: str) -> None:
    got = {actor: await ctx.outcome(path, actor) for actor in ACTORS}
    assert got == MATRIX[path]


ROUTES = {("GET", "/search")}  # covered here (tests/test_policy_matrix.py reads this)


# the same rules, straight on the policy


def principal(
    role: str, prisons: tuple[int, ...] = (), verified: frozenset[int] = frozenset()
) -> Principal:
    return Principal(User(7, role, "x", "X", prisons), verified_inmates=verified)  # type: ignore[arg-type]


def decide(who: Principal | None, prison: int | None) -> SearchScope | int | str:
    try:
        return search_scope(who, prison)
    except NotSignedIn:
        return 401
    except Denied as denied:
        return denied.code


def test_search_scope_by_role_and_prison() -> None:
    officer, supervisor = principal("officer", (1,)), principal("supervisor", (1, 2))
    relative, admin = principal("relative", verified=frozenset({5, 3})), principal("admin")
    cases: list[tuple[Principal | None, int | None, SearchScope | int | str]] = [
        (None, None, 401),
        (None, 1, 401),
        (relative, None, SearchScope(None, relative_id=7, inmate_ids=(3, 5))),
        (relative, 9, SearchScope((9,), relative_id=7, inmate_ids=(3, 5))),  # narrows only
        (principal("relative"), None, SearchScope(None, relative_id=7, inmate_ids=())),
        (officer, None, SearchScope((1,), include_notes=True)),
        (officer, 1, SearchScope((1,), include_notes=True)),
        (officer, 2, "forbidden"),
        (supervisor, None, SearchScope((1, 2), include_notes=True, audited=True)),
        (supervisor, 2, SearchScope((2,), include_notes=True, audited=True)),
        (supervisor, 3, "forbidden"),
        (principal("supervisor"), None, SearchScope((), include_notes=True, audited=True)),
        (admin, None, SearchScope(None, include_notes=True, audited=True)),  # every prison
        (admin, 4, SearchScope((4,), include_notes=True, audited=True)),
    ]
    for who, prison, expected in cases:
        assert decide(who, prison) == expected, (who, prison)
