"""The authorization matrix of the duty desk: every desk endpoint against every actor.

Same actors, fixture and shapes as ``tests/test_policy_matrix.py`` (relatives of this inmate,
of another inmate and of none, the officer of the prison and of another prison, a supervisor
of each, the admin, nobody signed in), over real HTTP to an in-process server on PostgreSQL.
Each cell gets fresh objects (a thread about a fresh inmate of Gaoming that relative A is
verified for, in the state the action needs), so an allowed action never changes the next
cell's answer. A thread or a canned reply one may not see is answered 404, never 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from domain.records import ConversationState, NewMessage
from server import sessions
from server.api import desk as desk_api
from storage import accounts, conversations, desk, links
from storage.sql import utcnow
from tests.test_policy_matrix import ACTORS, FORBIDDEN, NOT_FOUND, Ctx, Outcome, ok, table
from tests.test_policy_matrix import ctx as matrix_ctx  # noqa: F401 (the shared fixture)

Values = dict[str, Any]
Prepare = Callable[[Ctx, str], Awaitable[Values]]


@dataclass(frozen=True)
class DeskRow:
    method: str
    path: str  # under /api/v1; {names} are filled from prepare()
    expect: dict[str, Outcome]
    prepare: Prepare | None = None
    body: Callable[[int, Values], dict[str, Any]] | None = None  # (unique n, prepared values)

    @property
    def route(self) -> tuple[str, str]:
        path = "/".join(
            "{id}" if p.startswith("{") else p for p in self.path.split("?")[0].split("/")
        )
        return self.method, path


async def thread_in(ctx: Ctx, state: ConversationState) -> Values:
    """A fresh thread of relative A about a fresh inmate of Gaoming, in ``state``; held by the
    Gaoming officer when active. That officer is on duty (an officer off duty works no thread:
    409 ``off_duty``, after the policy's answer)."""
    w = ctx.world
    await desk.change_duty(ctx.store, w.officer.id, [w.gaoming.id], True, utcnow())
    inmate = await ctx.fresh_inmate()
    link = await links.request_link(ctx.store, w.relative.id, inmate, "father", "card")
    await links.decide_link(ctx.store, link, "verified", w.officer.id, None)
    conv = await conversations.open_conversation(ctx.store, w.relative.id, inmate)
    if state != "new":
        await ctx.store.append_messages(
            [NewMessage(conv.id, w.relative.id, "relative", "q", "question", "text", "A")]
        )
    if state in ("active", "resolved"):
        await desk.claim(ctx.store, conv.id, w.officer.id, utcnow())
    if state == "resolved":
        await desk.resolve(ctx.store, conv.id, w.officer.id, utcnow())
    return {"conv": conv.id, "inmate": inmate}


def in_state(state: ConversationState) -> Prepare:
    async def prepare(ctx: Ctx, _: str) -> Values:
        return await thread_in(ctx, state)

    return prepare


async def _inmate(ctx: Ctx, _: str) -> Values:
    """A fresh inmate of Gaoming that relative A is verified for (and nobody else)."""
    inmate = await ctx.fresh_inmate()
    link = await links.request_link(ctx.store, ctx.world.relative.id, inmate, "father", "card")
    await links.decide_link(ctx.store, link, "verified", ctx.world.officer.id, None)
    return {"inmate": inmate}


async def _handover(ctx: Ctx, actor: str) -> Values:
    values = await thread_in(ctx, "active")
    n = next(ctx.counter)
    colleague = await accounts.add_user(
        ctx.store, "officer", f"colleague.{n}", "Colleague", "x", [ctx.world.gaoming.id]
    )
    await sessions.issue(ctx.store, colleague, days=1)
    await desk.change_duty(ctx.store, colleague.id, [ctx.world.gaoming.id], True, utcnow())
    return {**values, "colleague": colleague.id}


async def _canned(ctx: Ctx, _: str) -> Values:
    n = next(ctx.counter)
    canned = await desk.add_canned(
        ctx.store, ctx.world.gaoming.id, f"c{n}", "Hello", ctx.world.officer.id, utcnow()
    )
    return {"canned": canned.id, "name": canned.short_name}


async def _thread_with_canned(ctx: Ctx, actor: str) -> Values:
    return {**await thread_in(ctx, "waiting"), **await _canned(ctx, actor)}


# who may do what, the usual shapes
THREAD_READERS = table(NOT_FOUND, relative_a=ok(), officer=ok(), supervisor=ok())
OFFICER_WORKS = table(NOT_FOUND, relative_a=FORBIDDEN, officer=ok(), supervisor=FORBIDDEN)
# the admin unsticks a thread of any prison (held by an officer who left), without reading it
UNSTICKERS = table(NOT_FOUND, relative_a=FORBIDDEN, officer=ok(), supervisor=FORBIDDEN, admin=ok())
LISTERS = table(ok())
OWN_PRISON_LISTERS = table(ok(), officer_other=FORBIDDEN, supervisor_other=FORBIDDEN)
STAFF_ONLY = table(
    FORBIDDEN, officer=ok(), officer_other=ok(), supervisor=ok(), supervisor_other=ok()
)
CANNED_CHANGE = table(FORBIDDEN, officer=ok(), officer_other=NOT_FOUND, supervisor_other=NOT_FOUND)

DESK_ROWS: dict[str, DeskRow] = {
    "read duty": DeskRow("GET", "/duty", table(ok())),
    "set duty": DeskRow(
        "PUT",
        "/duty",
        table(FORBIDDEN, officer=ok(), officer_other=ok()),
        body=lambda n, _: {"on_duty": n % 2 == 0},
    ),
    "list conversations": DeskRow("GET", "/conversations", LISTERS),
    "list conversations, filtered and paged": DeskRow(
        "GET", "/conversations?state=all&inmate=GM&relative=Chen&since=2026-01-01&limit=1", LISTERS
    ),
    "list a prison's queue": DeskRow(
        "GET", "/conversations?prison={prison}", OWN_PRISON_LISTERS, prepare=None
    ),
    "open conversation": DeskRow(
        "POST",
        "/conversations",
        table(FORBIDDEN, relative_a=ok(201), relative_b=NOT_FOUND, relative_none=NOT_FOUND),
        prepare=_inmate,
        body=lambda _, v: {"inmate_id": v["inmate"]},
    ),
    "read conversation": DeskRow(
        "GET", "/conversations/{conv}", THREAD_READERS, prepare=in_state("waiting")
    ),
    "read missing conversation": DeskRow("GET", "/conversations/999999", table(NOT_FOUND)),
    "read history": DeskRow(
        "GET", "/conversations/{conv}/messages", THREAD_READERS, prepare=in_state("waiting")
    ),
    "send over REST": DeskRow(
        "POST",
        "/conversations/{conv}/messages",
        table(NOT_FOUND, relative_a=ok(201), officer=ok(201), supervisor=FORBIDDEN),
        prepare=in_state("waiting"),
        body=lambda n, _: {"body": f"hello {n}"},
    ),
    "send a note over REST": DeskRow(
        "POST",
        "/conversations/{conv}/messages",
        table(NOT_FOUND, relative_a=FORBIDDEN, officer=ok(201), supervisor=FORBIDDEN),
        prepare=in_state("waiting"),
        body=lambda n, _: {"body": f"note {n}", "kind": "note"},
    ),
    "send a canned reply": DeskRow(
        "POST",
        "/conversations/{conv}/messages",
        table(NOT_FOUND, relative_a=FORBIDDEN, officer=ok(201), supervisor=FORBIDDEN),
        prepare=_thread_with_canned,
        body=lambda _, v: {"canned": v["name"]},
    ),
    "claim": DeskRow(
        "POST", "/conversations/{conv}/claim", OFFICER_WORKS, prepare=in_state("waiting")
    ),
    "transfer": DeskRow(
        "POST",
        "/conversations/{conv}/transfer",
        UNSTICKERS,
        prepare=_handover,
        body=lambda _, v: {"officer_id": v["colleague"], "note": "over to you"},
    ),
    "resolve": DeskRow(
        "POST", "/conversations/{conv}/resolve", UNSTICKERS, prepare=in_state("active")
    ),
    "release to the queue": DeskRow(
        "POST", "/conversations/{conv}/release", UNSTICKERS, prepare=in_state("active")
    ),
    "rate": DeskRow(
        "POST",
        "/conversations/{conv}/rate",
        table(NOT_FOUND, relative_a=ok(), officer=FORBIDDEN, supervisor=FORBIDDEN),
        prepare=in_state("resolved"),
        body=lambda _, __: {"rating": 4, "comment": "thanks"},
    ),
    "list canned replies": DeskRow("GET", "/canned", STAFF_ONLY),
    "add a canned reply": DeskRow(
        "POST",
        "/canned",
        table(FORBIDDEN, officer=ok(201), officer_other=ok(201)),
        body=lambda n, _: {"short_name": f"new{n}", "body": "Hello"},
    ),
    "change a canned reply": DeskRow(
        "PUT",
        "/canned/{canned}",
        CANNED_CHANGE,
        prepare=_canned,
        body=lambda n, _: {"short_name": f"renamed{n}", "body": "Hi"},
    ),
    "delete a canned reply": DeskRow(
        "DELETE",
        "/canned/{canned}",
        table(FORBIDDEN, officer=ok(204), officer_other=NOT_FOUND, supervisor_other=NOT_FOUND),
        prepare=_canned,
    ),
}


async def desk_cell(ctx: Ctx, row: DeskRow, actor: str) -> Outcome:
    values: Values = {"prison": ctx.world.gaoming.id}
    if row.prepare is not None:
        values.update(await row.prepare(ctx, actor))
    token = ctx.token(actor)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    n = next(ctx.counter)
    payload = row.body(n, values) if row.body else ({} if row.method == "POST" else None)
    async with ctx.http.request(
        row.method, ctx.api + row.path.format(**values), json=payload, headers=headers
    ) as response:
        if response.status >= 400:
            error = (await response.json())["error"]
            return Outcome(response.status, error["code"])
        return Outcome(response.status)


@pytest.mark.parametrize("name", list(DESK_ROWS))
async def test_desk_matrix(matrix_ctx: Ctx, name: str) -> None:  # noqa: F811 (fixture)
    row = DESK_ROWS[name]
    got = {actor: await desk_cell(matrix_ctx, row, actor) for actor in ACTORS}
    assert got == row.expect


def test_every_desk_route_has_a_row() -> None:
    """A new desk endpoint without a row here fails."""
    routes = {(route.method, route.path) for route in desk_api.ROUTES}
    assert routes - {row.route for row in DESK_ROWS.values()} == set()


def test_the_table_names_every_actor_in_every_row() -> None:
    for row in DESK_ROWS.values():
        assert tuple(row.expect) == ACTORS
