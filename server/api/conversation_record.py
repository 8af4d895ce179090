"""``GET /conversations/{id}/export``: a conversation's verifiable record (DESIGN.md section 9).

The record (``storage/conversation_export.py``) is JSON a family, a lawyer or a supervisor
can check with nothing but SHA-256; it is served as a download. Who may have it is who may
read the conversation (``server.policy.check_record_export``); a relative's lists notes as
their hash only; a supervisor's export is an audited look, as its history read is.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from server.api.base import Route, path_id, principal
from server.keys import DB
from server.policy import (
    audits_opening,
    check_record_export,
    history_floor,
    record_shows_notes,
    signed_in,
)
from storage import audit_trail, conversations, desk
from storage.conversation_export import ConversationRecord, conversation_record
from storage.errors import NotFound
from storage.sql import utcnow


async def export_record(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    db = request.app[DB]
    try:
        conv = await conversations.conversation(db, path_id(request))
    except NotFound:
        conv = None
    who = check_record_export(who, conv)
    assert conv is not None
    if audits_opening(who):  # a supervisor's look, audited before anything is shown
        await audit_trail.opened(db, who.id, await desk.thread(db, conv.id), "history", utcnow())
    record = await conversation_record(
        db, conv.id, with_notes=record_shows_notes(who), floor=history_floor(who, conv)
    )
    return web.Response(
        body=msgspec.json.encode(record),
        content_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="conversation-{conv.id}-record.json"'
        },
    )


ROUTES = [
    Route(
        "GET",
        "/conversations/{id}/export",
        export_record,
        "The conversation's verifiable record: every message with its hash (h_n = sha256(h_(n-1)"
        " || C(m)), hex) and the head; a relative's lists notes as {seq, kind, hash} only;"
        " a supervisor's is an audited look",
        "whoever reads the conversation",
        reply=ConversationRecord,
        errors=(400, 401, 404),
    ),
]
