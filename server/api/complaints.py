"""Complaints to a prison's supervisors: file, list, read with history, move through states.

A verified relative files about a prison where it has a verified inmate; an officer files on
behalf of an inmate of its own prison. The reply (201) carries the reference
(``GM-2026-000123``) and the deadline (``Settings.complaint_days`` after filing).

Who sees a complaint, and who moves it, is ``server/policy.py`` (section "complaints and
announcements"). Each
state change carries a message to the complainant, is kept in the complaint's history and
audited in the same transaction (``storage/complaints.py``), and is told live as a
``complaint`` event to the complainant (a relative), the prison's supervisors and the admins,
each on its own user topic (``policy.complaint_recipients``). Never on a prison staff topic,
and never to an officer: an officer who filed on an inmate's behalf gets the 201 reply and
nothing after it, since a complaint may concern its colleagues.

Refusals you can contest (issue 15): a complaint may name the decision it is about
(``about: {kind: link|visit|complaint, id}``): a link rejected or revoked, a visit declined, a
complaint closed, each the complainant's own. Such a complaint goes to the decision's prison
(``prison_id`` may be left out) and needs no verified inmate, so a relative whose link was
refused still complains and reads the answer. Closing a complaint carries a published reason
code (``reason_code``, ``GET /reasons`` kind ``complaint.close``; ``other`` when none is
named, then the message says why). ``POST /complaints/{id}/escalate`` is the complainant's:
an answered complaint goes to the bureau once (409 ``not_answered``, 409
``already_escalated``); the admin then answers it.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from channels.protocol import ComplaintEvent
from domain.records import Conversation, Role
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
from server.api.reasons import ReasonCode, checked_reason
from server.audience import ComplaintChanged, tell
from server.keys import DB, HUB, SETTINGS
from server.policy import (
    ComplaintAction,
    ComplaintFacts,
    ComplaintFiling,
    DecisionFacts,
    Principal,
    check_complaint,
    check_complaint_filing,
    check_complaints_and_announcements,
    complaint_needs_inmate,
    complaint_scope,
    is_refusal,
    signed_in,
)
from storage import accounts, conversations, links, prisons, visits
from storage import complaints as stored
from storage.complaints import (
    AboutKind,
    Complaint,
    ComplaintScope,
    ComplaintState,
    NewComplaint,
)
from storage.errors import Conflict, NotFound
from storage.sql import Database, utcnow

ALREADY_ESCALATED = "already_escalated"
NOT_ANSWERED = "not_answered"
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=60, pattern=r"\S")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4000, pattern=r"\S")]


class About(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A decision that refused the complainant something."""

    kind: AboutKind  # link (rejected or revoked), visit (declined), complaint (closed)
    id: Id


class FileComplaint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    category: Category  # e.g. "conduct of staff", "visits", "health care", "money"
    body: Text
    prison_id: Id | None = None  # required unless ``about`` names a decision (its prison)
    conversation_id: Id | None = None  # a conversation of the complainant's, as reference
    inmate_id: Id | None = None  # required when an officer files on an inmate's behalf
    about: About | None = None  # the decision contested


class ComplaintTransition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: ComplaintState
    message: Text  # to the complainant, kept in the history
    reason_code: ReasonCode | None = None  # closing: GET /reasons kind complaint.close


class ComplaintEscalation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    message: Text  # why the answer does not settle it, to the bureau


class ComplaintAnswer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    message: Text


class ComplaintsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: ComplaintState | None = None
    overdue: bool | None = None
    prison: Id | None = None
    before: Id | None = None  # page: complaints with a smaller id
    limit: Limit = 100


class PersonOut(msgspec.Struct, frozen=True):
    id: int
    name: str
    role: Role


class ComplaintHistoryOut(msgspec.Struct, frozen=True, omit_defaults=True):
    state: ComplaintState
    message: str
    at: datetime
    by: PersonOut
    reason_code: str | None = None


class AboutOut(msgspec.Struct, frozen=True):
    kind: AboutKind
    id: int


class ComplaintOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str  # GM-2026-000123
    prison_id: int
    category: str
    body: str
    state: ComplaintState
    deadline: datetime
    overdue: bool  # deadline passed and neither answered nor closed
    escalated: bool  # escalated to the bureau at some point: the admin handles it
    on_behalf: bool  # filed by an officer on behalf of an inmate
    inmate_id: int | None
    conversation_id: int | None
    complainant: PersonOut
    created_at: datetime
    updated_at: datetime
    reason_code: str | None = None  # why it was closed (GET /reasons)
    about: AboutOut | None = None  # the decision it contests


class ComplaintDetail(ComplaintOut, frozen=True, kw_only=True):
    history: list[ComplaintHistoryOut]  # oldest first, from "received"


class ComplaintList(msgspec.Struct, frozen=True):
    complaints: list[ComplaintOut]


def complaint_out(complaint: Complaint, now: datetime) -> ComplaintOut:
    return ComplaintOut(
        id=complaint.id,
        reference=complaint.reference,
        prison_id=complaint.prison_id,
        category=complaint.category,
        body=complaint.body,
        state=complaint.state,
        deadline=complaint.deadline,
        overdue=complaint.overdue(now),
        escalated=complaint.escalated,
        on_behalf=complaint.on_behalf,
        inmate_id=complaint.inmate_id,
        conversation_id=complaint.conversation_id,
        complainant=PersonOut(
            complaint.complainant_id, complaint.complainant_name, complaint.complainant_role
        ),
        created_at=complaint.created_at,
        updated_at=complaint.updated_at,
        reason_code=complaint.reason_code,
        about=(
            None
            if complaint.about_kind is None or complaint.about_id is None
            else AboutOut(complaint.about_kind, complaint.about_id)
        ),
    )


async def complaint_detail(store: Database, complaint: Complaint, now: datetime) -> ComplaintDetail:
    history = [
        ComplaintHistoryOut(
            e.state,
            e.message,
            e.at,
            PersonOut(e.actor_id, e.actor_name, e.actor_role),
            e.reason_code,
        )
        for e in await stored.history(store, complaint.id)
    ]
    fields = msgspec.structs.asdict(complaint_out(complaint, now))
    return ComplaintDetail(**fields, history=history)


def facts(complaint: Complaint) -> ComplaintFacts:
    return ComplaintFacts(complaint.prison_id, complaint.complainant_id, complaint.escalated)


async def _tell(app: web.Application, complaint: Complaint, message: str) -> None:
    """The change, live, to those who may see it (never an officer): the candidates are read
    here, the policy chooses among them."""
    event = ComplaintEvent(
        id=complaint.id, reference=complaint.reference, state=complaint.state, message=message
    )
    store = app[DB]
    users = [await accounts.user(store, i) for i in await stored.candidates(store, complaint)]
    tell(app[HUB], ComplaintChanged(event, facts(complaint), users))


async def _decision(store: Database, about: About) -> DecisionFacts | None:
    """The decision a complaint names, as the policy needs it (``None``: there is none)."""
    try:
        if about.kind == "link":
            link = await links.link(store, about.id)
            refused = is_refusal("link", link.state)
            return DecisionFacts("link", link.relative_id, link.prison_id, refused)
        if about.kind == "visit":
            visit = await visits.visit(store, about.id)
            refused = is_refusal("visit", visit.state)
            return DecisionFacts("visit", visit.relative_id, visit.prison_id, refused)
        closed = await stored.complaint(store, about.id)
        refused = is_refusal("complaint", closed.state)
        return DecisionFacts("complaint", closed.complainant_id, closed.prison_id, refused)
    except NotFound:
        return None


async def _filing(
    store: Database, who: Principal, form: FileComplaint, prison_id: int
) -> ComplaintFiling:
    """What the complaint names, looked up for the policy."""
    inmate_prison = None
    if form.inmate_id is not None:
        with contextlib.suppress(NotFound):
            inmate_prison = (await prisons.inmate(store, form.inmate_id)).prison_id
    conversation: Conversation | None = None
    if form.conversation_id is not None:
        with contextlib.suppress(NotFound):
            conversation = await conversations.conversation(store, form.conversation_id)
    followed = set(who.followed_prisons) if who.user.role == "relative" else set()
    return ComplaintFiling(
        prison_id=prison_id,
        inmate_id=form.inmate_id,
        inmate_prison_id=inmate_prison,
        conversation_id=form.conversation_id,
        conversation=conversation,
        followed_prisons=frozenset(followed),
        about_named=form.about is not None,
        about=None if form.about is None else await _decision(store, form.about),
    )


