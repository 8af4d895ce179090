"""Supervisors' photos: the admin uploads one (multipart), it is re-encoded with no metadata
(``server/photos.py``) and set on the public profile; anyone reads it back, as an image only.
Who may upload is the policy's ``profile.set`` (the admin)."""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web

from server.api.base import ApiError, Route, path_id, principal, reply
from server.api.uploads import multipart_file
from server.keys import DB
from server.photos import PhotoRefused, reencode
from server.policy import check_complaints_and_announcements
from storage import accounts, photos
from storage.errors import NotFound
from storage.sql import utcnow


class PhotoOut(msgspec.Struct, frozen=True):
    photo: str  # the URL now on the supervisor's public profile


async def upload_photo(request: web.Request) -> web.Response:
    """The uploaded image re-encoded (``server/photos.py``) and put on the profile."""
    who = check_complaints_and_announcements(await principal(request), "profile.set")
    supervisor_id = path_id(request)
    store = request.app[DB]
    try:
        user = await accounts.user(store, supervisor_id)
    except NotFound:
        user = None
    if user is None or user.role != "supervisor":
        raise ApiError(404, "not_found", "no such supervisor")
    data = await multipart_file(request, "file")
    try:
        jpeg, width, height = await asyncio.to_thread(reencode, data)
    except PhotoRefused as refused:
        raise ApiError(
            415 if refused.code == "photo_unreadable" else 400,
            refused.code,
            refused.message,
            field="file",
        ) from None
    try:
        url = await photos.set_photo(
            store, supervisor_id, jpeg, width, height, actor_id=who.id, now=utcnow()
        )
    except NotFound:
        raise ApiError(404, "not_found", "no such supervisor") from None
    return reply(PhotoOut(url), 201)


async def get_photo(request: web.Request) -> web.StreamResponse:
    """Served as an image and nothing else: its stored type, nosniff and the page CSP (every
    response: ``server/errors.py``), inline with a fixed file name."""
    try:
        content_type, data = await photos.photo(request.app[DB], path_id(request))
    except NotFound:
        raise ApiError(404, "not_found", "no such photo") from None
    return web.Response(
        body=data,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": 'inline; filename="photo.jpg"',
            "Cache-Control": "public, max-age=86400",
        },
    )


ROUTES = [
    Route(
        "POST",
        "/admin/supervisors/{id}/photo",
        upload_photo,
        "Upload a supervisor's photo (multipart field file: JPEG, PNG or WebP): resized,"
        " stripped of every metadata, re-encoded as JPEG and set on the public profile"
        " (audited). 415 photo_unreadable, 400 photo_too_large, 413 too_large",
        "admin",
        reply=PhotoOut,
        status=201,
        errors=(400, 401, 403, 404, 413, 415),
    ),
    Route(
        "GET",
        "/photos/{id}",
        get_photo,
        "An uploaded supervisor photo (image/jpeg, nosniff)",
        "anyone, no sign-in",
        errors=(404,),
    ),
]
