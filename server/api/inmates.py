"""The inmate information card: read it, change it, and quote it into a conversation.

- ``GET /inmates/{id}``: the card, with the prison's visit rules and the inmate's approved
  visits still to come. For the inmate's verified relatives and its prison's staff; anyone
  else is answered as if there were no such inmate.
- ``GET /inmates?prison=``: the inmates of the caller's prisons (officers, supervisors).
- ``PATCH /inmates/{id}``: a typed partial update (``InfoPatch``) by an officer of the prison.
  It is validated against the stored card, written and audited in one transaction
  (``storage.inmate_info.update_info``), then pushed as ``info {inmate, field}`` to the user
  topic of each verified relative of that inmate (and of no one else), one frame per part
  changed: ``field`` is the part's name (activity, work, health, term, money, visits).
- ``POST /conversations/{id}/facts {field}``: an officer of the conversation's prison puts a
  fact card into it: a ``system`` message built from the record, labelled with its source and
  the time it was recorded (the bureau's local time), appended through the send path, so it
  reaches the conversation's sockets like any message. ``field`` is one of balance, health,
  activity, work, term, visits. Its body is structured, so each reader sees it in its own
  language (it was one bubble holding the sentence in both): the JSON object (keys sorted,
  no whitespace)
  ``{"fact": field, "as_of": RFC 3339, "source": "prison_records", "text": {"en": ...,
  "zh-CN": ...}, "values": {...}}``, ``values`` the recorded values the sentence states
  (``balance_fen``; ``status``, ``note``; ``text``; ``assignment``; ``original``, ``start``,
  ``expected_release``, ``latest_change``; ``next_visit_date``, ``approved``). The pages
  show ``text`` in the reader's language; other clients may do the same or use ``values``.

Consent (issue 15, ``server/api/consent.py``): a relative's card shows only the categories the
inmate shares with it (``shared``; the others, ``withheld``, read as never recorded), each
``info`` push goes only to the relatives the changed part is shared with, and a fact card is
refused 403 ``consent_withheld`` unless every relative reading the conversation may learn it.

Codes beyond the common ones: ``insufficient_balance`` and ``dates_out_of_order`` (400, with
``field``), ``no_record`` (409: the field has never been recorded, there is no fact to state),
``consent_withheld`` (403).
"""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from domain.records import CONSENT_CATEGORIES, Conversation, Inmate, NewMessage
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
from server.api.consent import shared_for, shares
from server.audience import CardUpdated, tell
from server.keys import DB, HUB, SEND_PATH, SETTINGS
from server.policy import (
    Principal,
    card_parts_shown,
    check_fact,
    check_fact_consent,
    check_inmate,
    inmate_list_prisons,
    signed_in,
)
from storage import consent, conversations, inmate_info, visits
from storage.errors import NotFound
from storage.inmate_info import InfoPatch, InmateInfo, Refused
from storage.sql import utcnow
from storage.visit_rules import VisitRules

FactField = Literal["balance", "health", "activity", "work", "term", "visits"]


class CardVisit(msgspec.Struct, frozen=True):
    id: int
    slot_start: datetime
    visitors: int


class InmateCard(msgspec.Struct, frozen=True):
    id: int
    prison_id: int
    number: str
    name: str
    info: InmateInfo
    visit_rules: VisitRules
    visits: list[CardVisit]  # approved, not yet started, soonest first
    # consent (issue 15): the categories this reader is shown, and those the inmate chose not
    # to share with it (a withheld part reads as never recorded); staff are shown all
    shared: list[str] = msgspec.field(default_factory=list)
    withheld: list[str] = msgspec.field(default_factory=list)


class InmateOut(msgspec.Struct, frozen=True):
    id: int
    prison_id: int
    number: str
    name: str


class InmateList(msgspec.Struct, frozen=True):
    inmates: list[InmateOut]


class InmatesQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prison: Id | None = None
    after: Seq = 0  # page on: the last id of the page before
    limit: Limit = 100


class FactRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    field: FactField


class FactOut(msgspec.Struct, frozen=True):
    id: int
    conv: int
    seq: int
    kind: Literal["system"]
    body: str
    at: datetime


# -- the card ----------------------------------------------------------------------------------


def _withheld(info: InmateInfo, shown: frozenset[str]) -> InmateInfo:
    """The card with every part not in ``shown`` as if never recorded."""
    empty = InmateInfo()
    return msgspec.structs.replace(
        info, **{part: getattr(empty, part) for part in CONSENT_CATEGORIES if part not in shown}
    )


