"""The duty desk (issue 5): duty, the queue, threads and their life cycle, canned replies.

- A thread is the conversation between one relative and one prison about one inmate. A
  relative's question opens a cycle (``waiting``; migration 0003's trigger, in the message's
  own transaction, announced by the send path); an officer claims it (``active``, exclusive:
  two claiming at once, one wins and the other gets 409 naming the holder), may hand it over
  to a colleague with a note, and resolves it; the relative may then rate the answer once.
  Each change is audited in the same transaction (``storage/desk.py``) and sent as a
  ``conversation`` event to the prison's staff (with the hand-over note) and to the relative
  (without it, and only while it may still see the thread).
- History pages never include notes for a relative, whatever the page's bounds; a
  supervisor's history read is itself audited (``conversation.opened``, via ``history``).
- Messages sent over REST take the socket's path (``SendPath.post``: same group commit, same
  publish, same cycle announcement) under the same rules and the same per-user rate.
- ``PUT /duty`` stores the flag and tells every process (``Gateway.duty_changed``): an
  officer counts on duty while it said so and has a socket open (``server/duty.py``).

- An officer claims, resolves and is handed a thread only while on duty (409 ``off_duty``);
  going off duty returns every thread it holds to the queue (``released``, via ``off_duty``),
  so none is left held by someone who left. ``POST /conversations/{id}/release`` returns one
  to the queue with an optional note. The bureau admin lists every prison's threads (never
  their messages) and transfers, releases or resolves one whoever holds it.

Error codes: the stable ones; 409 ``conflict`` names the holder of a thread, or says why the
state does not allow the change (or that the cycle is rated already, or the short name taken);
409 ``off_duty``: the officer acting, or the colleague named, is not on duty.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from channels.broker import BrokerUnavailable
from channels.events import attachment_info
from channels.protocol import MAX_ATTACHMENT_IDS, AttachmentInfo, ConversationEvent
from domain.records import ConversationState, Message, MessageKind, NewMessage
from server import attaching, openings
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
from server.audience import ThreadChanged, tell
from server.keys import DB, GATEWAY, HUB, ROSTER, ROUTER, SEND_PATH, SETTINGS
from server.policy import (
    Principal,
    ThreadChange,
    acts_for_any_holder,
    audits_opening,
    canned_prisons,
    check_canned,
    check_duty,
    check_open_thread,
    check_thread,
    desk_duty_required,
    duty_names_shown,
    duty_scope,
    history_floor,
    shows_staff_side,
    signed_in,
    thread_scope,
)
from storage import consent, desk, links, messages, prisons, thread_list
from storage.errors import Conflict, NotFound, StoreUnavailable
from storage.sql import utcnow

ShortName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[^\s/][^\s]*$")
]  # one word, as typed after "/" in the console
CannedBody = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"\S")]
Note = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=r"\S")]
Comment = Annotated[str, msgspec.Meta(max_length=1000)]
Cid = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
StateFilter = Literal["new", "waiting", "active", "resolved", "open", "all"]

log = logging.getLogger(__name__)

OPEN: tuple[ConversationState, ...] = ("waiting", "active")


# bodies and queries


class DutyBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    on_duty: bool
    # going off duty: the colleague (on duty) to hand the threads I hold to, else the queue;
    # and a hand-over note for whoever takes them (staff only)
    hand_to: Id | None = None
    note: Note | None = None


class ThreadsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: StateFilter | None = None  # staff default: "open" (waiting, active); relatives: all
    prison: Id | None = None
    limit: Limit = 100
    # issue 18: a page's `next`, and filters (storage/thread_list.py)
    cursor: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    inmate: Annotated[str, msgspec.Meta(max_length=40)] | None = None  # number, its start
    relative: Annotated[str, msgspec.Meta(max_length=100)] | None = None  # name, any part
    since: date | None = None  # last activity on or after this day (UTC)
    until: date | None = None  # last activity on or before this day (UTC)


class OpenThread(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    inmate_id: Id


class HistoryQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    after: Seq | None = None
    before: Seq | None = None
    limit: Limit = 50


class SendBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``body``, or ``canned`` (the short name of one of the prison's canned replies)."""

    body: str | None = None
    canned: ShortName | None = None
    kind: Literal["text", "note"] = "text"
    cid: Cid | None = None  # the client's id: sending the same cid again stores nothing new
    # uploaded files sent with it (POST /attachments); the body may then be empty
    attachments: Annotated[list[Id], msgspec.Meta(max_length=MAX_ATTACHMENT_IDS)] = []


class TransferBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    officer_id: Id
    note: Note


class ReleaseBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    note: Note | None = None  # for whoever takes it next (staff only)


class RateBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: Comment = ""


class CannedBodyIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    short_name: ShortName
    body: CannedBody
    prison_id: Id | None = None  # needed only by an officer of several prisons


class CannedEdit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    short_name: ShortName
    body: CannedBody


class CannedQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prison: Id | None = None


# replies


class PersonOut(msgspec.Struct, frozen=True):
    id: int
    name: str


class ThreadOut(msgspec.Struct, frozen=True):
    id: int
    state: ConversationState
    prison_id: int
    inmate_id: int
    inmate_name: str
    relative: PersonOut
    cycle: int
    assigned_officer: PersonOut | None
    waiting_since: datetime | None  # start of the current wait, while waiting or active
    wait_s: float | None  # seconds waited for the first answer (so far, if unanswered)
    first_reply_at: datetime | None
    rating: int | None  # the current cycle's
    last_seq: int
    created_at: datetime
    updated_at: datetime
    handover_note: str | msgspec.UnsetType | None = msgspec.UNSET  # staff only
    # the highest seq read by someone other than the caller (GET only): read receipts that
    # outlive a reload
    read_seq: int | msgspec.UnsetType = msgspec.UNSET
    # the highest seq the caller itself read, on any device (GET only): where its unread start
    own_read_seq: int | msgspec.UnsetType = msgspec.UNSET
    # a relative's view of a family case's shared thread it is a member of (issue 15): True,
    # with the seq it reads after; its own threads leave both out
    shared: bool | msgspec.UnsetType = msgspec.UNSET
    joined_seq: int | msgspec.UnsetType = msgspec.UNSET


class ThreadList(msgspec.Struct, frozen=True):
    conversations: list[ThreadOut]
    next: str | None = None  # pass as `cursor` for the next page; None: no more


class SenderOut(msgspec.Struct, frozen=True):
    id: int
    role: str
    name: str


class MessageOut(msgspec.Struct, frozen=True):
    conv: int
    seq: int
    id: int
    sender: SenderOut
    kind: MessageKind
    body: str
    at: datetime
    cid: str
    attachments: list[AttachmentInfo] = []


class MessagePage(msgspec.Struct, frozen=True):
    messages: list[MessageOut]
    last_seq: int  # the thread's latest seq when read (notes included), to resume from


class PrisonDutyOut(msgspec.Struct, frozen=True):
    prison_id: int
    on_duty: int
    officers: list[PersonOut] | msgspec.UnsetType = msgspec.UNSET  # staff only


class DutyOut(msgspec.Struct, frozen=True):
    prisons: list[PrisonDutyOut]
    on_duty: bool | msgspec.UnsetType = msgspec.UNSET  # an officer: whether it said so


class DutySet(msgspec.Struct, frozen=True):
    on_duty: bool
    changed: bool


class CannedOut(msgspec.Struct, frozen=True):
    id: int
    prison_id: int
    short_name: str
    body: str


class CannedList(msgspec.Struct, frozen=True):
    canned: list[CannedOut]


