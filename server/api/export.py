"""``GET /me/export``: everything the service keeps about the caller, as one JSON archive.

A person's right of access (China's PIPL, article 45): the account, its family links, its
conversations with every message it may read (never staff notes) and the files they carried,
the ratings it gave, its visit requests, its complaints with their history and the notices
the bureau sent it. Files (issue 18: message attachments, link evidence) are listed with
their metadata and the URL of their bytes, which the caller may download as ever: a JSON
archive stays small however many files a person stored. Nothing of anyone else beyond what the
caller already sees in the app (the names of who wrote to it). Each export is audited. Paged
reads are followed to the end, so nothing is cut at a page size.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from domain.records import Attachment
from server.api.base import Route, principal, user_out
from server.keys import DB
from server.policy import check_action
from storage import (
    accounts,
    attachments,
    audit_trail,
    complaints,
    conversations,
    desk,
    family,
    inmate_records,
    links,
    messages,
    visits,
)
from storage.complaints import ComplaintScope
from storage.sql import Database, utcnow

PAGE = 500


def _file(a: Attachment) -> dict[str, Any]:
    """What the archive says of a file: its metadata, and where its bytes are downloaded."""
    return {
        "id": a.id,
        "name": a.name,
        "type": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
        "at": a.created_at,
        "url": f"/api/v1/attachments/{a.id}",
    }


async def _history(db: Database, conv_id: int, after: int = 0) -> list[dict[str, Any]]:
    """The messages after ``after`` (a family case member: its join seq)."""
    out: list[dict[str, Any]] = []
    while True:
        page = await messages.messages(db, conv_id, after=after, limit=PAGE, include_notes=False)
        out += [
            {
                "seq": m.seq,
                "at": m.created_at,
                "from": {"id": m.sender_id, "name": m.sender_name, "role": m.sender_role},
                "kind": m.kind,
                "body": m.body,
                # the files it carried (issue 18): each readable at /api/v1/attachments/{id}
                **({"attachments": [_file(a) for a in m.attachments]} if m.attachments else {}),
            }
            for m in page
        ]
        if len(page) < PAGE:
            return out
        after = page[-1].seq


async def archive(db: Database, user_id: int, now: datetime) -> dict[str, Any]:
    """The caller's data (see the module docstring)."""
    user = await accounts.user(db, user_id)
    threads = []
    _, joins = await family.access(db, user_id)  # family case threads: from the join on
    shared = [c for c in await conversations.family_threads_of(db, user_id) if c.id in joins]
    for conv in [*await conversations.conversations_of(db, user_id), *shared]:
        cycles = await desk.cycles(db, conv.id)
        threads.append(
            {
                "id": conv.id,
                "prison_id": conv.prison_id,
                "inmate_id": conv.inmate_id,
                "started_at": conv.created_at,
                "messages": await _history(db, conv.id, joins.get(conv.id, 0)),
                "ratings": [
                    {"cycle": c.cycle, "rating": c.rating, "comment": c.rating_comment}
                    for c in cycles
                    if c.rating is not None and conv.id not in joins  # shared: not only its own
                ],
            }
        )
    own_links = await links.links(db, relative_id=user_id, limit=500)
    evidence = await attachments.of_links(db, [link.id for link in own_links])
    filed = await complaints.complaints(
        db, ComplaintScope(complainant_id=user_id), now=now, limit=500
    )
    return {
        "exported_at": now,
        "account": {
            **msgspec.to_builtins(user_out(user)),
            "id_number_last4": await accounts.id_number_last4(db, user_id),
        },
        "links": [
            {
                "id": link.id,
                # the files it gave as evidence (issue 18)
                "evidence_files": [_file(a) for a in evidence.get(link.id, ())],
                "prison": link.prison_claim,
                "inmate_number": link.inmate_number,
                "relationship": link.relationship,
                "evidence": link.evidence,
                "state": link.state,
                "reason": link.reason,
                "asked_at": link.created_at,
                "decided_at": link.decided_at,
            }
            for link in own_links
        ],
        "conversations": threads,
        "visits": [
            {
                "id": v.id,
                "inmate_id": v.inmate_id,
                "slot_start": v.slot_start,
                "visitors": v.visitors,
                "visitor_names": v.visitor_names,
                "state": v.state,
                "reason": v.reason,
            }
            for v in await visits.visits(db, relative_id=user_id, limit=500)
        ],
        "complaints": [
            {
                **msgspec.to_builtins(c),
                "history": msgspec.to_builtins(await complaints.history(db, c.id)),
            }
            for c in filed
        ],
        # what the bureau told it (an inmate transferred, released or archived)
        "notices": [
            msgspec.to_builtins(n) for n in await inmate_records.notices(db, user_id, limit=500)
        ],
    }


async def export(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "session")
    db, now = request.app[DB], utcnow()
    data = await archive(db, who.id, now)
    await audit_trail.append(
        db,
        at=now,
        actor_id=who.id,
        action="user.exported",
        object_type="user",
        object_id=who.id,
        prison_id=None,
    )
    name = f"kinline-{who.user.login}-{now:%Y%m%d}.json"
    return web.Response(
        body=msgspec.json.encode(data),
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


ROUTES = [
    Route(
        "GET",
        "/me/export",
        export,
        "All of one's own data (account, links, conversations without staff notes, ratings,"
        " visits, complaints) as one JSON archive (audited)",
        "signed in",
        reply=None,
        errors=(401,),
    ),
]