async def _card(
    request: web.Request, who: Principal, inmate: Inmate, info: InmateInfo
) -> InmateCard:
    db = request.app[DB]
    shown = card_parts_shown(
        who,
        () if who.is_staff else await shared_for(db, request.app[SETTINGS], inmate.id, who.id),
    )
    upcoming = await visits.upcoming_approved(db, inmate.id, utcnow()) if "visits" in shown else []
    rules = await visits.visit_rules(db, inmate.prison_id)
    return InmateCard(
        id=inmate.id,
        prison_id=inmate.prison_id,
        number=inmate.number,
        name=inmate.name,
        info=_withheld(info, shown),
        visit_rules=rules,
        visits=[CardVisit(v.id, v.slot_start, v.visitors) for v in upcoming],
        shared=[c for c in CONSENT_CATEGORIES if c in shown],
        withheld=[c for c in CONSENT_CATEGORIES if c not in shown],
    )


async def _lookup(request: web.Request) -> tuple[Principal, Inmate | None, InmateInfo]:
    who = signed_in(await principal(request))
    try:
        inmate, info = await inmate_info.card(request.app[DB], path_id(request))
    except NotFound:
        return who, None, InmateInfo()
    return who, inmate, info


async def get_inmate(request: web.Request) -> web.Response:
    who, found, info = await _lookup(request)
    inmate = check_inmate(who, found, "read")
    return reply(await _card(request, who, inmate, info))


