"""The authorization matrix of refusals you can contest and oversight the family can see
(issue 15): every new route and action x every actor, over real HTTP to an in-process server
on PostgreSQL (the harness of ``tests/test_policy_matrix.py``). Each cell gets fresh objects.

- ``GET /reasons``: anyone.
- ``GET /conversations/{id}/access``: the conversation's relative and its prison's staff;
  nobody else (404, the admin included).
- ``POST /complaints`` about a decision: only the relative it refused (another's is 404),
  even with no verified link left; a decision that refused nothing is 403.
- ``POST /complaints/{id}/escalate``: only the complainant (staff who see it: 403).
- Reason codes on the refusing decisions: an unlisted code is 400 for whoever may decide.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.records import LinkState
from storage import complaints, links
from storage.complaints import NewComplaint
from tests.test_policy_matrix import (
    ACTORS,
    FORBIDDEN,
    LINK_DECIDE,
    NOT_FOUND,
    Ctx,
    HttpRow,
    Outcome,
    ctx,  # noqa: F401 (the fixture)
    http_cell,
    ok,
    table,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EVERYONE = table(ok(), anonymous=ok())
BAD_REQUEST = Outcome(400, "invalid_request")
UNKNOWN_CODE = Outcome(400, "unknown_reason_code")


async def _conversation(c: Ctx, _: str) -> dict[str, Any]:
    return {"conv": c.world.conv.id}


async def _link_of_a(c: Ctx, state: LinkState) -> int:
    """A link of relative A's in ``state``, for a fresh inmate of Gaoming."""
    link = await c.pending_link()
    if state != "pending":
        await links.decide_link(c.store, link, state, c.world.officer.id, "no")
    return link


def _about(kind: str, target: int) -> dict[str, Any]:
    return {"category": "decision", "body": "I contest it", "about": {"kind": kind, "id": target}}


async def _about_rejected(c: Ctx, _: str) -> dict[str, Any]:
    return {"_body": _about("link", await _link_of_a(c, "rejected"))}


async def _about_revoked(c: Ctx, _: str) -> dict[str, Any]:
    return {"_body": _about("link", await _link_of_a(c, "revoked"))}


async def _about_pending(c: Ctx, _: str) -> dict[str, Any]:
    return {"_body": _about("link", await _link_of_a(c, "pending"))}


async def _answered(c: Ctx, _: str) -> dict[str, Any]:
    w = c.world
    new = NewComplaint(
        prison_id=w.gaoming.id, complainant_id=w.relative.id, category="visits", body="late"
    )
    filed = await complaints.file_complaint(
        c.store, new, now=NOW, zone=ZoneInfo("Asia/Shanghai"), days=15
    )
    await complaints.transition(
        c.store, filed.id, "answered", actor_id=w.supervisor.id, message="done", now=NOW
    )
    return {"complaint": filed.id}


async def _pending_link(c: Ctx, _: str) -> dict[str, Any]:
    return {"link": await c.pending_link()}


# an officer files on an inmate's behalf only (400 before the decision is looked at)
CONTESTERS = table(
    FORBIDDEN,
    relative_none=NOT_FOUND,  # relative A's decision, not its own
    relative_a=ok(201),
    relative_b=NOT_FOUND,
    officer=BAD_REQUEST,
    officer_other=BAD_REQUEST,
)

ROWS: dict[str, HttpRow] = {
    "reason codes": HttpRow("GET", "/reasons", EVERYONE),
    "reason codes of one kind": HttpRow("GET", "/reasons?kind=link.revoke", EVERYONE),
    "supervisors' openings": HttpRow(
        "GET",
        "/conversations/{conv}/access",
        table(NOT_FOUND, relative_a=ok(), officer=ok(), supervisor=ok()),
        prepare=_conversation,
    ),
    "openings of a missing conversation": HttpRow(
        "GET", "/conversations/999999/access", table(NOT_FOUND)
    ),
    "complain about a rejected link": HttpRow(
        "POST", "/complaints", CONTESTERS, prepare=_about_rejected
    ),
    "complain about a revoked link": HttpRow(
        "POST", "/complaints", CONTESTERS, prepare=_about_revoked
    ),
    "complain about a pending link": HttpRow(
        "POST",
        "/complaints",
        {**CONTESTERS, "relative_a": FORBIDDEN},  # no refusal to contest
        prepare=_about_pending,
    ),
    "complain about a missing decision": HttpRow(
        "POST",
        "/complaints",
        table(FORBIDDEN, relative_none=NOT_FOUND, relative_a=NOT_FOUND, relative_b=NOT_FOUND)
        | {"officer": BAD_REQUEST, "officer_other": BAD_REQUEST},
        body=lambda _: _about("visit", 999999),
    ),
    "escalate own answered complaint": HttpRow(
        "POST",
        "/complaints/{complaint}/escalate",
        table(NOT_FOUND, relative_a=ok(), supervisor=FORBIDDEN, admin=FORBIDDEN),
        prepare=_answered,
        body=lambda _: {"message": "not settled"},
    ),
    "reject link with an unlisted reason code": HttpRow(
        "POST",
        "/links/{link}/reject",
        {**LINK_DECIDE, "officer": UNKNOWN_CODE},
        prepare=_pending_link,
        body=lambda _: {"reason_code": "because"},
    ),
    "reject link with a listed reason code": HttpRow(
        "POST",
        "/links/{link}/reject",
        LINK_DECIDE,
        prepare=_pending_link,
        body=lambda _: {"reason_code": "evidence_insufficient"},
    ),
}


@pytest.mark.parametrize("name", list(ROWS))
async def test_contest_matrix(ctx: Ctx, name: str) -> None:  # noqa: F811
    row = ROWS[name]
    got = {actor: await http_cell(ctx, row, actor) for actor in ACTORS}
    assert got == row.expect


def test_every_route_of_the_area_has_a_row() -> None:
    from server.api import access, reasons

    routes = {(r.method, r.full_path) for r in [*access.ROUTES, *reasons.ROUTES]}
    covered = {(row.method, row.route) for row in ROWS.values()}
    assert routes - covered == set()
    assert ("POST", "/api/v1/complaints/{id}/escalate") in covered


def test_the_table_names_every_actor_in_every_row() -> None:
    for row in ROWS.values():
        assert tuple(row.expect) == ACTORS