def thread_out(
    who: Principal,
    thread: desk.Thread,
    now: datetime,
    read_seq: int | msgspec.UnsetType = msgspec.UNSET,
    own_read_seq: int | msgspec.UnsetType = msgspec.UNSET,
) -> ThreadOut:
    started, replied = thread.wait_started_at, thread.first_reply_at
    open_ = thread.state in OPEN
    if started is None:
        wait_s = None
    elif replied is not None:
        wait_s = (replied - started).total_seconds()
    elif open_:
        wait_s = max(0.0, (now - started).total_seconds())
    else:
        wait_s = None  # resolved without an answer
    officer = thread.assigned_officer_id
    return ThreadOut(
        id=thread.id,
        state=thread.state,
        prison_id=thread.prison_id,
        inmate_id=thread.inmate_id,
        inmate_name=thread.inmate_name,
        relative=PersonOut(thread.relative_id, thread.relative_name),
        cycle=thread.cycle,
        assigned_officer=(
            None if officer is None else PersonOut(officer, thread.assigned_officer_name or "")
        ),
        waiting_since=started if open_ else None,
        wait_s=wait_s,
        first_reply_at=replied,
        rating=thread.rating,
        last_seq=thread.last_seq,
        created_at=thread.created_at,
        updated_at=thread.updated_at,
        handover_note=(thread.handover_note or None) if shows_staff_side(who) else msgspec.UNSET,
        read_seq=read_seq,
        own_read_seq=own_read_seq,
        **_membership(who, thread.id),
    )


def _membership(who: Principal, conv_id: int) -> dict[str, Any]:
    joined = dict(who.family_joins).get(conv_id)
    return {} if joined is None else {"shared": True, "joined_seq": joined}


def message_out(message: Message) -> MessageOut:
    return MessageOut(
        conv=message.conversation_id,
        seq=message.seq,
        id=message.id,
        sender=SenderOut(message.sender_id, message.sender_role, message.sender_name),
        kind=message.kind,
        body=message.body,
        at=message.created_at,
        cid=message.cid,
        attachments=[attachment_info(a) for a in message.attachments],
    )


def canned_out(canned: desk.Canned) -> CannedOut:
    return CannedOut(canned.id, canned.prison_id, canned.short_name, canned.body)


# helpers


async def _thread(request: web.Request) -> desk.Thread | None:
    try:
        return await desk.thread(request.app[DB], path_id(request))
    except NotFound:
        return None


async def _authorized(
    request: web.Request,
    action: Literal["read", "claim", "transfer", "resolve", "release", "rate"],
) -> tuple[Principal, desk.Thread]:
    who = signed_in(await principal(request))
    thread = await _thread(request)
    who = check_thread(who, thread.conversation if thread else None, action)
    assert thread is not None  # check_thread refused a missing thread
    return who, thread


@contextmanager
def _conflicts() -> Iterator[None]:
    """A life-cycle change the thread's state refuses: 409, naming who holds it if anyone."""
    try:
        yield
    except desk.Held as held:
        raise ApiError(
            409,
            "conflict",
            f"{held.holder_name} (officer {held.holder_id}) has this conversation",
        ) from None
    except desk.WrongState as wrong:
        raise ApiError(409, "conflict", str(wrong)) from None
    except desk.OffDuty as off:
        raise ApiError(409, "off_duty", str(off)) from None


async def announce(
    app: web.Application,
    event: Literal["claimed", "transferred", "resolved", "released"],
    thread: desk.Thread,
    by: int | None,
    note: str | None = None,
) -> None:
    """The change, told as the policy says (``thread_change_audience``): the prison's staff
    with the note, the relative without it while it is still verified for the inmate (read
    here, after the change)."""
    frame = ConversationEvent(
        event=event,
        conv=thread.id,
        state=thread.state,
        officer=thread.assigned_officer_id,
        by=by,
        note=note,
        inmate=thread.inmate_id,
        relative=thread.relative_id,
        cycle=thread.cycle,
        waiting_since=thread.wait_started_at if thread.state in OPEN else None,
    )
    try:
        verified = await links.verified_inmates(app[DB], thread.relative_id)
        readers = frozenset(await consent.thread_readers(app[DB], thread.id))
    except StoreUnavailable:  # the change is committed: answer it; the relative re-reads
        log.warning("conversation event not sent to the relative", extra={"conv": thread.id})
        verified, readers = frozenset(), frozenset()
    change = ThreadChange(thread.conversation, event, relative_verified=verified, readers=readers)
    tell(app[HUB], ThreadChanged(change, frame))
    if event != "claimed" and ROUTER in app:  # capacity may have freed: auto-assignment
        app[ROUTER].nudge(thread.prison_id)


