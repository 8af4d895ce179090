"""Attachments over HTTP: upload a file (``POST /attachments``, multipart field ``file``), then
send it with a message (``send {..., attachments: [id]}`` on the socket or over REST) or
with a link request as evidence; read it back (``GET /attachments/{id}``, and its
``/thumbnail``).

The upload is judged and re-encoded by ``server/attachment_files.py`` (415
``unsupported_type``, 413 ``too_large`` / ``too_many_pixels``), counted against the uploader's
quota (413 ``quota_exceeded``), written to the object store (``OBJECTS``) and recorded
(``storage/attachments.py``). A read is authorized by the policy exactly as what the file
belongs to (``check_attachment``: 404 for anyone else); a supervisor's read of a
conversation's file is audited as a look (``conversation.opened`` via ``attachment``) before
it is served. It is served as what it was stored as and nothing else: its own type,
``nosniff``, a CSP that allows no script, no frame and no plugin and sandboxes the document,
images ``inline`` and PDFs only as downloads (``attachment``), never HTML. The response is
written here, headers and all, so no later middleware loosens them.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import quote

import msgspec
from aiohttp import web

from domain.records import Attachment, MessageKind
from server.api.base import ApiError, Route, path_id, principal, reply
from server.api.uploads import multipart_named_file
from server.attachment_files import FileRefused, Prepared, prepare
from server.errors import SECURITY_HEADERS
from server.keys import DB, OBJECTS, SETTINGS
from server.policy import AttachmentFacts, audits_opening, check_attachment, check_upload
from storage import attachments, audit_trail, conversations, links
from storage.errors import NotFound
from storage.objects import ObjectStore, new_key
from storage.sql import Database, utcnow

FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


class AttachmentOut(msgspec.Struct, frozen=True, omit_defaults=True):
    id: int
    type: str  # the stored type, judged from the content
    size: int  # bytes, as stored
    name: str
    sha256: str  # hex SHA-256 of the stored bytes (what the hash chain includes)
    url: str
    thumbnail: str | None = None  # images only
    width: int | None = None
    height: int | None = None


def attachment_out(found: Attachment) -> AttachmentOut:
    url = f"/api/v1/attachments/{found.id}"
    return AttachmentOut(
        id=found.id,
        type=found.content_type,
        size=found.size,
        name=found.name,
        sha256=found.sha256,
        url=url,
        thumbnail=f"{url}/thumbnail" if found.thumb_key else None,
        width=found.width,
        height=found.height,
    )


async def _store_objects(objects: ObjectStore, prepared: Prepared) -> tuple[str, str | None]:
    key = new_key("a")
    await objects.put(key, prepared.data, prepared.content_type)
    thumb_key = None
    if prepared.thumbnail is not None:
        thumb_key = new_key("t")
        try:
            await objects.put(thumb_key, prepared.thumbnail, "image/jpeg")
        except BaseException:
            with contextlib.suppress(Exception):
                await objects.delete(key)
            raise
    return key, thumb_key


async def store_upload(
    app: web.Application, owner_id: int, data: bytes, name: str | None
) -> Attachment:
    """Judge, re-encode, count against the quota, store and record one uploaded file (the
    HTTP upload and a WeChat image alike); ``ApiError`` with its status and stable code."""
    settings, store, objects = app[SETTINGS], app[DB], app[OBJECTS]
    if len(data) > settings.max_attachment_bytes:
        raise ApiError(413, "too_large", f"the file exceeds {settings.max_attachment_bytes} bytes")
    try:
        prepared = await asyncio.to_thread(prepare, data, name)
    except FileRefused as refused:
        raise ApiError(refused.status, refused.code, refused.message, field="file") from None
    used = await attachments.usage(store, owner_id)
    if used + len(prepared.data) > settings.attachment_quota_bytes:
        raise ApiError(
            413,
            "quota_exceeded",
            f"your files would exceed {settings.attachment_quota_bytes} bytes",
            field="file",
        )
    key, thumb_key = await _store_objects(objects, prepared)
    try:
        return await attachments.add(
            store,
            owner_id=owner_id,
            content_type=prepared.content_type,
            name=prepared.name,
            size=len(prepared.data),
            sha256=prepared.sha256,
            object_key=key,
            thumb_key=thumb_key,
            width=prepared.width,
            height=prepared.height,
            now=utcnow(),
        )
    except BaseException:
        for stored in (key, thumb_key):
            if stored is not None:
                with contextlib.suppress(Exception):
                    await objects.delete(stored)
        raise


async def upload(request: web.Request) -> web.Response:
    who = check_upload(await principal(request))
    limit = request.app[SETTINGS].max_attachment_bytes
    data, name = await multipart_named_file(request, limit)
    found = await store_upload(request.app, who.id, data, name)
    return reply(attachment_out(found), 201)


async def facts_of(store: Database, found: Attachment) -> AttachmentFacts:
    """What the policy decides a read on: the message's conversation, or the link request."""
    if found.message_id is not None:
        place = await attachments.message_place(store, found.message_id)
        if place is not None:
            conv = await conversations.conversation(store, place[0])
            kind: MessageKind = "note" if place[1] == "note" else "text"
            return AttachmentFacts(
                found.owner_id, conversation=conv, message_kind=kind, message_seq=place[2]
            )
    if found.link_id is not None:
        return AttachmentFacts(found.owner_id, link=await links.link(store, found.link_id))
    return AttachmentFacts(found.owner_id)


