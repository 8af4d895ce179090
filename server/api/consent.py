"""Consent scopes and the family case over HTTP: the inmate's decisions, recorded by an officer.

- ``PUT /inmates/{id}/consent {relative_id, categories, decided_on?, witness?, note?}``: an
  officer of the inmate's prison records which categories of the card (activity, work,
  health, term, money, visits) the inmate shares with one of its verified relatives, the day
  it decided (default: today, the bureau's local day; never in the future) and who witnessed
  it (default: the recording officer). Audited ``consent.recorded`` in the same transaction;
  the relative is told live (``info {inmate, field: "consent"}``: read the card again).
  409 ``not_verified``: the relative is not a verified relative of the inmate.
- ``GET /inmates/{id}/consent``: the inmate's staff read every verified relative's scope; a
  relative its own (``shared`` and ``withheld``, the rest being the inmate's choice). A
  relative with no recorded decision shares ``KINLINE_CONSENT_DEFAULT`` (``recorded: false``).
- ``PUT /inmates/{id}/family-case {enabled, decided_on?, witness?, note?}``: an officer records
  the inmate's agreement that its verified relatives share one conversation (audited
  ``inmate.family_case_set``); 409 ``no_verified_relative`` (nobody to share with) and
  ``no_family_case`` (turning off a case never agreed to). Every verified relative's sockets
  are re-checked at once, so they follow (or leave) the shared thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated

import msgspec
from aiohttp import web

from domain.records import CONSENT_CATEGORIES, Consent, ConsentCategory, FamilyCase, Inmate
from server.api.base import ApiError, Id, Route, body, invalid, path_id, principal, reply
from server.audience import ConsentRecorded, tell
from server.config import Settings
from server.keys import DB, GATEWAY, HUB, SETTINGS
from server.policy import Principal, check_consent, consent_reader, shared_with, signed_in
from storage import consent, inmate_info
from storage.errors import Conflict, NotFound
from storage.sql import Database, utcnow

Witness = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
Note = Annotated[str, msgspec.Meta(max_length=500)]


class ConsentIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    relative_id: Id
    categories: Annotated[list[ConsentCategory], msgspec.Meta(max_length=6)]
    decided_on: date | None = None
    witness: Witness | None = None
    note: Note = ""


class FamilyCaseIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool
    decided_on: date | None = None
    witness: Witness | None = None
    note: Note = ""


class ScopeOut(msgspec.Struct, frozen=True, kw_only=True):
    relative_id: int
    name: str
    relationship: str
    shared: list[ConsentCategory]  # in card order
    withheld: list[ConsentCategory]  # the rest: the inmate's choice
    recorded: bool  # False: no decision recorded, the default applies
    decided_on: date | None = None
    witness: str | None = None
    note: str | None = None  # staff only
    recorded_at: datetime | None = None


class FamilyCaseOut(msgspec.Struct, frozen=True, kw_only=True):
    inmate_id: int
    enabled: bool
    conversation_id: int
    decided_on: date
    witness: str
    recorded_at: datetime
    note: str | None = None  # staff only


class ConsentList(msgspec.Struct, frozen=True, kw_only=True):
    inmate_id: int
    default: list[ConsentCategory]  # what a relative with no recorded decision shares
    items: list[ScopeOut]
    family_case: FamilyCaseOut | None


async def shares(
    db: Database, settings: Settings, inmate_id: int, relatives: Iterable[int]
) -> dict[int, frozenset[str]]:
    """Each relative's shared categories (as recorded, or the default)."""
    recorded = await consent.consents(db, inmate_id)
    return {
        r: shared_with(recorded[r].categories if r in recorded else None, settings.consent_default)
        for r in relatives
    }


async def shared_for(
    db: Database, settings: Settings, inmate_id: int, relative: int
) -> frozenset[str]:
    found = await consent.consent_of(db, inmate_id, relative)
    return shared_with(None if found is None else found.categories, settings.consent_default)


def _scope(
    relative: tuple[int, str, str], found: Consent | None, default: Iterable[str], staff: bool
) -> ScopeOut:
    relative_id, name, relationship = relative
    shared = shared_with(None if found is None else found.categories, default)
    return ScopeOut(
        relative_id=relative_id,
        name=name,
        relationship=relationship,
        shared=list(consent.ordered(shared)),
        withheld=[c for c in CONSENT_CATEGORIES if c not in shared],
        recorded=found is not None,
        decided_on=None if found is None else found.decided_on,
        witness=None if found is None else found.witness,
        note=found.note if staff and found is not None else None,
        recorded_at=None if found is None else found.recorded_at,
    )


