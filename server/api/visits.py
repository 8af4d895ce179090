"""Visits: a verified relative requests a slot, an officer of the prison decides.

- ``POST /visits {inmate_id, slot_start, visitors, visitor_names?}``: checked against the
  prison's rules and the inmate's card in the transaction that stores it
  (``storage.visits.request_visit``). A broken rule is a 400 whose code names it:
  ``visit_in_past``, ``visit_rule_days``, ``visit_rule_hours``, ``visit_rule_visitors``,
  ``visit_not_eligible`` (before the card's next allowed visit date), ``visit_rule_frequency``
  (fewer than ``min_days_between`` local days from an approved visit of the inmate). One
  pending request per relative and inmate (409 ``conflict``). The prison's staff are told
  live: a ``visit`` frame on the prison's staff topic.
- ``GET /visits``: a relative its own requests (for inmates it is verified for); officers and
  supervisors their prisons'; ``state``, ``inmate``, ``prison`` filter; soonest slot first.
- ``POST /visits/{id}/approve``, ``/decline {reason_code, reason?}`` (``GET /reasons``):
  officers of the prison, from pending only (else 409 ``conflict``). An approval re-checks
  what may have changed since the request (409 ``visit_in_past``, 409
  ``visit_rule_frequency`` when another visit of the inmate was approved meanwhile).
  Audited; a ``visit`` frame goes to the relative's user topic and to the prison's staff
  topic. Approved visits show on the inmate's card.
- ``POST /visits/{id}/cancel``: the relative who asked withdraws a pending request, or an
  approved one whose slot has not begun (else 409 ``conflict``); audited, told like a decision.
- ``PUT /prisons/{id}/visit-rules``: officers of the prison or the admin replace the rules
  (``VisitRules``), audited as ``prison.visit_rules_set`` with before and after.

Days and hours are the bureau's local time (``Settings.timezone``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from domain.records import Inmate, Visit, VisitState
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
from server.api.reasons import FreeText, ReasonCode, checked_reason
from server.audience import VisitDecided, VisitRequested, tell
from server.keys import DB, HUB, SETTINGS
from server.policy import (
    Principal,
    VisitAction,
    check_visit,
    check_visit_request,
    check_visit_rules,
    signed_in,
    visit_scope,
)
from storage import prisons, visits
from storage.errors import Conflict, NotFound
from storage.inmate_info import Refused
from storage.sql import utcnow
from storage.visit_rules import VisitRules

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=60, pattern=r"\S")]


class VisitRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    inmate_id: Id
    slot_start: Annotated[datetime, msgspec.Meta(tz=True)]  # RFC 3339 with its offset
    visitors: Annotated[int, msgspec.Meta(ge=1, le=20)]
    visitor_names: Annotated[list[Name], msgspec.Meta(max_length=20)] | None = None


class Decline(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A published reason code (``GET /reasons``, kind ``visit.decline``) and free text,
    required with ``other`` (the code when none is named)."""

    reason_code: ReasonCode | None = None
    reason: FreeText = ""


class VisitsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: VisitState | None = None
    inmate: Id | None = None
    prison: Id | None = None
    limit: Limit = 100


class VisitRelative(msgspec.Struct, frozen=True):
    id: int
    name: str


class VisitOut(msgspec.Struct, frozen=True, omit_defaults=True):
    id: int
    inmate_id: int
    prison_id: int
    slot_start: datetime
    visitors: int
    visitor_names: list[str]
    state: VisitState
    created_at: datetime
    reason: str | None = None
    reason_code: str | None = None  # a decline's (GET /reasons)
    decided_at: datetime | None = None
    relative: VisitRelative | None = None  # staff only


class VisitList(msgspec.Struct, frozen=True):
    visits: list[VisitOut]


def visit_out(who: Principal, visit: Visit) -> VisitOut:
    return VisitOut(
        id=visit.id,
        inmate_id=visit.inmate_id,
        prison_id=visit.prison_id,
        slot_start=visit.slot_start,
        visitors=visit.visitors,
        visitor_names=visit.visitor_names,
        state=visit.state,
        created_at=visit.created_at,
        reason=visit.reason,
        reason_code=visit.reason_code,
        decided_at=visit.decided_at,
        relative=VisitRelative(visit.relative_id, visit.relative_name) if who.is_staff else None,
    )


