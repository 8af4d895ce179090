"""The bureau's inmate register over HTTP (admin), and relatives' notices.

- ``GET /admin/inmates``, ``POST /admin/inmates``: list, add.
- ``POST /admin/prisons/{id}/inmates/import?dry_run=true``: the body is the CSV file the
  prison's records system exported (``Content-Type: text/csv``); the answer reports, per line,
  ``added``, ``updated``, ``unchanged`` or ``error`` (with a code). A dry run writes nothing;
  ``dry_run=false`` applies the same comparison and audits each change.
- ``POST /admin/inmates/{id}/transfer {prison_id}``: with its links and threads. The
  relatives' sockets re-read their permissions (they now follow the new prison), the old
  prison's staff sockets are closed with 1012 (they reconnect, and no longer see its
  threads), each verified relative gets a notice.
- ``POST /admin/inmates/{id}/release``, ``/archive`` ``{note?}``: its family links end; each
  relative whose link ended is told ``link {id, state: revoked, reason}`` and gets a notice
  (stored, and told live as an ``announcement`` frame on its own topic); its sockets stop
  following the inmate's thread at once.
- ``GET /notices``: a relative's notices, newest first.

Codes beyond the common ones: ``csv_encoding``, ``csv_header``, ``csv_too_long`` (400, the
file as a whole), ``not_held`` (409: the inmate was released or archived), ``same_prison``
(400), ``conflict`` (409: the number is taken in that prison).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from channels.protocol import AnnouncementEvent, CloseCode
from domain.records import Inmate
from server.api.base import (
    ApiError,
    Id,
    Limit,
    Route,
    Seq,
    body,
    invalid,
    path_id,
    principal,
    query,
    reply,
)
from server.api.uploads import read_capped
from server.audience import LinkDecided, NoticeSent, tell
from server.keys import DB, GATEWAY, HUB
from server.policy import (
    RegisterAction,
    check_notices,
    check_register,
    check_register_inmate,
    moved_inmate_staff,
    signed_in,
)
from storage import accounts, inmate_records
from storage.errors import Conflict, NotFound
from storage.inmate_records import (
    NUMBER,
    CsvRefused,
    ImportReport,
    InmateStatus,
    Moved,
    Notice,
    RegisteredInmate,
)
from storage.sql import utcnow

Number = Annotated[str, msgspec.Meta(pattern=NUMBER.pattern)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
Note = Annotated[str, msgspec.Meta(max_length=500)]


class RegisterQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prison: Id | None = None
    status: InmateStatus | None = None
    after: Seq = 0
    limit: Limit = 100


class NewInmate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prison_id: Id
    number: Number
    name: Name


class ImportQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    dry_run: bool = True


class TransferRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prison_id: Id


class EndRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    note: Note = ""


class RegisterList(msgspec.Struct, frozen=True):
    inmates: list[RegisteredInmate]


class MovedOut(msgspec.Struct, frozen=True):
    inmate: RegisteredInmate
    from_prison: int
    links: int  # family links carried (transfer) or ended (release, archive)
    conversations: int
    notified: int  # relatives given a notice


class NoticeList(msgspec.Struct, frozen=True):
    notices: list[Notice]


async def _csv_body(request: web.Request) -> bytes:
    if request.content_type not in ("text/csv", "application/octet-stream"):
        raise invalid(None, "send the exported file with Content-Type: text/csv")
    return await read_capped(request)


async def _inmate(request: web.Request) -> Inmate | None:
    try:
        found = await inmate_records.registered(request.app[DB], path_id(request))
    except NotFound:
        return None
    return inmate_records.as_inmate(found)


async def list_register(request: web.Request) -> web.Response:
    check_register(await principal(request), "list")
    wanted = query(request, RegisterQuery)
    found = await inmate_records.register(
        request.app[DB],
        prison_id=wanted.prison,
        status=wanted.status,
        after=wanted.after,
        limit=wanted.limit,
    )
    return reply(RegisterList(found))


async def add_inmate(request: web.Request) -> web.Response:
    who = check_register(await principal(request), "add")
    form = await body(request, NewInmate)
    try:
        added = await inmate_records.add_inmate(
            request.app[DB],
            form.prison_id,
            form.number,
            form.name.strip(),
            actor_id=who.id,
            now=utcnow(),
        )
    except NotFound:
        raise invalid("prison_id", f"no prison with id {form.prison_id}") from None
    except Conflict:
        raise ApiError(
            409, "conflict", "this prison already has an inmate with that number"
        ) from None
    return reply(added, 201)


async def import_register(request: web.Request) -> web.Response:
    who = check_register(await principal(request), "import")
    prison_id = path_id(request)
    wanted = query(request, ImportQuery)
    data = await _csv_body(request)
    try:
        lines = inmate_records.parse_csv(data)
    except CsvRefused as refused:
        raise ApiError(400, refused.code, refused.message) from None
    try:
        report: ImportReport = await inmate_records.import_inmates(
            request.app[DB],
            prison_id,
            lines,
            apply=not wanted.dry_run,
            actor_id=who.id,
            now=utcnow(),
        )
    except NotFound:
        raise ApiError(404, "not_found", "no such prison") from None
    return reply(report)


def _moved_out(moved: Moved, links: int) -> MovedOut:
    return MovedOut(
        moved.inmate, moved.from_prison, links, len(moved.conversations), len(moved.relatives)
    )


def _tell_notices(request: web.Request, moved: Moved, at: datetime) -> None:
    hub = request.app[HUB]
    for notice_id, relative, title, text in moved.notices:
        frame = AnnouncementEvent(id=notice_id, title=title, body=text, at=at)
        tell(hub, NoticeSent(relative, frame))


async def transfer_inmate(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    inmate = check_register_inmate(who, await _inmate(request), "transfer")
    form = await body(request, TransferRequest)
    store = request.app[DB]
    now = utcnow()
    try:
        moved = await inmate_records.transfer(
            store, inmate.id, form.prison_id, actor_id=who.id, now=now
        )
    except NotFound:
        raise invalid("prison_id", f"no prison with id {form.prison_id}") from None
    except Conflict as conflict:
        if conflict.what == "status":
            raise ApiError(409, "not_held", "this inmate was released or archived") from None
        if conflict.what == "same_prison":
            raise invalid("prison_id", "the inmate is already in this prison") from None
        raise ApiError(409, "conflict", "that prison has an inmate with this number") from None
    gateway = request.app[GATEWAY]
    for relative in sorted({link.relative_id for link in moved.links}):
        gateway.refresh_user(relative)  # they now follow the new prison
    staff = [
        *await accounts.users(store, role="officer", limit=500),
        *await accounts.users(store, role="supervisor", limit=500),
    ]
    for user_id in moved_inmate_staff(staff, moved.from_prison):
        gateway.close_user(user_id, CloseCode.RESTARTING, "an inmate was transferred")
    _tell_notices(request, moved, now)
    return reply(_moved_out(moved, len(moved.links)))


async def _end(request: web.Request, status: InmateStatus) -> web.Response:
    who = signed_in(await principal(request))
    action: RegisterAction = "release" if status == "released" else "archive"
    inmate = check_register_inmate(who, await _inmate(request), action)
    form = await body(request, EndRequest)
    now = utcnow()
    try:
        moved = await inmate_records.end(
            request.app[DB],
            inmate.id,
            "released" if status == "released" else "archived",
            actor_id=who.id,
            now=now,
            note=form.note.strip(),
        )
    except NotFound:
        raise ApiError(404, "not_found", "no such inmate") from None
    except Conflict:
        raise ApiError(409, "not_held", "this inmate was already released or archived") from None
    hub, gateway = request.app[HUB], request.app[GATEWAY]
    for link in moved.links:
        tell(hub, LinkDecided(link))
        gateway.refresh_user(link.relative_id)  # its sockets leave the inmate's thread
    _tell_notices(request, moved, now)
    return reply(_moved_out(moved, len(moved.links)))


async def release_inmate(request: web.Request) -> web.Response:
    return await _end(request, "released")


async def archive_inmate(request: web.Request) -> web.Response:
    return await _end(request, "archived")


async def list_notices(request: web.Request) -> web.Response:
    who = check_notices(await principal(request))
    return reply(NoticeList(await inmate_records.notices(request.app[DB], who.id)))


_ADMIN = "admin"
ROUTES = [
    Route(
        "GET",
        "/admin/inmates",
        list_register,
        "The inmate register (prison=, status= narrow it; after= pages on)",
        _ADMIN,
        query=RegisterQuery,
        reply=RegisterList,
        errors=(400, 401, 403),
    ),
    Route(
        "POST",
        "/admin/inmates",
        add_inmate,
        "Add an inmate to a prison's register (audited)",
        _ADMIN,
        body=NewInmate,
        reply=RegisteredInmate,
        status=201,
        errors=(400, 401, 403, 409, 413),
    ),
    Route(
        "POST",
        "/admin/prisons/{id}/inmates/import",
        import_register,
        "Import the CSV a prison's records system exported (text/csv body: number and name"
        " columns, UTF-8 or GB18030): per line added, updated, unchanged or error; dry_run="
        "true (the default) writes nothing, dry_run=false applies and audits each change",
        _ADMIN,
        query=ImportQuery,
        reply=ImportReport,
        errors=(400, 401, 403, 404, 413),
    ),
    Route(
        "POST",
        "/admin/inmates/{id}/transfer",
        transfer_inmate,
        "Transfer an inmate to another prison with its family links and threads (audited;"
        " its verified relatives get a notice)",
        _ADMIN,
        body=TransferRequest,
        reply=MovedOut,
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Route(
        "POST",
        "/admin/inmates/{id}/release",
        release_inmate,
        "Release an inmate: its family links end (link events and a notice to each relative),"
        " its open threads are resolved (audited)",
        _ADMIN,
        body=EndRequest,
        reply=MovedOut,
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Route(
        "POST",
        "/admin/inmates/{id}/archive",
        archive_inmate,
        "Archive an inmate's record: as a release (links end, relatives told), audited",
        _ADMIN,
        body=EndRequest,
        reply=MovedOut,
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Route(
        "GET",
        "/notices",
        list_notices,
        "A relative's notices (a link ended by a release, an inmate transferred), newest first",
        "relative (its own)",
        reply=NoticeList,
        errors=(401, 403),
    ),
]
