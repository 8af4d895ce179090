"""Keyword review over HTTP: the bureau's lists, the staff's review queue.

- ``GET``/``PUT /admin/keywords`` (admin): the lists per category, replaced as a whole
  (categories are data: one not in the new set is removed), audited ``keywords.updated``.
  Once the change is committed, this process compiles the new lists before answering and
  every other process is told (``server/keywords.py``).
- ``GET /flags?prison=&state=unreviewed|reviewed|all&before=&limit=`` (officers of the
  prison, its supervisors): flagged messages, newest first; a flag's id is its message's.
  A supervisor's look is audited ``flags.viewed`` (one entry per prison shown), as its
  opening a conversation is.
- ``POST /flags/{id}/review {note}``: marked reviewed with a note, once (409
  ``already_reviewed``), audited ``flag.reviewed`` in the same transaction.

A matching message was delivered exactly as any other; none of this reaches a relative.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from domain.keywords import normalise
from server.api.base import (
    ApiError,
    Id,
    Limit,
    Route,
    body,
    invalid,
    path_id,
    principal,
    query,
    reply,
)
from server.keys import DB, KEYWORDS
from server.policy import audits_flag_reading, check_flag_review, check_keywords, flag_scope
from storage import audit_trail, keywords
from storage.errors import Conflict, NotFound
from storage.keywords import Flag, KeywordList, KeywordSet, ReviewState
from storage.sql import utcnow

MAX_CATEGORIES = 50
MAX_WORDS = 500

Category = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]{0,39}$")]
Word = Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
Note = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=r"\S")]


class ListIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    category: Category
    words: Annotated[list[Word], msgspec.Meta(max_length=MAX_WORDS)]
    label: Annotated[str, msgspec.Meta(max_length=50)] = ""


class ListsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lists: Annotated[list[ListIn], msgspec.Meta(max_length=MAX_CATEGORIES)]


class ListOut(msgspec.Struct, frozen=True):
    category: str
    label: str
    words: list[str]


class ListsOut(msgspec.Struct, frozen=True):
    version: int
    lists: list[ListOut]


class FlagsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prison: Id | None = None
    state: ReviewState = "unreviewed"
    before: Id | None = None
    limit: Limit = 50


class PersonOut(msgspec.Struct, frozen=True):
    id: int
    name: str
    role: str


class ReviewOut(msgspec.Struct, frozen=True):
    by: PersonOut
    at: datetime
    note: str


class FlagOut(msgspec.Struct, frozen=True):
    id: int  # the message's id
    conv: int
    seq: int
    prison: int
    inmate: int
    sender: PersonOut
    body: str
    at: datetime
    categories: list[str]
    review: ReviewOut | None


class FlagList(msgspec.Struct, frozen=True):
    items: list[FlagOut]
    labels: dict[str, str]  # the categories' names as the bureau gave them (current lists)


class ReviewIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    note: Note


def lists_out(stored: KeywordSet) -> ListsOut:
    return ListsOut(stored.version, [ListOut(k.category, k.label, k.words) for k in stored.lists])


def flag_out(flag: Flag) -> FlagOut:
    review = None
    if flag.review is not None:
        by = flag.review.by
        review = ReviewOut(PersonOut(by.id, by.name, by.role), flag.review.at, flag.review.note)
    return FlagOut(
        flag.id,
        flag.conversation_id,
        flag.seq,
        flag.prison_id,
        flag.inmate_id,
        PersonOut(flag.sender.id, flag.sender.name, flag.sender.role),
        flag.body,
        flag.at,
        flag.categories,
        review,
    )


def checked_lists(form: ListsIn) -> list[KeywordList]:
    """The lists as stored: categories unique, words trimmed and unique per category (in
    the order given), each with a letter or digit (what the matcher compares)."""
    seen: set[str] = set()
    out = []
    for item in form.lists:
        if item.category in seen:
            raise invalid("lists", f"the category {item.category!r} is listed twice")
        seen.add(item.category)
        words: list[str] = []
        for given in item.words:
            word = given.strip()
            if not normalise(word):
                raise invalid("lists", f"the keyword {word!r} has no letter or digit")
            if word not in words:
                words.append(word)
        out.append(KeywordList(item.category, item.label.strip(), words))
    return out


async def get_lists(request: web.Request) -> web.Response:
    check_keywords(await principal(request), "keywords.read")
    return reply(lists_out(await keywords.lists(request.app[DB])))


async def put_lists(request: web.Request) -> web.Response:
    who = check_keywords(await principal(request), "keywords.edit")
    new = checked_lists(await body(request, ListsIn))
    stored = await keywords.replace_lists(request.app[DB], new, who.id, utcnow())
    live = request.app[KEYWORDS]
    await live.install(stored)  # this process flags by the new lists from now on
    live.announce(stored.version)  # and every other one, once told
    return reply(lists_out(stored))


async def list_flags(request: web.Request) -> web.Response:
    who = await principal(request)
    wanted = query(request, FlagsQuery)
    scope = flag_scope(who, wanted.prison)
    assert who is not None
    db = request.app[DB]
    found = await keywords.flagged(
        db, scope, state=wanted.state, before_id=wanted.before, limit=wanted.limit
    )
    if found and audits_flag_reading(who):
        now = utcnow()
        async with db.write() as sql:
            for prison in sorted({f.prison_id for f in found}):
                shown = [f for f in found if f.prison_id == prison]
                await audit_trail.record(
                    sql,
                    at=now,
                    actor_id=who.id,
                    action="flags.viewed",
                    object_type="prison",
                    object_id=prison,
                    prison_id=prison,
                    after={
                        "messages": [f.id for f in shown],
                        "conversations": sorted({f.conversation_id for f in shown}),
                    },
                )
    labels = request.app[KEYWORDS].labels
    named = {c for f in found for c in f.categories}
    return reply(
        FlagList([flag_out(f) for f in found], {c: n for c, n in labels.items() if c in named})
    )


async def review_flag(request: web.Request) -> web.Response:
    who = await principal(request)
    db = request.app[DB]
    try:
        flagged = await keywords.flag(db, path_id(request))
    except NotFound:
        flagged = None
    check_flag_review(who, None if flagged is None else flagged.prison_id)
    assert who is not None and flagged is not None
    form = await body(request, ReviewIn)
    try:
        await keywords.review(db, flagged, who.id, form.note.strip(), utcnow())
    except Conflict:
        raise ApiError(409, "already_reviewed", "this flag was reviewed already") from None
    return reply(flag_out(await keywords.flag(db, flagged.id)))


ROUTES = [
    Route(
        "GET",
        "/admin/keywords",
        get_lists,
        "The keyword lists per review category, and their version",
        "admin",
        reply=ListsOut,
        errors=(401, 403),
    ),
    Route(
        "PUT",
        "/admin/keywords",
        put_lists,
        "Replace the keyword lists (categories are data: one left out is removed) (audited);"
        " every server process flags by the new lists once told",
        "admin",
        body=ListsIn,
        reply=ListsOut,
        errors=(400, 401, 403, 413),
    ),
    Route(
        "GET",
        "/flags",
        list_flags,
        "Messages flagged by the keyword lists (delivered as usual), newest first; a flag's id"
        " is its message's (a supervisor's look is audited)",
        "officer: its prison; supervisor: its prisons (another prison: 404)",
        query=FlagsQuery,
        reply=FlagList,
        errors=(400, 401, 403, 404),
    ),
    Route(
        "POST",
        "/flags/{id}/review",
        review_flag,
        "Mark a flagged message reviewed with a note, once (audited)",
        "officer of its prison, its supervisors",
        body=ReviewIn,
        reply=FlagOut,
        errors=(400, 401, 403, 404, 409, 413),
    ),
]
