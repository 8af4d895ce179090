"""Family links: a relative asks, an officer of the prison verifies or rejects, staff revoke.

A request naming a prison that does not exist is 400 ``unknown_prison`` (prisons are public);
one naming a number the prison does not hold is 400 ``inmate_not_found`` at once, instead of
waiting for an officer to reject it (issue 16). That answer tells whether a number exists, so
each miss is kept (``storage/link_lookups.py``, seen by the prison's staff in the audit trail)
and a relative with ``MISSES_PER_DAY`` misses in the last day is refused every request, real
number or not, with 429 ``too_many_misses`` and ``Retry-After``: guessing numbers goes
nowhere. (Until then the same answer was given for a real and an unknown number, and such
requests stayed pending as ``matched: false``; old ones are still shown so.)

Every decision is audited in the same transaction (``storage.links.transition_link``), told to the
relative live (a ``link`` frame on its user topic) and applied at once to its open sockets
(``Gateway.refresh_user``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from aiohttp import web

from channels.events import attachment_info
from channels.protocol import MAX_ATTACHMENT_IDS, AttachmentInfo
from domain.reasons import DecisionKind
from domain.records import Attachment, FamilyLink, LinkClaim, LinkState, Prison
from server.api.base import ApiError, Id, Limit, Route, body, path_id, principal, query, reply
from server.api.reasons import FreeText, ReasonCode, checked_reason
from server.audience import LinkDecided, tell
from server.keys import DB, GATEWAY, HUB, SETTINGS
from server.policy import (
    LinkAction,
    Principal,
    check_action,
    check_link,
    link_scope,
    sees_link_evidence,
    shows_link_details,
    signed_in,
)
from storage import attachments, link_lookups, links, prisons
from storage.errors import Conflict, NotFound
from storage.sql import Database, utcnow

MISSES_PER_DAY = 5  # numbers a relative may name that its prison does not hold, per 24 h
MISS_WINDOW = timedelta(days=1)

Text = Annotated[str, msgspec.Meta(max_length=2000)]
REASON_KIND: dict[str, DecisionKind] = {"reject": "link.reject", "revoke": "link.revoke"}


class LinkRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prison: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] | Id  # its code or id
    inmate_number: Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=r"\S")]
    relationship: Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=r"\S")]
    evidence: Text = ""
    # uploaded files (POST /attachments) as evidence, seen by the officers deciding it
    attachments: Annotated[list[Id], msgspec.Meta(max_length=MAX_ATTACHMENT_IDS)] = []


class Verify(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class Decision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A rejection or revocation: a published reason code (``GET /reasons``, kind
    ``link.reject`` or ``link.revoke``) and free text, required with ``other`` (the code
    when none is named)."""

    reason_code: ReasonCode | None = None
    reason: FreeText = ""


class LinksQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: LinkState | None = None
    limit: Limit = 100


class RelativeOut(msgspec.Struct, frozen=True):
    id: int
    name: str
    phone: str | None
    id_number_last4: str | None
    id_conflict: bool = False  # another account gave the same id number: check documents


class LinkOut(msgspec.Struct, frozen=True, omit_defaults=True):
    id: int
    state: LinkState
    prison: str  # as the relative named it
    prison_id: int | None
    inmate_number: str
    relationship: str
    evidence: str
    created_at: datetime
    reason: str | None = None
    reason_code: str | None = None  # a rejection's or revocation's (GET /reasons)
    decided_at: datetime | None = None
    inmate_id: int | None = None  # relatives: only once verified
    matched: bool | None = None  # staff: whether the claim names an inmate of the prison
    relative: RelativeOut | None = None  # staff only
    # evidence files: to the relative who asked and the officers deciding it, nobody else
    attachments: list[AttachmentInfo] | None = None


class LinkList(msgspec.Struct, frozen=True):
    links: list[LinkOut]


