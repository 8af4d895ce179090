"""Records for a complaint file: a conversation's transcript and a range of the audit trail,
as CSV (a spreadsheet) or as a printable page.

Who may read them is who may read the conversation or the audit trail
(``server.policy.check_thread``, ``audit_scope``); a supervisor's transcript is a look at the
conversation and is audited like one. Every value is written as text: the page escapes it
(nothing a user wrote is ever markup), and a CSV cell that a spreadsheet would take for a
formula (``=``, ``+``, ``-``, ``@``, tab, carriage return first) gets a leading ``'``.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from server import openings
from server.api.base import ApiError, Id, Route, path_id, principal, query
from server.keys import DB, HUB, SETTINGS
from server.policy import (
    audit_scope,
    audits_opening,
    check_thread,
    history_floor,
    shows_staff_side,
    signed_in,
)
from storage import audit_trail, conversations, desk, messages
from storage.audit_trail import TrailQuery
from storage.errors import NotFound
from storage.sql import utcnow

Moment = Annotated[datetime, msgspec.Meta(tz=True)]
Format = Literal["csv", "html"]
PAGE = 500
MAX_ROWS = 20_000  # an audit range longer than this is refused: narrow it


class TranscriptQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: Format = "csv"


class AuditExportQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    since: Moment | None = None  # default: 30 days before until
    until: Moment | None = None  # default: now
    prison: Id | None = None
    format: Format = "csv"


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(name: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> web.Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode(),  # the BOM: spreadsheets read it as UTF-8
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _page(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> web.Response:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    page = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title>"
        '<link rel="stylesheet" href="/static/print.css"></head>'
        f"<body><main><h1>{esc(title)}</h1><p>{esc(f'{utcnow():%Y-%m-%d %H:%M} UTC')}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></main></body></html>"
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8")


def _answer(
    fmt: Format, name: str, title: str, header: Sequence[str], rows: Sequence[Sequence[object]]
) -> web.Response:
    return _csv(name, header, rows) if fmt == "csv" else _page(title, header, rows)


async def transcript(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    db, zone = request.app[DB], request.app[SETTINGS].zone
    wanted = query(request, TranscriptQuery)
    try:
        conv = await conversations.conversation(db, path_id(request))
    except NotFound:
        conv = None
    who = check_thread(who, conv, "read")
    assert conv is not None
    if audits_opening(who):  # a supervisor's look, audited before anything is shown
        thread = await desk.thread(db, conv.id)
        await openings.opened(db, request.app[HUB], who.id, thread, "history", utcnow())
    rows: list[list[object]] = []
    after = 0
    while True:
        page = await messages.messages(
            db,
            conv.id,
            after=after,
            limit=PAGE,
            include_notes=shows_staff_side(who),
            floor=history_floor(who, conv),  # a family case member: from its join on
        )
        rows += [
            [
                m.seq,
                m.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                m.sender_name,
                m.sender_role,
                m.kind,
                m.body,
            ]
            for m in page
        ]
        if len(page) < PAGE:
            break
        after = page[-1].seq
    header = ["seq", "time", "from", "role", "kind", "text"]
    title = f"Conversation {conv.id}"
    return _answer(wanted.format, f"conversation-{conv.id}", title, header, rows)


async def audit_range(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    wanted = query(request, AuditExportQuery)
    scope = audit_scope(who, wanted.prison)
    until = wanted.until or utcnow()
    since = wanted.since or until - timedelta(days=30)
    if until <= since:
        raise ApiError(400, "invalid_request", "until must be after since", field="until")
    db, zone = request.app[DB], request.app[SETTINGS].zone
    found: list[audit_trail.TrailEntry] = []
    before: int | None = None
    while len(found) <= MAX_ROWS:
        page = await audit_trail.entries(
            db,
            TrailQuery(
                prison_ids=scope,
                since=since,
                until=until,
                before_id=before,
                limit=PAGE,
            ),
        )
        found += page
        if len(page) < PAGE:
            break
        before = page[-1].id
    if len(found) > MAX_ROWS:
        raise ApiError(
            400, "too_many_rows", f"more than {MAX_ROWS} entries: narrow the range", field="since"
        )
    rows = [
        [
            e.id,
            e.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            e.actor.name if e.actor else "system",
            e.action,
            e.object_type,
            e.object_id,
            e.prison_id,
            msgspec.json.encode(e.before).decode() if e.before is not None else "",
            msgspec.json.encode(e.after).decode() if e.after is not None else "",
        ]
        for e in reversed(found)  # oldest first, as a file is read
    ]
    header = ["id", "time", "who", "action", "object", "object_id", "prison", "before", "after"]
    span = f"{since:%Y-%m-%d}..{until:%Y-%m-%d}"
    return _answer(wanted.format, f"audit-{span}", f"Audit trail {span}", header, rows)


ROUTES = [
    Route(
        "GET",
        "/conversations/{id}/transcript",
        transcript,
        "A conversation's transcript for a complaint file, as CSV or a printable page"
        " (format=csv|html); a supervisor's is an audited look",
        "whoever reads the conversation",
        query=TranscriptQuery,
        reply=None,
        errors=(400, 401, 403, 404),
    ),
    Route(
        "GET",
        "/audit/export",
        audit_range,
        "A range of the audit trail (since, until: default the last 30 days; prison) as CSV"
        " or a printable page",
        "supervisor (its prisons), admin",
        query=AuditExportQuery,
        reply=None,
        errors=(400, 401, 403, 404),
    ),
]
