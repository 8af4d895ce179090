"""``GET /conversations/{id}/access``: who of the supervisors opened this conversation.

The family sees its oversight: every opening a supervisor made (socket watch, REST history,
transcript), with the supervisor's name and public title, when, and how, newest first and
paged by ``before`` (an item's ``id``). These are audit entries (``storage/openings.py``),
which nobody can change or delete; reading them is not itself audited. Readers:
``policy.check_openings`` (the conversation's relative, the staff of its prison). A relative
connected when a supervisor opens its conversation also gets an ``opening`` frame
(``server/openings.py``).
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from domain.records import Conversation
from server.api.base import Id, Limit, Route, path_id, principal, query, reply
from server.keys import DB
from server.policy import check_openings
from storage import conversations, openings
from storage.errors import NotFound
from storage.openings import Opening


class AccessQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    before: Id | None = None  # openings older than this item id (paging)
    limit: Limit = 100


class AccessList(msgspec.Struct, frozen=True):
    items: list[Opening]
    next_before: int | None  # pass as before for the next, older page; None: the last page


async def conversation_access(request: web.Request) -> web.Response:
    who = await principal(request)
    wanted = query(request, AccessQuery)
    db = request.app[DB]
    try:
        conv: Conversation | None = await conversations.conversation(db, path_id(request))
    except NotFound:
        conv = None
    seen = check_openings(who, conv)
    found = await openings.openings(db, seen.id, before=wanted.before, limit=wanted.limit)
    more = found[-1].id if len(found) == wanted.limit else None
    return reply(AccessList(found, more))


ROUTES = [
    Route(
        "GET",
        "/conversations/{id}/access",
        conversation_access,
        "The supervisors' openings of a conversation, newest first: {items: [{id, who: {name,"
        " title}, at, via}]}; via is watch (live) or history (read over REST). Audit entries:"
        " nothing can remove one. Page with before (an item's id)",
        "its relative; officers and supervisors of its prison",
        query=AccessQuery,
        reply=AccessList,
        errors=(400, 401, 404),
    ),
]
