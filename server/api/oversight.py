"""Oversight for supervisors and the admin: the audit trail and the live overview.

- ``GET /audit``: the audit trail, newest first, paged by id (``before_id``: pass the
  ``next_before_id`` of a page to get the next, older one). A supervisor reads the entries of
  its prisons; the admin every entry. There is deliberately no endpoint that changes or
  deletes an entry (and the schema refuses both: ``storage/audit_trail.py``).
- ``GET /audit/actors?prison=``: the people with entries in that trail, by name (the
  trail's "who" filter), for whoever may read the trail.
- ``GET /overview?prison=``: what the supervisor's monitor loads (``storage/overview.py``),
  plus the officers on duty now from the duty roster. Afterwards the monitor follows the
  ``conversation`` and ``presence`` events of the prison's staff topic, which a supervisor's
  socket joins on connect: open the socket first, then load the overview.

Supervisors also watch conversations on the socket (``watch``), read-only and audited: see
``server/gateway.py`` and ``audits_opening`` in ``server/policy.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from channels.broker import BrokerUnavailable
from server.api.base import ApiError, Id, Limit, Route, principal, query, reply
from server.keys import DB, ROSTER, SETTINGS
from server.policy import audit_scope, check_overview, signed_in
from storage import audit_trail
from storage.audit_trail import TrailEntry, TrailQuery
from storage.errors import NotFound
from storage.overview import (
    AnsweredLate,
    PrisonOverview,
    StateCounts,
    Unanswered,
    Waiting,
    prison_overview,
)
from storage.sql import utcnow

Moment = Annotated[datetime, msgspec.Meta(tz=True)]  # RFC 3339 with an offset (Z or +08:00)
# an action (``conversation.opened``), or every action under a prefix (``conversation.*``)
ActionFilter = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[a-z_]+(\.[a-z_]+)*(\.\*)?$")
]
Word = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class AuditQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    actor: Id | None = None  # user id of who did it
    action: ActionFilter | None = None
    object_type: Word | None = None
    object_id: Id | None = None
    prison: Id | None = None
    since: Moment | None = None  # inclusive
    until: Moment | None = None  # exclusive
    before_id: Id | None = None  # entries older than this id (paging)
    limit: Limit = 100


class ActorsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prison: Id | None = None


class ActorList(msgspec.Struct, frozen=True):
    actors: list[audit_trail.Actor]


class AuditPage(msgspec.Struct, frozen=True):
    entries: list[TrailEntry]
    # pass as before_id for the next (older) page; None: this page was the last (a full
    # page may still be followed by an empty one)
    next_before_id: int | None


class OverviewQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prison: Id


class OfficerOut(msgspec.Struct, frozen=True):
    id: int
    name: str


class OnDuty(msgspec.Struct, frozen=True):
    count: int
    officers: list[OfficerOut]  # the first 100 by the roster's order


class OverviewOut(msgspec.Struct, frozen=True):
    """``storage.overview.PrisonOverview`` (see its definitions) with the officers on duty."""

    prison_id: int
    at: datetime  # the moment it describes
    response_target_s: int
    conversations: StateCounts  # by state
    on_duty: OnDuty
    queue: list[Waiting]  # state waiting, the longest wait first
    late_now: list[Unanswered]  # still without a first response, longer than the target
    late_today: list[AnsweredLate]  # started today (bureau time), answered after the target
    complaints_overdue: int


def overview_out(loaded: PrisonOverview, on_duty: OnDuty) -> OverviewOut:
    return OverviewOut(
        prison_id=loaded.prison_id,
        at=loaded.at,
        response_target_s=loaded.response_target_s,
        conversations=loaded.conversations,
        on_duty=on_duty,
        queue=loaded.queue,
        late_now=loaded.late_now,
        late_today=loaded.late_today,
        complaints_overdue=loaded.complaints_overdue,
    )


async def audit(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    wanted = query(request, AuditQuery)
    scope = audit_scope(who, wanted.prison)
    if wanted.since and wanted.until and wanted.until <= wanted.since:
        raise ApiError(400, "invalid_request", "until must be after since", field="until")
    action: str | None = wanted.action
    prefix: str | None = None
    if action is not None and action.endswith(".*"):
        prefix, action = action[:-1], None
    found = await audit_trail.entries(
        request.app[DB],
        TrailQuery(
            prison_ids=scope,
            actor_id=wanted.actor,
            action=action,
            action_prefix=prefix,
            object_type=wanted.object_type,
            object_id=wanted.object_id,
            since=wanted.since,
            until=wanted.until,
            before_id=wanted.before_id,
            limit=wanted.limit,
        ),
    )
    more = found[-1].id if len(found) == wanted.limit else None
    return reply(AuditPage(found, more))


async def audit_actors(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    scope = audit_scope(who, query(request, ActorsQuery).prison)  # who reads the trail
    return reply(ActorList(await audit_trail.actors(request.app[DB], scope)))


async def overview(request: web.Request) -> web.Response:
    who = signed_in(await principal(request))
    wanted = query(request, OverviewQuery)
    check_overview(who, wanted.prison)
    try:
        loaded = await prison_overview(
            request.app[DB], wanted.prison, utcnow(), request.app[SETTINGS].zone
        )
    except NotFound:
        raise ApiError(404, "not_found", "no such prison") from None
    try:
        presence = await request.app[ROSTER].now(wanted.prison, staff=True)
    except BrokerUnavailable:
        raise ApiError(503, "unavailable", "the duty roster is unavailable; try again") from None
    officers = [OfficerOut(o.id, o.name) for o in presence.officers or []]
    return reply(overview_out(loaded, OnDuty(presence.on_duty, officers)))


ROUTES = [
    Route(
        "GET",
        "/audit",
        audit,
        "The audit trail, newest first, paged by id: who did what, when, before and after."
        " Filters: actor (user id), action (exact, or a prefix such as conversation.*),"
        " object_type and object_id, prison, since (inclusive) and until (exclusive)."
        " Entries can be neither changed nor deleted",
        "supervisor (entries of its prisons; another prison is 403); admin (every entry)",
        query=AuditQuery,
        reply=AuditPage,
        errors=(400, 401, 403),
    ),
    Route(
        "GET",
        "/audit/actors",
        audit_actors,
        "The people who have entries in the audit trail (of the prison, or of all one may"
        " read), by name: what the trail's actor filter offers",
        "supervisor (its prisons; another prison is 403); admin (every entry)",
        query=ActorsQuery,
        reply=ActorList,
        errors=(400, 401, 403),
    ),
    Route(
        "GET",
        "/overview",
        overview,
        "The supervisor's monitor of one prison, as of now: conversations by state, officers"
        " on duty, the waiting queue with wait times (longest first), cycles over the prison's"
        " response target (still unanswered now; answered late today, bureau time) and overdue"
        " complaints. Then follow the staff topic's conversation and presence events",
        "supervisor of the prison; admin",
        query=OverviewQuery,
        reply=OverviewOut,
        errors=(400, 401, 403, 404),
    ),
]