async def file_complaint(request: web.Request) -> web.Response:
    who = check_complaints_and_announcements(await principal(request), "complaint.file")
    form = await body(request, FileComplaint)
    if complaint_needs_inmate(who) and form.inmate_id is None:
        raise invalid("inmate_id", "an officer files a complaint on behalf of a named inmate")
    store, settings = request.app[DB], request.app[SETTINGS]
    prison_id = form.prison_id
    if form.about is not None and prison_id is None:
        decision = await _decision(store, form.about)
        prison_id = None if decision is None else decision.prison_id
        if prison_id is None:  # the same answer as another relative's decision
            raise ApiError(404, "not_found", "no such decision")
    if prison_id is None:
        raise invalid("prison_id", "name the prison, or the decision complained about")
    filing = await _filing(store, who, form, prison_id)
    check_complaint_filing(who, filing)
    inmate_id = form.inmate_id
    conv = filing.conversation
    if conv is not None:
        if inmate_id is not None and conv.inmate_id != inmate_id:
            raise invalid("conversation_id", "this conversation is about another inmate")
        inmate_id = conv.inmate_id
    now = utcnow()
    try:
        complaint = await stored.file_complaint(
            store,
            NewComplaint(
                prison_id=prison_id,
                complainant_id=who.id,
                category=form.category.strip(),
                body=form.body,
                inmate_id=inmate_id,
                conversation_id=form.conversation_id,
                about_kind=None if form.about is None else form.about.kind,
                about_id=None if form.about is None else form.about.id,
            ),
            now=now,
            zone=settings.zone,
            days=settings.complaint_days,
        )
    except NotFound:
        raise ApiError(404, "not_found", "no such prison") from None
    await _tell(request.app, complaint, "")
    return reply(complaint_out(complaint, now), 201)


async def list_complaints(request: web.Request) -> web.Response:
    rule = complaint_scope(await principal(request))
    wanted = query(request, ComplaintsQuery)
    now = utcnow()
    found = await stored.complaints(
        request.app[DB],
        ComplaintScope(rule.complainant_id, rule.prison_ids),
        now=now,
        state=wanted.state,
        overdue=wanted.overdue,
        prison_id=wanted.prison,
        before=wanted.before,
        limit=wanted.limit,
    )
    return reply(ComplaintList([complaint_out(c, now) for c in found]))


async def _authorized(request: web.Request, action: ComplaintAction) -> tuple[Principal, Complaint]:
    who = signed_in(await principal(request))
    try:
        complaint: Complaint | None = await stored.complaint(request.app[DB], path_id(request))
    except NotFound:
        complaint = None
    check_complaint(who, None if complaint is None else facts(complaint), action)
    assert complaint is not None
    return who, complaint


async def get_complaint(request: web.Request) -> web.Response:
    _, complaint = await _authorized(request, "read")
    return reply(await complaint_detail(request.app[DB], complaint, utcnow()))


async def _move(
    request: web.Request,
    complaint: Complaint,
    who: Principal,
    to: ComplaintState,
    message: str,
    reason_code: str | None = None,
) -> web.Response:
    store = request.app[DB]
    now = utcnow()
    try:
        moved = await stored.transition(
            store,
            complaint.id,
            to,
            actor_id=who.id,
            message=message,
            now=now,
            reason_code=reason_code,
        )
    except Conflict:
        current = await stored.complaint(store, complaint.id)
        raise ApiError(
            409, "conflict", f"a complaint that is {current.state} cannot become {to}"
        ) from None
    await _tell(request.app, moved, message)
    return reply(await complaint_detail(store, moved, now))


_ACTION_FOR: dict[str, ComplaintAction] = {"escalated": "escalate", "answered": "answer"}