def link_out(
    who: Principal, link: FamilyLink, files: dict[int, tuple[Attachment, ...]] | None = None
) -> LinkOut:
    details = shows_link_details(who, link)
    evidence = (
        [attachment_info(a) for a in (files or {}).get(link.id, ())]
        if sees_link_evidence(who, link)
        else None
    )
    return LinkOut(
        id=link.id,
        state=link.state,
        prison=link.prison_claim,
        prison_id=link.prison_id if who.is_staff else None,
        inmate_number=link.inmate_number,
        relationship=link.relationship,
        evidence=link.evidence,
        created_at=link.created_at,
        reason=link.reason,
        reason_code=link.reason_code,
        decided_at=link.decided_at,
        inmate_id=link.inmate_id if details else None,
        matched=(link.inmate_id is not None) if who.is_staff else None,
        relative=(
            RelativeOut(
                link.relative_id,
                link.relative_name,
                link.relative_phone,
                link.relative_id_last4,
                link.relative_id_conflict,
            )
            if who.is_staff
            else None
        ),
        attachments=evidence,
    )


async def _evidence(
    store: Database, who: Principal, found: list[FamilyLink]
) -> dict[int, tuple[Attachment, ...]]:
    """The evidence files of the links ``who`` may see evidence of (one query)."""
    shown = [link.id for link in found if sees_link_evidence(who, link)]
    return await attachments.of_links(store, shown)


async def _prison(store: Database, named: str | int) -> Prison | None:
    try:
        return await (
            prisons.prison(store, named)
            if isinstance(named, int)
            else prisons.prison_by_code(store, named)
        )
    except NotFound:
        return None


async def request_link(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "link.request")
    form = await body(request, LinkRequest)
    store = request.app[DB]
    prison = await _prison(
        store, form.prison if isinstance(form.prison, int) else form.prison.strip()
    )
    if prison is None:
        raise ApiError(400, "unknown_prison", "no such prison", field="prison")
    now = utcnow()
    missed = await link_lookups.misses_since(store, who.id, now - MISS_WINDOW)
    if len(missed) >= MISSES_PER_DAY:  # before the lookup: a real number is refused too
        wait = (missed[-MISSES_PER_DAY] + MISS_WINDOW - now).total_seconds()
        raise ApiError(
            429,
            "too_many_misses",
            "too many inmate numbers that do not exist; try again later",
            headers={"Retry-After": str(max(1, int(wait) + 1))},
        )
    number = form.inmate_number.strip()
    inmate = await prisons.inmate_by_number(store, prison.id, number)
    if inmate is None:
        await link_lookups.record_miss(store, who.id, prison.id, number, now)
        raise ApiError(
            400,
            "inmate_not_found",
            f"{prison.name} holds no inmate numbered {number!r}",
            field="inmate_number",
        )
    claim = LinkClaim(
        relative_id=who.id,
        prison_claim=str(form.prison).strip(),
        inmate_number=number,
        relationship=form.relationship.strip(),
        evidence=form.evidence,
        prison_id=prison.id,
        inmate_id=inmate.id,
    )
    limit = request.app[SETTINGS].max_evidence
    if len(set(form.attachments)) > limit:
        raise ApiError(
            400,
            "too_many_attachments",
            f"a request carries at most {limit} files",
            field="attachments",
        )
    try:
        link = await links.claim_link(store, claim, form.attachments)
    except Conflict:
        raise ApiError(
            409, "conflict", "you already have an open request or link for this inmate"
        ) from None
    except NotFound:
        raise ApiError(
            400,
            "attachment_not_found",
            "an attachment is unknown, not yours, or used already",
            field="attachments",
        ) from None
    return reply(link_out(who, link, await _evidence(store, who, [link])), 201)


