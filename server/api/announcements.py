"""Announcements: posted by the admin (bureau-wide, or for any prison) or by an officer (for
its own prison), listed publicly, and fanned out live.

A post is stored with its audit entry in one transaction (``storage/announcements.py``), then
published once through the hub, which delivers it to this process's sockets and, through the
broker, to every other process (``server/audience.py``): a prison's announcement to the
relatives with a verified inmate there, a bureau-wide one to every relative with at least one
verified inmate (``policy.announcement_audience``). Staff are never told live.
Live delivery is at most once (unordered topics, ``channels/hub.py``); the list is the record:
a client that reconnects re-reads ``GET /announcements``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec
from aiohttp import web

from channels.protocol import AnnouncementEvent
from server.api.base import (
    ApiError,
    Id,
    PublicLimit,
    Route,
    body,
    invalid,
    principal,
    query,
    reply,
)
from server.audience import AnnouncementPosted, tell
from server.keys import DB, HUB
from server.policy import check_announcement, check_complaints_and_announcements
from storage import announcements as stored
from storage import prisons
from storage.errors import NotFound
from storage.prisons_public import PublicAnnouncement, public_announcement
from storage.sql import utcnow

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4000, pattern=r"\S")]


class PostAnnouncement(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    title: Title
    body: Text
    open_day: date | None = None  # an open day at the prison, if it announces one
    prison_id: Id | None = None  # none: bureau-wide (admin only)


class AnnouncementsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prison: Id | None = None  # that prison's and the bureau-wide ones; none: all
    before: Id | None = None  # page: announcements with a smaller id
    limit: PublicLimit = 50


class AnnouncementList(msgspec.Struct, frozen=True):
    announcements: list[PublicAnnouncement]


async def post_announcement(request: web.Request) -> web.Response:
    check_complaints_and_announcements(await principal(request), "announcement.post")
    form = await body(request, PostAnnouncement)
    who = check_announcement(await principal(request), form.prison_id)
    try:
        posted = await stored.post(
            request.app[DB],
            stored.NewAnnouncement(
                author_id=who.id,
                title=form.title.strip(),
                body=form.body,
                prison_id=form.prison_id,
                open_day=form.open_day,
            ),
            now=utcnow(),
        )
    except NotFound:
        raise invalid("prison_id", f"no prison with id {form.prison_id}") from None
    event = AnnouncementEvent(
        id=posted.id,
        title=posted.title,
        body=posted.body,
        at=posted.created_at,
        prison=posted.prison_id,
        open_day=posted.open_day,
    )
    tell(request.app[HUB], AnnouncementPosted(event))
    return reply(public_announcement(posted), 201)


async def list_announcements(request: web.Request) -> web.Response:
    wanted = query(request, AnnouncementsQuery)
    store = request.app[DB]
    if wanted.prison is not None:
        try:
            await prisons.prison(store, wanted.prison)
        except NotFound:
            raise ApiError(404, "not_found", "no such prison") from None
    found = await stored.announcements(
        store, prison_id=wanted.prison, before=wanted.before, limit=wanted.limit
    )
    return reply(AnnouncementList([public_announcement(a) for a in found]))


ROUTES = [
    Route(
        "POST",
        "/announcements",
        post_announcement,
        "Post an announcement (title, body, optional open day): bureau-wide without prison_id"
        " (admin), or for a prison; audited and fanned out live to that prison's verified"
        " relatives (bureau-wide: every relative with a verified inmate) on every process",
        "admin (bureau-wide or any prison); officer (its own prison only)",
        body=PostAnnouncement,
        reply=PublicAnnouncement,
        status=201,
        errors=(400, 401, 403, 413),
    ),
    Route(
        "GET",
        "/announcements",
        list_announcements,
        "Announcements, newest first; with prison: that prison's and the bureau-wide ones",
        "anyone, no sign-in",
        query=AnnouncementsQuery,
        reply=AnnouncementList,
        errors=(400, 404),
    ),
]