async def transition_complaint(request: web.Request) -> web.Response:
    signed_in(await principal(request))  # 401 before a body is even read
    form = await body(request, ComplaintTransition)
    who, complaint = await _authorized(request, _ACTION_FOR.get(form.state, "transition"))
    code: str | None = None
    if form.state == "closed":  # a refusal: a published reason, the message says more
        code, _ = checked_reason("complaint.close", form.reason_code, form.message)
    elif form.reason_code is not None:
        raise invalid("reason_code", "only closing a complaint takes a reason code")
    return await _move(request, complaint, who, form.state, form.message, code)


async def escalate_complaint(request: web.Request) -> web.Response:
    """The complainant takes its answered complaint to the bureau, once."""
    signed_in(await principal(request))  # 401 before a body is even read
    form = await body(request, ComplaintEscalation)
    who, complaint = await _authorized(request, "appeal")
    store = request.app[DB]
    now = utcnow()
    try:
        moved = await stored.transition(
            store,
            complaint.id,
            "escalated",
            actor_id=who.id,
            message=form.message,
            now=now,
            only_from=frozenset({"answered"}),
        )
    except Conflict as conflict:
        if conflict.what == "already_escalated":
            raise ApiError(
                409, ALREADY_ESCALATED, "you escalated this complaint already: once only"
            ) from None
        raise ApiError(
            409, NOT_ANSWERED, "a complaint is escalated once it has been answered"
        ) from None
    await _tell(request.app, moved, form.message)
    return reply(await complaint_detail(store, moved, now))


async def answer_complaint(request: web.Request) -> web.Response:
    who, complaint = await _authorized(request, "answer")
    form = await body(request, ComplaintAnswer)
    return await _move(request, complaint, who, "answered", form.message)


_WHO_MOVES = "the prison's supervisors; the admin once escalated"
ROUTES = [
    Route(
        "POST",
        "/complaints",
        file_complaint,
        "File a complaint about a prison (verified relative: a prison of its verified inmates;"
        " officer: on behalf of an inmate of its own prison, inmate_id required), or about a"
        " decision that refused the relative something: about {kind: link|visit|complaint,"
        " id} (a rejected or revoked link, a declined visit, a closed complaint; prison_id"
        " may be left out). Replies the reference (GM-2026-000123) and the deadline;"
        " audited; told live to supervisors",
        "relative with a verified inmate in the prison, or about its own refused decision"
        " (any link state); officer of the prison",
        body=FileComplaint,
        reply=ComplaintOut,
        status=201,
        errors=(400, 401, 403, 404, 413),
    ),
    Route(
        "GET",
        "/complaints",
        list_complaints,
        "List complaints, newest first: a relative its own, a supervisor its prisons', the"
        " admin all; officers none (403). Filter by state, overdue, prison; page with before",
        "relative, supervisor, admin (scoped)",
        query=ComplaintsQuery,
        reply=ComplaintList,
        errors=(400, 401, 403),
    ),
    Route(
        "GET",
        "/complaints/{id}",
        get_complaint,
        "One complaint with its history (every state with its message)",
        "its relative complainant; the prison's supervisors; admin. Never an officer",
        reply=ComplaintDetail,
        errors=(401, 404),
    ),
    Route(
        "POST",
        "/complaints/{id}/transition",
        transition_complaint,
        "Move a complaint (received -> in_review -> answered -> closed; escalated from"
        " received, in_review or answered) with a message to the complainant; audited and"
        " told live. Closing takes reason_code (GET /reasons, kind complaint.close; other"
        " when none). A move that does not exist from the current state: 409",
        _WHO_MOVES,
        body=ComplaintTransition,
        reply=ComplaintDetail,
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Route(
        "POST",
        "/complaints/{id}/answer",
        answer_complaint,
        "Answer a complaint (a transition to answered) with a message to the complainant",
        _WHO_MOVES,
        body=ComplaintAnswer,
        reply=ComplaintDetail,
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Route(
        "POST",
        "/complaints/{id}/escalate",
        escalate_complaint,
        "The complainant escalates its answered complaint to the bureau, once, with a"
        " message; the admin answers it then. Audited, told live. 409 not_answered (not"
        " answered now), 409 already_escalated (a second escalation)",
        "its relative complainant",
        body=ComplaintEscalation,
        reply=ComplaintDetail,
        errors=(400, 401, 403, 404, 409, 413),
    ),
]