# duty


async def get_duty(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    store, roster = request.app[DB], request.app[ROSTER]
    role = who.user.role
    scope = duty_scope(who)
    shown = scope if scope is not None else tuple(p.id for p in await prisons.prisons(store))
    names = duty_names_shown(who)
    rows = []
    try:
        for prison in shown:
            now = await roster.now(prison, staff=names)
            officers = [PersonOut(o.id, o.name) for o in now.officers or []]
            rows.append(PrisonDutyOut(prison, now.on_duty, officers if names else msgspec.UNSET))
    except BrokerUnavailable:
        raise ApiError(503, "unavailable", "presence is unavailable; try again") from None
    said = await desk.said_on_duty(store, who.id) if role == "officer" else msgspec.UNSET
    return reply(DutyOut(rows, said))


async def put_duty(request: web.Request) -> web.Response:
    who = check_duty(await principal(request))
    wanted = await body(request, DutyBody)
    if wanted.on_duty and (wanted.hand_to is not None or wanted.note is not None):
        raise invalid("hand_to", "hand_to and note go with going off duty")
    note = wanted.note.strip() if wanted.note else None
    try:
        with _conflicts():
            change = await desk.change_duty(
                request.app[DB],
                who.id,
                who.user.prison_ids,
                wanted.on_duty,
                utcnow(),
                hand_to=wanted.hand_to,
                note=note,
            )
    except desk.NotAnOfficer:
        raise invalid("hand_to", "not another officer of this prison") from None
    request.app[GATEWAY].duty_changed(who.id)  # every process, even unchanged
    for thread in change.released:  # back in the queue: told like any release
        await announce(request.app, "released", thread, who.id, note)
    for thread in change.handed:
        await announce(request.app, "transferred", thread, who.id, note)
    return reply(DutySet(wanted.on_duty, change.changed))


# threads


async def list_threads(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    wanted = query(request, ThreadsQuery)
    scope = thread_scope(who, wanted.prison)
    state = wanted.state or ("all" if scope.relative_id is not None else "open")
    states: tuple[ConversationState, ...] | None = (
        None if state == "all" else OPEN if state == "open" else (state,)
    )
    if wanted.since and wanted.until and wanted.since > wanted.until:
        raise invalid("since", "since must not be after until")
    filters = thread_list.Filters(
        relative_id=scope.relative_id,
        prison_ids=scope.prison_ids,
        inmate_ids=scope.inmate_ids,
        states=states,
        inmate_number=(wanted.inmate or "").strip() or None,
        relative_name=(wanted.relative or "").strip() or None,
        since=wanted.since,
        until=wanted.until,
    )
    try:
        found, following = await thread_list.page(
            request.app[DB], filters, cursor=wanted.cursor, limit=wanted.limit
        )
    except thread_list.BadCursor as exc:
        raise invalid("cursor", str(exc)) from None
    now = utcnow()
    ids = [t.id for t in found]
    read = await desk.read_by_others(request.app[DB], ids, who.id)
    own = await desk.read_by(request.app[DB], ids, who.id)
    return reply(
        ThreadList(
            [thread_out(who, t, now, read.get(t.id, 0), own.get(t.id, 0)) for t in found],
            following,
        )
    )


async def open_thread(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    wanted = await body(request, OpenThread)
    who = check_open_thread(who, wanted.inmate_id)
    try:
        thread, created = await desk.open_thread(
            request.app[DB], who.id, wanted.inmate_id, utcnow()
        )
    except NotFound:
        raise ApiError(404, "not_found", "no such inmate") from None
    return reply(thread_out(who, thread, utcnow()), 201 if created else 200)


async def get_thread(request: web.Request) -> web.Response:
    who, thread = await _authorized(request, "read")
    read = await desk.read_by_others(request.app[DB], [thread.id], who.id)
    own = await desk.read_by(request.app[DB], [thread.id], who.id)
    return reply(thread_out(who, thread, utcnow(), read.get(thread.id, 0), own.get(thread.id, 0)))


async def history(request: web.Request) -> web.Response:
    who, thread = await _authorized(request, "read")
    wanted = query(request, HistoryQuery)
    store = request.app[DB]
    if audits_opening(who):  # audited before anything is shown
        await openings.opened(store, request.app[HUB], who.id, thread, "history", utcnow())
    page = await messages.messages(
        store,
        thread.id,
        after=wanted.after,
        before=wanted.before,
        limit=wanted.limit,
        include_notes=shows_staff_side(who),
        floor=history_floor(who, thread.conversation),
    )
    last = max([thread.last_seq, *(m.seq for m in page)])  # read before the page
    return reply(MessagePage([message_out(m) for m in page], last))


async def send(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    thread = await _thread(request)
    form = await body(request, SendBody)
    action: Literal["send", "note"] = "note" if form.kind == "note" else "send"
    who = check_thread(who, thread.conversation if thread else None, action)
    assert thread is not None
    store, settings = request.app[DB], request.app[SETTINGS]
    both = form.body is not None and form.canned is not None
    if both or (form.body is None and form.canned is None and not form.attachments):
        raise invalid("body", "send either a body or the short name of a canned reply")
    if form.canned is not None:
        canned_prisons(who, thread.prison_id)  # officers (and supervisors, who cannot send)
        try:
            text = (await desk.canned_by_name(store, thread.prison_id, form.canned)).body
        except NotFound:
            raise invalid("canned", f"no canned reply named {form.canned!r} here") from None
    else:
        text = form.body or ""
    if not text.strip() and not form.attachments:
        raise invalid("body", "the body is empty")
    if len(text) > settings.max_body_chars:
        raise invalid("body", f"the body exceeds {settings.max_body_chars} characters")
    path = request.app[SEND_PATH]
    wait = path.admit(who.id)
    if wait is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"sending too fast; retry in {wait:.1f} s",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )
    user = who.user
    cid = form.cid or f"rest-{secrets.token_hex(8)}"
    try:
        attached = await attaching.bind(
            store,
            owner_id=user.id,
            conversation_id=thread.id,
            cid=cid,
            ids=form.attachments,
            limit=settings.max_attachments,
        )
    except attaching.AttachRefused as refused:
        raise ApiError(400, refused.code, refused.message, field="attachments") from None
    item = NewMessage(thread.id, user.id, user.role, cid, text, form.kind, user.name, attached)
    try:
        message = await path.post(item, conversation=thread.conversation)
    except NotFound:
        raise ApiError(404, "not_found", "no such conversation") from None
    return reply(message_out(message), 201)


async def claim(request: web.Request) -> web.Response:
    who, thread = await _authorized(request, "claim")
    with _conflicts():
        claimed, changed = await desk.claim(
            request.app[DB],
            thread.id,
            who.id,
            utcnow(),
            require_duty=desk_duty_required(who),
        )
    if changed:
        await announce(request.app, "claimed", claimed, who.id)
    return reply(thread_out(who, claimed, utcnow()))


async def transfer(request: web.Request) -> web.Response:
    who, thread = await _authorized(request, "transfer")
    form = await body(request, TransferBody)
    try:
        with _conflicts():
            moved = await desk.transfer(
                request.app[DB],
                thread.id,
                who.id,
                form.officer_id,
                form.note,
                utcnow(),
                require_duty=True,  # whoever hands it over, to a colleague on duty
                reassign=acts_for_any_holder(who),
            )
    except desk.NotAnOfficer:
        raise invalid("officer_id", "not another officer of this prison") from None
    await announce(request.app, "transferred", moved, who.id, form.note)
    return reply(thread_out(who, moved, utcnow()))


async def resolve(request: web.Request) -> web.Response:
    who, thread = await _authorized(request, "resolve")
    with _conflicts():
        done = await desk.resolve(
            request.app[DB],
            thread.id,
            who.id,
            utcnow(),
            require_duty=desk_duty_required(who),
            any_holder=acts_for_any_holder(who),
        )
    await announce(request.app, "resolved", done, who.id)
    return reply(thread_out(who, done, utcnow()))


async def release(request: web.Request) -> web.Response:
    who, thread = await _authorized(request, "release")
    form = await body(request, ReleaseBody) if request.can_read_body else ReleaseBody()
    with _conflicts():
        back = await desk.release(
            request.app[DB],
            thread.id,
            who.id,
            utcnow(),
            note=form.note.strip() if form.note else None,
            any_holder=acts_for_any_holder(who),
        )
    await announce(request.app, "released", back, who.id, back.handover_note)
    return reply(thread_out(who, back, utcnow()))


async def rate(request: web.Request) -> web.Response:
    who, thread = await _authorized(request, "rate")
    form = await body(request, RateBody)
    with _conflicts():
        rated = await desk.rate(
            request.app[DB], thread.id, who.id, form.rating, form.comment, utcnow()
        )
    return reply(thread_out(who, rated, utcnow()))


# canned replies


async def list_canned(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    prisons = canned_prisons(who, query(request, CannedQuery).prison)
    found = await desk.canned_replies(request.app[DB], prisons)
    return reply(CannedList([canned_out(c) for c in found]))


async def _canned(request: web.Request) -> tuple[Principal, desk.Canned]:
    who = signed_in(await principal(request))
    canned_prisons(who)  # roles without canned replies: forbidden before any lookup
    try:
        found: desk.Canned | None = await desk.canned_reply(request.app[DB], path_id(request))
    except NotFound:
        found = None
    who = check_canned(who, found.prison_id if found else None)
    assert found is not None
    return who, found


def _taken(short_name: str) -> ApiError:
    return ApiError(409, "conflict", f"this prison already has a canned reply {short_name!r}")


async def add_canned(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    form = await body(request, CannedBodyIn)
    mine = canned_prisons(who)
    prison = form.prison_id if form.prison_id is not None else (mine[0] if mine else None)
    if prison is None or (form.prison_id is None and len(mine) > 1):
        raise invalid("prison_id", "name the prison")
    who = check_canned(who, prison)
    try:
        canned = await desk.add_canned(
            request.app[DB], prison, form.short_name, form.body, who.id, utcnow()
        )
    except Conflict:
        raise _taken(form.short_name) from None
    return reply(canned_out(canned), 201)


async def edit_canned(request: web.Request) -> web.Response:
    who, canned = await _canned(request)
    form = await body(request, CannedEdit)
    try:
        edited = await desk.update_canned(
            request.app[DB], canned.id, form.short_name, form.body, who.id, utcnow()
        )
    except Conflict:
        raise _taken(form.short_name) from None
    except NotFound:
        raise ApiError(404, "not_found", "no such canned reply") from None
    return reply(canned_out(edited))


async def delete_canned(request: web.Request) -> web.Response:
    who, canned = await _canned(request)
    try:
        await desk.delete_canned(request.app[DB], canned.id, who.id, utcnow())
    except NotFound:
        raise ApiError(404, "not_found", "no such canned reply") from None
    return web.Response(status=204)


_Life = (401, 403, 404, 409)

ROUTES: list[Route] = [
    Route(
        "GET",
        "/duty",
        get_duty,
        "Who is on duty now in my prisons (staff: names; relatives: how many)",
        "signed in: staff their prisons, the admin every prison, a relative its inmates'",
        reply=DutyOut,
        errors=(401,),
    ),
    Route(
        "PUT",
        "/duty",
        put_duty,
        "Go on or off duty (audited); counted on duty while a socket is open. Going off duty"
        " hands every thread I hold to hand_to (an officer on duty; 409 off_duty otherwise) or"
        " back to the queue, with the note",
        "officer",
        body=DutyBody,
        reply=DutySet,
        errors=(400, 401, 403, 409, 413),
    ),
    Route(
        "GET",
        "/conversations",
        list_threads,
        "Threads: a relative its own; staff the queue of their prisons (default the open "
        "queue, waiting then active, oldest wait first, with waiting_since and wait_s);"
        " paged (pass `next` as `cursor`), filtered by state, inmate number (its start),"
        " relative name (any part) and last activity between since and until (days, UTC)",
        "relative; officer or supervisor (their prisons)",
        query=ThreadsQuery,
        reply=ThreadList,
        errors=(400, 401, 403),
    ),
    Route(
        "POST",
        "/conversations",
        open_thread,
        "Open (201) or get back (200) the thread about one of my verified inmates",
        "relative verified for the inmate",
        body=OpenThread,
        reply=ThreadOut,
        status=201,
        errors=(400, 401, 403, 404, 413),
    ),
    Route(
        "GET",
        "/conversations/{id}",
        get_thread,
        "One thread",
        "its relative; officers and supervisors of its prison",
        reply=ThreadOut,
        errors=(401, 404),
    ),
    Route(
        "GET",
        "/conversations/{id}/messages",
        history,
        "History by seq: the first `limit` after `after`, else the last before `before` (or "
        "the latest); notes never to relatives; a supervisor's read is audited",
        "its relative; officers and supervisors of its prison",
        query=HistoryQuery,
        reply=MessagePage,
        errors=(400, 401, 404),
    ),
    Route(
        "POST",
        "/conversations/{id}/messages",
        send,
        "Send a message (or a canned reply by short name, or a private note) over REST, "
        "as on the socket; the same cid twice stores one message",
        "its relative (text); officers of its prison (text, note, canned)",
        body=SendBody,
        reply=MessageOut,
        status=201,
        errors=(400, 401, 403, 404, 413, 429),
    ),
    Route(
        "POST",
        "/conversations/{id}/claim",
        claim,
        "Claim a waiting thread (exclusive: 409 `conflict` names the officer who has it;"
        " 409 `off_duty` when I am not on duty)",
        "officer of its prison, on duty",
        reply=ThreadOut,
        errors=_Life,
    ),
    Route(
        "POST",
        "/conversations/{id}/transfer",
        transfer,
        "Hand an active thread I hold to another officer of the prison on duty, with a note"
        " for staff (409 `conflict` if I do not hold it, `off_duty` if the colleague is not on"
        " duty); the admin reassigns any open thread",
        "officer of its prison holding it; admin",
        body=TransferBody,
        reply=ThreadOut,
        errors=(400, *_Life, 413),
    ),
    Route(
        "POST",
        "/conversations/{id}/resolve",
        resolve,
        "Resolve a waiting thread, or an active one I hold (409 `conflict` otherwise, 409"
        " `off_duty` when I am not on duty); the admin resolves any open thread",
        "officer of its prison, on duty; admin",
        reply=ThreadOut,
        errors=_Life,
    ),
    Route(
        "POST",
        "/conversations/{id}/release",
        release,
        "Return an active thread to the queue (waiting, held by nobody) with an optional note"
        " for staff; going off duty does this to every thread the officer holds",
        "officer of its prison holding it; admin (whoever holds it)",
        body=ReleaseBody,
        reply=ThreadOut,
        errors=(400, *_Life, 413),
    ),
    Route(
        "POST",
        "/conversations/{id}/rate",
        rate,
        "Rate the answer, 1-5 with a comment: once per cycle, after resolve (409 otherwise)",
        "its relative",
        body=RateBody,
        reply=ThreadOut,
        errors=(400, *_Life, 413),
    ),
    Route(
        "GET",
        "/canned",
        list_canned,
        "Canned replies of my prisons",
        "officer or supervisor (their prisons)",
        query=CannedQuery,
        reply=CannedList,
        errors=(400, 401, 403),
    ),
    Route(
        "POST",
        "/canned",
        add_canned,
        "Add a canned reply (short names are unique per prison: 409 `conflict`)",
        "officer of the prison",
        body=CannedBodyIn,
        reply=CannedOut,
        status=201,
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Route(
        "PUT",
        "/canned/{id}",
        edit_canned,
        "Change a canned reply (409 `conflict` if the short name is taken)",
        "officer of its prison",
        body=CannedEdit,
        reply=CannedOut,
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Route(
        "DELETE",
        "/canned/{id}",
        delete_canned,
        "Delete a canned reply",
        "officer of its prison",
        status=204,
        errors=(401, 403, 404),
    ),
]
