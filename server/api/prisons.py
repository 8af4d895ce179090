"""The public prison pages (no sign-in) and the supervisors' public profiles (admin sets them).

What the public may read is decided once, in ``storage/prisons_public.py``: the prison, its
supervisors' directory (name and public profile only), visit rules, recent announcements and
the response-time figures of the last 30 days, and the latest daily anchors of the hash
chains (``anchors: [{day, digest}]``). Nothing else about any user is public.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from server.api.base import ApiError, Route, body, invalid, path_id, principal, reply
from server.keys import DB
from server.policy import check_complaints_and_announcements
from storage import accounts, photos
from storage.errors import NotFound
from storage.prisons_public import (
    PublicPrison,
    PublicPrisonSummary,
    PublicSupervisor,
    public_prison,
    public_prisons,
)
from storage.profiles import (
    SupervisorProfile,
    photo_allowed,
    set_supervisor_profile,
    uploaded_photo_id,
)
from storage.sql import utcnow


class PublicPrisonList(msgspec.Struct, frozen=True):
    prisons: list[PublicPrisonSummary]


async def list_prisons(request: web.Request) -> web.Response:
    return reply(PublicPrisonList(await public_prisons(request.app[DB])))


async def get_prison(request: web.Request) -> web.Response:
    page = await public_prison(request.app[DB], path_id(request), utcnow())
    if page is None:
        raise ApiError(404, "not_found", "no such prison")
    return reply(page)


async def set_profile(request: web.Request) -> web.Response:
    who = check_complaints_and_announcements(await principal(request), "profile.set")
    form = await body(request, SupervisorProfile)
    if not photo_allowed(form.photo):
        raise invalid("photo", "a photo is one uploaded for this supervisor (/api/v1/photos/<id>)")
    store = request.app[DB]
    supervisor_id = path_id(request)
    uploaded = uploaded_photo_id(form.photo)
    if uploaded is not None and await photos.owner(store, uploaded) != supervisor_id:
        raise invalid("photo", "a photo is one uploaded for this supervisor (/api/v1/photos/<id>)")
    try:
        profile = await set_supervisor_profile(
            store, supervisor_id, form, actor_id=who.id, now=utcnow()
        )
        user = await accounts.user(store, supervisor_id)
    except NotFound:
        raise ApiError(404, "not_found", "no such supervisor") from None
    return reply(
        PublicSupervisor(
            user.id, user.name, profile.title, profile.photo, profile.address, profile.phone
        )
    )


ROUTES = [
    Route(
        "GET",
        "/prisons",
        list_prisons,
        "Every prison (id, code, name, city), by code",
        "anyone, no sign-in",
        reply=PublicPrisonList,
    ),
    Route(
        "GET",
        "/prisons/{id}",
        get_prison,
        "A prison's public page: supervisors' directory (name, title, photo, address, phone),"
        " visit rules and what may be brought, recent announcements (the prison's and the"
        " bureau-wide ones), response-time figures of the last 30 days, and the latest daily"
        " anchors of the hash chains ({day, digest})",
        "anyone, no sign-in",
        reply=PublicPrison,
        errors=(404,),
    ),
    Route(
        "PUT",
        "/supervisors/{id}/profile",
        set_profile,
        "Set a supervisor's public profile (title, photo, address, phone) (audited)",
        "admin",
        body=SupervisorProfile,
        reply=PublicSupervisor,
        errors=(400, 401, 403, 404, 413),
    ),
]