async def request_visit(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    form = await body(request, VisitRequest)
    store = request.app[DB]
    try:
        found: Inmate | None = await prisons.inmate(store, form.inmate_id)
    except NotFound:
        found = None
    inmate = check_visit_request(who, found)
    names = form.visitor_names or []
    if form.visitor_names is not None and len(names) != form.visitors:
        raise invalid("visitor_names", f"name each of the {form.visitors} visitors")
    try:
        visit = await visits.request_visit(
            store,
            relative_id=who.id,
            inmate_id=inmate.id,
            slot_start=form.slot_start,
            visitors=form.visitors,
            visitor_names=names,
            now=utcnow(),
            zone=request.app[SETTINGS].zone,
        )
    except Refused as refused:
        raise ApiError(400, refused.code, refused.message, field=refused.field) from None
    except Conflict:
        raise ApiError(
            409, "conflict", "you already have a pending visit request for this inmate"
        ) from None
    except NotFound:
        raise ApiError(404, "not_found", "no such inmate") from None
    tell(request.app[HUB], VisitRequested(visit))
    return reply(visit_out(who, visit), 201)


def _narrow(allowed: tuple[int, ...] | None, wanted: int | None) -> tuple[int, ...] | None:
    """The ids to filter by: those allowed (``None``: any), narrowed to ``wanted`` if given."""
    if wanted is None:
        return allowed
    return (wanted,) if allowed is None or wanted in allowed else ()


async def list_visits(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    scope = visit_scope(who)
    wanted = query(request, VisitsQuery)
    inmate_ids = _narrow(scope.inmate_ids, wanted.inmate)
    prison_ids = _narrow(scope.prison_ids, wanted.prison)
    found = await visits.visits(
        request.app[DB],
        relative_id=scope.relative_id,
        inmate_ids=inmate_ids,
        prison_ids=prison_ids,
        state=wanted.state,
        limit=wanted.limit,
    )
    return reply(VisitList([visit_out(who, v) for v in found]))


async def _authorized(request: web.Request, action: VisitAction) -> tuple[Principal, Visit]:
    who = signed_in(await principal(request))
    try:
        found: Visit | None = await visits.visit(request.app[DB], path_id(request))
    except NotFound:
        found = None
    return who, check_visit(who, found, action)


async def _decide(request: web.Request, approve: bool) -> web.Response:
    who, visit = await _authorized(request, "decide")
    code: str | None = None
    reason: str | None = None
    if not approve:
        form = await body(request, Decline)
        code, reason = checked_reason("visit.decline", form.reason_code, form.reason)
    try:
        decided = await visits.decide_visit(
            request.app[DB],
            visit.id,
            approve=approve,
            reason=reason,
            actor_id=who.id,
            now=utcnow(),
            zone=request.app[SETTINGS].zone,
            reason_code=code,
        )
    except NotFound:
        raise ApiError(404, "not_found", "no such visit request") from None
    except Conflict:
        current = await visits.visit(request.app[DB], visit.id)
        raise ApiError(409, "conflict", f"this request is {current.state}, not pending") from None
    except Refused as refused:
        raise ApiError(409, refused.code, refused.message, field=refused.field) from None
    tell(request.app[HUB], VisitDecided(decided))
    return reply(visit_out(who, decided))


async def approve_visit(request: web.Request) -> web.Response:
    return await _decide(request, approve=True)


async def decline_visit(request: web.Request) -> web.Response:
    return await _decide(request, approve=False)


async def cancel_visit(request: web.Request) -> web.Response:
    who, visit = await _authorized(request, "cancel")
    try:
        cancelled = await visits.cancel_visit(
            request.app[DB], visit.id, relative_id=who.id, now=utcnow()
        )
    except NotFound:
        raise ApiError(404, "not_found", "no such visit request") from None
    except Conflict:
        current = await visits.visit(request.app[DB], visit.id)
        raise ApiError(
            409, "conflict", f"this request is {current.state} and can no longer be cancelled"
        ) from None
    tell(request.app[HUB], VisitDecided(cancelled))
    return reply(visit_out(who, cancelled))


async def set_visit_rules(request: web.Request) -> web.Response:
    store = request.app[DB]
    prison_id = path_id(request)
    try:
        known: int | None = (await prisons.prison(store, prison_id)).id
    except NotFound:
        known = None
    who = check_visit_rules(await principal(request), known)
    rules = await body(request, VisitRules)
    for n, hours in enumerate(rules.hours):
        if hours.start >= hours.end:
            raise invalid("hours", f"window {n + 1} ends before it starts")
    rules = msgspec.structs.replace(rules, days=sorted(set(rules.days)))
    try:
        stored = await visits.set_visit_rules(store, prison_id, rules, who.id, utcnow())
    except NotFound:
        raise ApiError(404, "not_found", "no such prison") from None
    return reply(stored)


_DecideErrors = (400, 401, 403, 404, 409, 413)

ROUTES = [
    Route(
        "GET",
        "/visits",
        list_visits,
        "List visit requests: a relative its own; officers and supervisors their prisons'",
        "relative (own); officer or supervisor (their prisons)",
        query=VisitsQuery,
        reply=VisitList,
        errors=(400, 401, 403),
    ),
    Route(
        "POST",
        "/visits",
        request_visit,
        "Request a visit slot (checked against the prison's rules and the inmate's card). 400"
        " visit_in_past, visit_rule_days, visit_rule_hours, visit_rule_visitors,"
        " visit_not_eligible, visit_rule_frequency; 409 conflict: a request is already pending",
        "relative verified for the inmate",
        body=VisitRequest,
        reply=VisitOut,
        status=201,
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Route(
        "POST",
        "/visits/{id}/approve",
        approve_visit,
        "Approve a pending request (audited; the relative is told live). 409 conflict: not"
        " pending; 409 with the rule's code (visit_rule_*, visit_not_eligible, visit_in_past):"
        " the rules or the card as they are now no longer allow it",
        "officer of the inmate's prison",
        reply=VisitOut,
        errors=_DecideErrors,
    ),
    Route(
        "POST",
        "/visits/{id}/decline",
        decline_visit,
        "Decline a pending request with a published reason_code (GET /reasons, kind"
        " visit.decline) and free text (required with other); audited, told live; the"
        " relative may complain about it (POST /complaints with about)."
        " 409 conflict: not pending",
        "officer of the inmate's prison",
        body=Decline,
        reply=VisitOut,
        errors=_DecideErrors,
    ),
    Route(
        "POST",
        "/visits/{id}/cancel",
        cancel_visit,
        "Withdraw one's own request, pending or approved and not yet begun (audited; the"
        " prison's staff are told live). 409 conflict: declined, cancelled or begun",
        "the relative who asked",
        reply=VisitOut,
        errors=(401, 403, 404, 409),
    ),
    Route(
        "PUT",
        "/prisons/{id}/visit-rules",
        set_visit_rules,
        "Replace a prison's visit rules (days, hours, frequency, visitors, items; audited)",
        "officer of the prison; admin",
        body=VisitRules,
        reply=VisitRules,
        errors=(400, 401, 403, 404, 413),
    ),
]
