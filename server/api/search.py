"""``GET /search``: find a message again by its text (issue 18).

The policy decides what a caller's search covers (``server.policy.search_scope``: staff the
conversations of their prisons, notes included; the admin every prison's; a relative its own
conversations without notes); ``storage/search.py`` finds the hits, newest first. Each hit
names the conversation and the seq to open it at, with a short snippet around the match
(plain text: pages render it with ``textContent``). Pages are by message id: pass a page's
``next`` as ``before`` for the next, older one. A supervisor's or the admin's search is
audited (``messages.searched``) before its hits are shown; if that cannot be recorded the
search answers 503 and shows nothing.

Error codes: 400 ``query_too_short`` (no query, or fewer than two characters once trimmed),
400 ``query_too_long`` (more than 100 characters), 403 ``forbidden`` (a prison one is not
staff of).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from domain.records import MessageKind, Role
from server.api.base import ApiError, Id, Route, principal, query, reply
from server.keys import DB
from server.policy import search_scope, signed_in
from storage import search
from storage.sql import utcnow

PAGE = 20


class SearchQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    q: str = ""
    prison: Id | None = None
    before: Id | None = None  # a page's ``next``: hits older than this message id
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = PAGE


class SenderOut(msgspec.Struct, frozen=True):
    id: int
    role: Role
    name: str


class InmateOut(msgspec.Struct, frozen=True):
    id: int
    name: str
    number: str


class PersonOut(msgspec.Struct, frozen=True):
    id: int
    name: str


class HitOut(msgspec.Struct, frozen=True):
    conv: int
    seq: int  # open the conversation here
    id: int
    prison_id: int
    inmate: InmateOut
    relative: PersonOut
    sender: SenderOut
    kind: MessageKind
    body: str
    snippet: str  # plain text around the first match
    at: datetime


class SearchPage(msgspec.Struct, frozen=True):
    items: list[HitOut]
    next: int | None  # pass as ``before`` for the next (older) page; None: no more


def _text(wanted: SearchQuery) -> str:
    text = wanted.q.strip()
    if len(text) < search.MIN_QUERY:
        raise ApiError(
            400,
            "query_too_short",
            f"search for at least {search.MIN_QUERY} characters",
            field="q",
        )
    if len(text) > search.MAX_QUERY:
        raise ApiError(
            400,
            "query_too_long",
            f"search for at most {search.MAX_QUERY} characters",
            field="q",
        )
    return text


def hit_out(hit: search.Hit, text: str) -> HitOut:
    return HitOut(
        conv=hit.conversation_id,
        seq=hit.seq,
        id=hit.id,
        prison_id=hit.prison_id,
        inmate=InmateOut(hit.inmate_id, hit.inmate_name, hit.inmate_number),
        relative=PersonOut(hit.relative_id, hit.relative_name),
        sender=SenderOut(hit.sender_id, hit.sender_role, hit.sender_name),
        kind=hit.kind,
        body=hit.body,
        snippet=search.snippet(hit.body, text),
        at=hit.created_at,
    )


async def find(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    wanted = query(request, SearchQuery)
    text = _text(wanted)
    scope = search_scope(who, wanted.prison)
    store = request.app[DB]
    hits, following = await search.search(
        store,
        text,
        search.Where(
            prison_ids=scope.prison_ids,
            relative_id=scope.relative_id,
            inmate_ids=scope.inmate_ids,
            include_notes=scope.include_notes,
        ),
        before=wanted.before,
        limit=wanted.limit,
    )
    if scope.audited:  # recorded before anything is shown
        await search.audit_searched(
            store, who.id, text, scope.prison_ids, hits, utcnow(), wanted.before
        )
    return reply(SearchPage([hit_out(h, text) for h in hits], following))


ROUTES: list[Route] = [
    Route(
        "GET",
        "/search",
        find,
        "Messages whose text contains q (two characters or more; Latin case-insensitive),"
        " newest first, each with the conversation and seq to open it at and a snippet; pass"
        " `next` as `before` for the next page. Staff find notes too; a supervisor's or the"
        " admin's search is audited (messages.searched)",
        "officers and supervisors (their prisons), the admin (every prison), a relative (its"
        " own conversations, no notes)",
        query=SearchQuery,
        reply=SearchPage,
        errors=(400, 401, 403, 503),
    ),
]
