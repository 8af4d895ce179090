"""The authorization matrix of complaints, announcements, the public prison page and
supervisors' profiles: every route x every actor, over real HTTP to an in-process server on
PostgreSQL (the harness of ``tests/test_policy_matrix.py``). Each cell gets fresh objects, so
one actor's allowed action never changes the next actor's answer.

Complaints are filed by relative A about Gaoming (or by Gaoming's officer on behalf of inmate
A). Officers see none of them, not even one they filed; the prison's supervisors move them;
once escalated, the admin does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from storage import complaints
from storage.complaints import NewComplaint
from tests.test_policy_matrix import (
    ACTORS,
    FORBIDDEN,
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


async def _complaint(c: Ctx, *, by_officer: bool = False, escalated: bool = False) -> int:
    w = c.world
    new = NewComplaint(
        prison_id=w.gaoming.id,
        complainant_id=w.officer.id if by_officer else w.relative.id,
        inmate_id=w.conv.inmate_id,
        category="visits",
        body="cancelled",
    )
    filed = await complaints.file_complaint(
        c.store, new, now=NOW, zone=ZoneInfo("Asia/Shanghai"), days=15
    )
    if escalated:
        await complaints.transition(
            c.store, filed.id, "escalated", actor_id=w.supervisor.id, message="up", now=NOW
        )
    return filed.id


async def _by_relative(c: Ctx, _: str) -> dict[str, Any]:
    return {"complaint": await _complaint(c)}


async def _by_officer(c: Ctx, _: str) -> dict[str, Any]:
    return {"complaint": await _complaint(c, by_officer=True)}


async def _escalated(c: Ctx, _: str) -> dict[str, Any]:
    return {"complaint": await _complaint(c, escalated=True)}


def _ids(c: Ctx) -> dict[str, Any]:
    return {"gm": c.world.gaoming.id, "ss": c.world.sanshui.id, "sup": c.world.supervisor.id}


async def _prisons(c: Ctx, _: str) -> dict[str, Any]:
    return _ids(c)


# who may do what
EVERYONE = table(ok(), anonymous=ok())
COMPLAINT_READERS = table(NOT_FOUND, relative_a=ok(), supervisor=ok(), admin=ok())
COMPLAINT_MOVERS = table(
    NOT_FOUND, relative_a=FORBIDDEN, supervisor=ok(), admin=FORBIDDEN
)  # the prison's supervisors
ESCALATED_MOVERS = table(NOT_FOUND, relative_a=FORBIDDEN, supervisor=FORBIDDEN, admin=ok())
OFFICER_FILED = table(NOT_FOUND, supervisor=ok(), admin=ok())  # not even the filing officer
BAD_REQUEST = Outcome(400, "invalid_request")


def _complaint_body(inmate: bool) -> Any:
    def body(_: int) -> dict[str, Any]:
        # the prison and inmate ids are those seeded first (Gaoming = 1, inmate A = 1)
        return {"prison_id": 1, "category": "visits", "body": "cancelled"} | (
            {"inmate_id": 1} if inmate else {}
        )

    return body


def _announcement(prison: int | None) -> Any:
    def body(_: int) -> dict[str, Any]:
        return {"title": "Open day", "body": "Welcome"} | ({"prison_id": prison} if prison else {})

    return body


ROWS: dict[str, HttpRow] = {
    # complaints
    "file complaint": HttpRow(
        "POST",
        "/complaints",
        table(
            FORBIDDEN,
            relative_a=ok(201),
            relative_b=ok(201),  # verified for an inmate of Gaoming too
            officer=BAD_REQUEST,  # an officer names the inmate
            officer_other=BAD_REQUEST,
        ),
        body=_complaint_body(inmate=False),
    ),
    "file complaint for inmate A": HttpRow(
        "POST",
        "/complaints",
        table(
            FORBIDDEN,
            relative_a=ok(201),
            relative_b=NOT_FOUND,  # not its inmate
            officer=ok(201),  # on the inmate's behalf
        ),
        body=_complaint_body(inmate=True),
    ),
    "list complaints": HttpRow(
        "GET",
        "/complaints",
        table(ok(), officer=FORBIDDEN, officer_other=FORBIDDEN),
    ),
    "read complaint": HttpRow(
        "GET", "/complaints/{complaint}", COMPLAINT_READERS, prepare=_by_relative
    ),
    "read officer-filed complaint": HttpRow(
        "GET", "/complaints/{complaint}", OFFICER_FILED, prepare=_by_officer
    ),
    "read missing complaint": HttpRow("GET", "/complaints/999999", table(NOT_FOUND)),
    "transition complaint": HttpRow(
        "POST",
        "/complaints/{complaint}/transition",
        COMPLAINT_MOVERS,
        prepare=_by_relative,
        body=lambda _: {"state": "in_review", "message": "looking"},
    ),
    "answer complaint": HttpRow(
        "POST",
        "/complaints/{complaint}/answer",
        COMPLAINT_MOVERS,
        prepare=_by_relative,
        body=lambda _: {"message": "answered"},
    ),
    "escalate complaint": HttpRow(
        "POST",
        "/complaints/{complaint}/transition",
        COMPLAINT_MOVERS,
        prepare=_by_relative,
        body=lambda _: {"state": "escalated", "message": "to the bureau"},
    ),
    "transition escalated complaint": HttpRow(
        "POST",
        "/complaints/{complaint}/transition",
        ESCALATED_MOVERS,
        prepare=_escalated,
        body=lambda _: {"state": "in_review", "message": "the bureau looks"},
    ),
    "answer escalated complaint": HttpRow(
        "POST",
        "/complaints/{complaint}/answer",
        ESCALATED_MOVERS,
        prepare=_escalated,
        body=lambda _: {"message": "the bureau answers"},
    ),
    "answer officer-filed complaint": HttpRow(
        "POST",
        "/complaints/{complaint}/answer",
        table(NOT_FOUND, supervisor=ok(), admin=FORBIDDEN),
        prepare=_by_officer,
        body=lambda _: {"message": "answered"},
    ),
    # announcements
    "post bureau-wide announcement": HttpRow(
        "POST", "/announcements", table(FORBIDDEN, admin=ok(201)), body=_announcement(None)
    ),
    "post announcement for Gaoming": HttpRow(
        "POST",
        "/announcements",
        table(FORBIDDEN, officer=ok(201), admin=ok(201)),  # Gaoming's officer: its own
        body=_announcement(1),
    ),
    "post announcement for Sanshui": HttpRow(
        "POST",
        "/announcements",
        table(FORBIDDEN, officer_other=ok(201), admin=ok(201)),  # another prison: refused
        body=_announcement(2),
    ),
    "list announcements": HttpRow("GET", "/announcements", EVERYONE),
    # the public page and supervisors' profiles
    "list prisons": HttpRow("GET", "/prisons", EVERYONE),
    "prison page": HttpRow("GET", "/prisons/{gm}", EVERYONE, prepare=_prisons),
    "set supervisor profile": HttpRow(
        "PUT",
        "/supervisors/{sup}/profile",
        table(FORBIDDEN, admin=ok()),
        prepare=_prisons,
        body=lambda _: {"title": "CPPCC member"},
    ),
}


@pytest.mark.parametrize("name", list(ROWS))
async def test_complaints_and_announcements_matrix(ctx: Ctx, name: str) -> None:  # noqa: F811
    assert (ctx.world.gaoming.id, ctx.world.sanshui.id, ctx.world.conv.inmate_id) == (1, 2, 1)
    row = ROWS[name]
    got = {actor: await http_cell(ctx, row, actor) for actor in ACTORS}
    assert got == row.expect


def test_every_route_of_the_area_has_a_row() -> None:
    from server.api import announcements, complaints, prisons
    from tests import test_policy_contest  # issue 15: escalation by the complainant

    routes = {
        (r.method, r.full_path)
        for r in [*complaints.ROUTES, *announcements.ROUTES, *prisons.ROUTES]
    }
    covered = {(row.method, row.route) for row in ROWS.values()}
    covered |= {(row.method, row.route) for row in test_policy_contest.ROWS.values()}
    assert routes - covered == set()


def test_the_table_names_every_actor_in_every_row() -> None:
    for row in ROWS.values():
        assert tuple(row.expect) == ACTORS