async def list_inmates(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    wanted = query(request, InmatesQuery)
    prisons = inmate_list_prisons(who, wanted.prison)
    found = await inmate_info.inmates_in(
        request.app[DB], prisons, after=wanted.after, limit=wanted.limit
    )
    return reply(InmateList([InmateOut(i.id, i.prison_id, i.number, i.name) for i in found]))


async def patch_inmate(request: web.Request) -> web.Response:
    who, found, _ = await _lookup(request)
    inmate = check_inmate(who, found, "update")
    patch = await body(request, InfoPatch)
    if patch.is_empty():
        raise invalid(None, "name at least one thing to change")
    try:
        updated = await inmate_info.update_info(request.app[DB], inmate.id, patch, who.id, utcnow())
    except NotFound:
        raise ApiError(404, "not_found", "no such inmate") from None
    except Refused as refused:
        raise ApiError(400, refused.code, refused.message, field=refused.field) from None
    told = await shares(request.app[DB], request.app[SETTINGS], inmate.id, updated.relatives)
    tell(request.app[HUB], CardUpdated(inmate.id, updated.parts, updated.relatives, told))
    return reply(await _card(request, who, updated.inmate, updated.info))


# -- fact cards --------------------------------------------------------------------------------

SOURCE_ZH = "狱政信息记录"
SOURCE_EN = "prison records"
HEALTH_ZH = {"good": "良好", "fair": "一般", "poor": "较差", "hospitalised": "住院治疗"}
CHANGE_ZH = {"commutation": "减刑", "parole": "假释", "extension": "加刑"}


def yuan(fen: int) -> str:
    """312.50 for 31250 fen."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _day(value: date | None) -> str:
    return value.isoformat() if value else "—"


class FactCard(msgspec.Struct, frozen=True):
    """A fact card: what the record says, in each language, and the values it states."""

    fact: FactField
    as_of: datetime
    text: dict[str, str]  # locale -> the sentence, with its source and local time
    values: dict[str, Any]
    source: str = "prison_records"

    def body(self) -> str:
        """The message body: the card as JSON, keys sorted, no whitespace."""
        return json.dumps(
            msgspec.to_builtins(self), ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )


def fact_card(
    field: FactField,
    info: InmateInfo,
    upcoming: list[CardVisit],
    zone: ZoneInfo,
    now: datetime,
) -> FactCard | None:
    """The fact card, or None when nothing is recorded.

    Each sentence is labelled with its source and the time the part was last recorded (for
    ``visits``, which also lists the approved visits to come, the time the card is made), in
    ``zone``."""
    zh: str
    en: str
    stamp: datetime | None
    values: dict[str, Any]
    if field == "balance":
        money = info.money
        stamp = money.updated_at
        values = {"balance_fen": money.balance_fen}
        zh = f"零用钱余额 {yuan(money.balance_fen)} 元"
        en = f"Pocket-money balance {yuan(money.balance_fen)} yuan"
    elif field == "health":
        health = info.health
        stamp = health.updated_at if health.status else None
        status = health.status or ""
        values = {"status": status, "note": health.note or None}
        zh = f"健康状况：{HEALTH_ZH.get(status, status)}" + (
            f"，{health.note}" if health.note else ""
        )
        en = f"Health: {status}" + (f" ({health.note})" if health.note else "")
    elif field == "activity":
        stamp = info.activity.updated_at
        values = {"text": info.activity.text}
        zh = f"日常活动：{info.activity.text}"
        en = f"Daily activity: {info.activity.text}"
    elif field == "work":
        stamp = info.work.updated_at
        values = {"assignment": info.work.assignment}
        zh = f"劳动岗位：{info.work.assignment}"
        en = f"Work assignment: {info.work.assignment}"
    elif field == "term":
        term = info.term
        stamp = term.updated_at
        values = {
            "original": term.original,
            "start": _day(term.start),
            "expected_release": _day(term.expected_release),
        }
        zh = (
            f"刑期：{term.original or '—'}，起始日期 {_day(term.start)}，"
            f"预计释放日期 {_day(term.expected_release)}"
        )
        en = (
            f"Prison term: {term.original or '—'}, from {_day(term.start)},"
            f" expected release {_day(term.expected_release)}"
        )
        if term.changes:
            last = term.changes[-1]
            on = last.decided_on.isoformat()
            zh += f"；最近变动：{on} {CHANGE_ZH[last.kind]}（{last.decision}）"
            en += f"; latest change: {last.kind} on {on} ({last.decision})"
            values["latest_change"] = {"kind": last.kind, "on": on, "decision": last.decision}
    else:
        eligible = info.visits.next_visit_date
        stamp = now if (eligible or upcoming) else None
        slots = [v.slot_start.astimezone(zone).strftime("%Y-%m-%d %H:%M") for v in upcoming]
        values = {"next_visit_date": _day(eligible), "approved": slots}
        zh = f"下次可会见日期：{_day(eligible)}" + (
            f"；已批准的会见：{'、'.join(slots)}" if slots else ""
        )
        en = f"Next allowed visit date: {_day(eligible)}" + (
            f"; approved visits: {', '.join(slots)}" if slots else ""
        )
    if stamp is None:
        return None
    when = stamp.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return FactCard(
        fact=field,
        as_of=stamp,
        text={
            "zh-CN": f"{zh}（截至 {when}，来源：{SOURCE_ZH}）",
            "en": f"{en} as of {when} (source: {SOURCE_EN})",
        },
        values=values,
    )


async def post_fact(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    store = request.app[DB]
    try:
        found: Conversation | None = await conversations.conversation(store, path_id(request))
    except NotFound:
        found = None
    conv = check_fact(who, found)
    form = await body(request, FactRequest)
    readers = await consent.thread_readers(store, conv.id)
    check_fact_consent(
        form.field, await shares(store, request.app[SETTINGS], conv.inmate_id, readers)
    )
    _, info = await inmate_info.card(store, conv.inmate_id)
    now = utcnow()
    upcoming = [
        CardVisit(v.id, v.slot_start, v.visitors)
        for v in await visits.upcoming_approved(store, conv.inmate_id, now)
    ]
    card = fact_card(form.field, info, upcoming, request.app[SETTINGS].zone, now)
    if card is None:
        raise ApiError(409, "no_record", f"nothing is recorded yet for {form.field}")
    body_text = card.body()  # never cut: a cut JSON would be no card at all
    user = who.user
    try:
        message = await request.app[SEND_PATH].post(
            NewMessage(
                conversation_id=conv.id,
                sender_id=user.id,
                sender_role=user.role,
                cid=f"fact-{secrets.token_hex(8)}",
                body=body_text,
                kind="system",
                sender_name=user.name,
            )
        )
    except NotFound:
        raise ApiError(404, "not_found", "no such conversation") from None
    return reply(
        FactOut(
            id=message.id,
            conv=message.conversation_id,
            seq=message.seq,
            kind="system",
            body=message.body,
            at=message.created_at,
        ),
        201,
    )


ROUTES = [
    Route(
        "GET",
        "/inmates",
        list_inmates,
        "List the inmates of one's prisons (prison= narrows to one of them; after= pages on)",
        "officer or supervisor (their prisons)",
        query=InmatesQuery,
        reply=InmateList,
        errors=(400, 401, 403),
    ),
    Route(
        "GET",
        "/inmates/{id}",
        get_inmate,
        "An inmate's information card, with the prison's visit rules and approved visits to come",
        "verified relative of the inmate; officer or supervisor of its prison",
        reply=InmateCard,
        errors=(401, 404),
    ),
    Route(
        "PATCH",
        "/inmates/{id}",
        patch_inmate,
        "Change the card (a partial update, audited; the inmate's verified relatives are told"
        " live with info {inmate, field}). 400 insufficient_balance: a spending larger than the"
        " balance; 400 dates_out_of_order: dates not in order or a movement in the future",
        "officer of the inmate's prison",
        body=InfoPatch,
        reply=InmateCard,
        errors=(400, 401, 403, 404, 413),
    ),
    Route(
        "POST",
        "/conversations/{id}/facts",
        post_fact,
        "Put a fact card from the inmate's record into the conversation (a system message,"
        " labelled with its source and time). 409 no_record: nothing recorded for the field",
        "officer of the conversation's prison",
        body=FactRequest,
        reply=FactOut,
        status=201,
        errors=(400, 401, 403, 404, 409, 413),
    ),
]