async def list_links(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    scope = link_scope(who)
    wanted = query(request, LinksQuery)
    found = await links.links(
        request.app[DB],
        relative_id=scope.relative_id,
        prison_ids=scope.prison_ids,
        state=wanted.state,
        limit=wanted.limit,
    )
    files = await _evidence(request.app[DB], who, found)
    return reply(LinkList([link_out(who, link, files) for link in found]))


async def _authorized(request: web.Request, action: LinkAction) -> tuple[Principal, FamilyLink]:
    who = signed_in(await principal(request))
    try:
        link: FamilyLink | None = await links.link(request.app[DB], path_id(request))
    except NotFound:
        link = None
    return who, check_link(who, link, action)


async def get_link(request: web.Request) -> web.Response:
    who, link = await _authorized(request, "read")
    return reply(link_out(who, link, await _evidence(request.app[DB], who, [link])))


async def _decide(
    request: web.Request,
    action: LinkAction,
    from_state: LinkState,
    to_state: LinkState,
    form_type: type[Verify] | type[Decision],
) -> web.Response:
    who, link = await _authorized(request, action)
    form = await body(request, form_type)
    reason, code = form.reason or None, None
    if isinstance(form, Decision):
        code, reason = checked_reason(REASON_KIND[action], form.reason_code, form.reason)
    if to_state == "verified" and link.inmate_id is None:
        raise ApiError(409, "conflict", "this request names no inmate of the prison: reject it")
    try:
        decided = await links.transition_link(
            request.app[DB], link.id, from_state, to_state, who.id, reason, code
        )
    except Conflict:
        raise ApiError(409, "conflict", f"this link is {link.state}, not {from_state}") from None
    if to_state != "rejected":  # permissions changed: re-check every open socket, everywhere
        request.app[GATEWAY].refresh_user(link.relative_id)
    tell(request.app[HUB], LinkDecided(decided))
    return reply(link_out(who, decided, await _evidence(request.app[DB], who, [decided])))


async def verify_link(request: web.Request) -> web.Response:
    return await _decide(request, "verify", "pending", "verified", Verify)


async def reject_link(request: web.Request) -> web.Response:
    return await _decide(request, "reject", "pending", "rejected", Decision)


async def revoke_link(request: web.Request) -> web.Response:
    return await _decide(request, "revoke", "verified", "revoked", Decision)


_LinkErrors = (400, 401, 403, 404, 409, 413)

ROUTES = [
    Route(
        "POST",
        "/links",
        request_link,
        "Ask to be linked to an inmate (pending until an officer decides). 400"
        " unknown_prison, inmate_not_found (the prison holds no such number; kept, and"
        " after 5 in a day every request is 429 too_many_misses for the rest of it);"
        " attachments: uploaded files as evidence, seen by the officers deciding it (400"
        " too_many_attachments, attachment_not_found)",
        "relative",
        body=LinkRequest,
        reply=LinkOut,
        status=201,
        errors=(400, 401, 403, 409, 413, 429),
    ),
    Route(
        "GET",
        "/links",
        list_links,
        "List links: a relative its own; officers and supervisors their prisons'; admin all",
        "signed in (scoped)",
        query=LinksQuery,
        reply=LinkList,
        errors=(400, 401),
    ),
    Route(
        "GET",
        "/links/{id}",
        get_link,
        "One link request",
        "its relative; staff of its prison; admin",
        reply=LinkOut,
        errors=(401, 404),
    ),
    Route(
        "POST",
        "/links/{id}/verify",
        verify_link,
        "Verify a pending request that names an inmate (audited; the relative is told live)",
        "officer of the link's prison",
        body=Verify,
        reply=LinkOut,
        errors=_LinkErrors,
    ),
    Route(
        "POST",
        "/links/{id}/reject",
        reject_link,
        "Reject a pending request, with a published reason_code (GET /reasons, kind"
        " link.reject) and free text (required with other); audited, told live. The"
        " relative may complain about the decision (POST /complaints with about)",
        "officer of the link's prison",
        body=Decision,
        reply=LinkOut,
        errors=_LinkErrors,
    ),
    Route(
        "POST",
        "/links/{id}/revoke",
        revoke_link,
        "Revoke a verified link, with a published reason_code (kind link.revoke) and free"
        " text (required with other): access ends at once, open sockets included. The"
        " relative may still complain about the decision",
        "officer or supervisor of the link's prison; admin",
        body=Decision,
        reply=LinkOut,
        errors=_LinkErrors,
    ),
]