async def _readable(request: web.Request) -> Attachment:
    store = request.app[DB]
    who = await principal(request)
    try:
        found: Attachment | None = await attachments.attachment(store, path_id(request))
        facts = None if found is None else await facts_of(store, found)
    except NotFound:
        found, facts = None, None
    who = check_attachment(who, facts)
    assert found is not None and facts is not None
    if facts.conversation is not None and audits_opening(who):  # a look, audited first
        await audit_trail.opened(store, who.id, facts.conversation, "attachment", utcnow())
    return found


def disposition(kind: str, name: str) -> str:
    """``inline`` for an image, ``attachment`` for anything else; the name both as plain
    ASCII and as RFC 5987 UTF-8."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    how = "inline" if kind.startswith("image/") else "attachment"
    return f"{how}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _serve(
    request: web.Request, data: bytes, content_type: str, name: str
) -> web.StreamResponse:
    headers = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": FILE_CSP,
        "Content-Type": content_type,
        "Content-Disposition": disposition(content_type, name),
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": "private, max-age=300",
    }
    response = web.Response(body=data, headers=headers)
    await response.prepare(request)  # written as it is: no middleware changes these headers
    return response


async def _object(request: web.Request, key: str) -> bytes:
    try:
        return await request.app[OBJECTS].get(key)
    except NotFound:
        raise ApiError(404, "not_found", "no such attachment") from None


async def download(request: web.Request) -> web.StreamResponse:
    found = await _readable(request)
    data = await _object(request, found.object_key)
    return await _serve(request, data, found.content_type, found.name)


async def thumbnail(request: web.Request) -> web.StreamResponse:
    found = await _readable(request)
    if found.thumb_key is None:
        raise ApiError(404, "not_found", "this attachment has no thumbnail")
    data = await _object(request, found.thumb_key)
    stem = found.name.rsplit(".", 1)[0]
    return await _serve(request, data, "image/jpeg", f"{stem}-thumbnail.jpg")


ROUTES = [
    Route(
        "POST",
        "/attachments",
        upload,
        "Upload a file (multipart field file): a photo (JPEG, PNG, WebP; re-encoded without"
        " EXIF or GPS, with a thumbnail) or a PDF, judged from its content; then send it with"
        " a message (attachments: [id]) or a link request. 415 unsupported_type, 413"
        " too_large, too_many_pixels, quota_exceeded",
        "relative, officer",
        reply=AttachmentOut,
        status=201,
        errors=(400, 401, 403, 413, 415),
    ),
    Route(
        "GET",
        "/attachments/{id}",
        download,
        "The file (its stored type, nosniff, a sandboxing CSP; images inline, PDFs as a download)",
        "whoever may read what it belongs to: the conversation of its message, the link"
        " request (its relative, the officers deciding it), or its uploader before it is sent",
        errors=(401, 404),
    ),
    Route(
        "GET",
        "/attachments/{id}/thumbnail",
        thumbnail,
        "An image's thumbnail (JPEG, at most 320 px a side)",
        "as GET /attachments/{id}",
        errors=(401, 404),
    ),
]