def _case(case: FamilyCase, staff: bool) -> FamilyCaseOut:
    return FamilyCaseOut(
        inmate_id=case.inmate_id,
        enabled=case.enabled,
        conversation_id=case.conversation_id,
        decided_on=case.decided_on,
        witness=case.witness,
        recorded_at=case.recorded_at,
        note=case.note if staff else None,
    )


async def _inmate(request: web.Request) -> tuple[Principal, Inmate | None]:
    who = signed_in(await principal(request))
    try:
        found, _ = await inmate_info.card(request.app[DB], path_id(request))
    except NotFound:
        return who, None
    return who, found


def _decided_on(given: date | None, settings: Settings, now: datetime) -> date:
    today = now.astimezone(settings.zone).date()
    if given is None:
        return today
    if given > today:
        raise invalid("decided_on", "the decision cannot be dated in the future")
    return given


async def get_consent(request: web.Request) -> web.Response:
    who, found = await _inmate(request)
    inmate = check_consent(who, found, "read")
    db, settings = request.app[DB], request.app[SETTINGS]
    only = consent_reader(who)
    relatives = [r for r in await consent.verified_relatives(db, inmate.id) if only in (None, r[0])]
    recorded = await consent.consents(db, inmate.id)
    case = await consent.family_case(db, inmate.id)
    return reply(
        ConsentList(
            inmate_id=inmate.id,
            default=list(consent.ordered(settings.consent_default)),
            items=[
                _scope(r, recorded.get(r[0]), settings.consent_default, who.is_staff)
                for r in relatives
            ],
            family_case=None if case is None else _case(case, who.is_staff),
        )
    )


async def put_consent(request: web.Request) -> web.Response:
    who, found = await _inmate(request)
    inmate = check_consent(who, found, "record")
    form = await body(request, ConsentIn)
    db, settings = request.app[DB], request.app[SETTINGS]
    now = utcnow()
    try:
        recorded = await consent.record_consent(
            db,
            inmate_id=inmate.id,
            relative_id=form.relative_id,
            categories=form.categories,
            decided_on=_decided_on(form.decided_on, settings, now),
            witness=form.witness or who.user.name,
            note=form.note,
            actor_id=who.id,
            now=now,
        )
    except NotFound:
        raise ApiError(404, "not_found", "no such inmate") from None
    except Conflict:
        raise ApiError(
            409, "not_verified", "this relative is not a verified relative of the inmate"
        ) from None
    tell(request.app[HUB], ConsentRecorded(inmate.id, form.relative_id))
    relative = next(
        r for r in await consent.verified_relatives(db, inmate.id) if r[0] == form.relative_id
    )
    return reply(_scope(relative, recorded, settings.consent_default, True))


async def put_family_case(request: web.Request) -> web.Response:
    who, found = await _inmate(request)
    inmate = check_consent(who, found, "family_case")
    form = await body(request, FamilyCaseIn)
    db, settings = request.app[DB], request.app[SETTINGS]
    now = utcnow()
    try:
        case = await consent.set_family_case(
            db,
            inmate_id=inmate.id,
            enabled=form.enabled,
            decided_on=_decided_on(form.decided_on, settings, now),
            witness=form.witness or who.user.name,
            note=form.note,
            actor_id=who.id,
            now=now,
        )
    except NotFound:
        raise ApiError(404, "not_found", "no such inmate") from None
    except Conflict as conflict:
        code = conflict.what
        text = {
            "no_verified_relative": "the inmate has no verified relative to share a case with",
            "no_family_case": "the inmate never agreed to a family case",
        }.get(code, "conflict")
        raise ApiError(409, code, text) from None
    gateway = request.app[GATEWAY]
    for relative, _, _ in await consent.verified_relatives(db, inmate.id):
        gateway.refresh_user(relative)  # its sockets follow, or leave, the shared thread
    return reply(_case(case, True))


ROUTES = [
    Route(
        "GET",
        "/inmates/{id}/consent",
        get_consent,
        "What the inmate shares with each verified relative (a relative: with itself), and"
        " its family case",
        "officer or supervisor of the inmate's prison; a verified relative (its own scope)",
        reply=ConsentList,
        errors=(401, 403, 404),
    ),
    Route(
        "PUT",
        "/inmates/{id}/consent",
        put_consent,
        "Record the inmate's decision of what one verified relative may learn (audited)."
        " 409 not_verified: not a verified relative of the inmate",
        "officer of the inmate's prison",
        body=ConsentIn,
        reply=ScopeOut,
        errors=(400, 401, 403, 404, 409, 413),
    ),
    Route(
        "PUT",
        "/inmates/{id}/family-case",
        put_family_case,
        "Record the inmate's agreement that its verified relatives share one conversation"
        " (audited). 409 no_verified_relative, no_family_case",
        "officer of the inmate's prison",
        body=FamilyCaseIn,
        reply=FamilyCaseOut,
        errors=(400, 401, 403, 404, 409, 413),
    ),
]
