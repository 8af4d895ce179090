"""Figures: response times and volumes per prison per local day, and the bureau's figures.

``GET /stats?prison=&from=&to=``: for each prison the caller may read (one, when ``prison``
names it), one row per local day of ``from..to`` (the bureau's zone, ``Settings.timezone``)
and the queue at this moment. ``GET /stats/bureau?from=&to=``: the admin's per-day figures
across prisons, complaint figures included (so: the admin only; officers never see a
complaint figure). Each figure is defined once, in ``storage/figures.py``.

Range: ``to`` defaults to today (local), ``from`` to six days before ``to`` (the last seven
days); both are included; ``from`` after ``to``, or a range longer than 366 days, is a 400
``invalid_request`` naming ``from``; a date outside 1900-01-01..2199-12-31 is one naming it
(``server/api/base.py``: at the ends of the calendar, date arithmetic overflows). Who reads
what is decided by ``server/policy.py`` (``check_figures``, ``figure_prisons``): a prison one
may not read is a 404, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, tzinfo

import msgspec
from aiohttp import web

from server.api.base import ApiError, Id, Route, invalid, principal, query, reply
from server.keys import DB, SETTINGS
from server.policy import check_figures, figure_prisons
from storage import figures
from storage.figures import BureauDay, PrisonFigures
from storage.sql import utcnow

MAX_DAYS = 366
DEFAULT_DAYS = 7

# The moment the figures are computed at; tests pin it to make "now" figures exact.
clock: Callable[[], datetime] = utcnow


class StatsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prison: Id | None = None
    from_: date | None = msgspec.field(default=None, name="from")
    to: date | None = None


class BureauQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    from_: date | None = msgspec.field(default=None, name="from")
    to: date | None = None


class StatsReply(msgspec.Struct, frozen=True):
    from_: date = msgspec.field(name="from")
    to: date
    timezone: str
    at: datetime  # the moment "now" figures (queue, answered by now) are taken at
    prisons: list[PrisonFigures]


class BureauReply(msgspec.Struct, frozen=True):
    from_: date = msgspec.field(name="from")
    to: date
    timezone: str
    at: datetime
    days: list[BureauDay]


def date_range(
    first: date | None, last: date | None, zone: tzinfo, now: datetime
) -> tuple[date, date]:
    """The inclusive local date range asked for, with the defaults filled in and checked."""
    last = last or now.astimezone(zone).date()
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise invalid("from", "from must not be after to")
    if (last - first).days + 1 > MAX_DAYS:
        raise invalid("from", f"a range covers at most {MAX_DAYS} days")
    return first, last


async def prison_stats(request: web.Request) -> web.Response:
    who = check_figures(await principal(request), "prison")
    wanted = query(request, StatsQuery)
    scope = figure_prisons(who, wanted.prison)
    settings = request.app[SETTINGS]
    now = clock()
    first, last = date_range(wanted.from_, wanted.to, settings.zone, now)
    db = request.app[DB]
    named = await figures.prisons(db, scope)
    if wanted.prison is not None and not named:
        raise ApiError(404, "not_found", "no such prison")
    rows = await figures.prison_figures(db, named, first, last, settings.zone, now)
    return reply(StatsReply(first, last, settings.timezone, now, rows))


async def bureau_stats(request: web.Request) -> web.Response:
    check_figures(await principal(request), "bureau")
    wanted = query(request, BureauQuery)
    settings = request.app[SETTINGS]
    now = clock()
    first, last = date_range(wanted.from_, wanted.to, settings.zone, now)
    days = await figures.bureau_figures(request.app[DB], first, last, settings.zone, now)
    return reply(BureauReply(first, last, settings.timezone, now, days))


ROUTES = [
    Route(
        "GET",
        "/stats",
        prison_stats,
        "Per prison per local day (default: the last 7 days, at most 366): conversations,"
        " messages (notes excluded), cycles, answered, median and p90 first-response seconds,"
        " share answered within 5 minutes, resolved; and now: waiting, longest wait",
        "officer: its prison; supervisor: its prisons; admin: any (another prison: 404)",
        query=StatsQuery,
        reply=StatsReply,
        errors=(400, 401, 403, 404),
    ),
    Route(
        "GET",
        "/stats/bureau",
        bureau_stats,
        "Bureau per local day, all prisons: followers, relative accounts (and new), messages,"
        " conversations, first-response figures, complaints filed, open and overdue",
        "admin",
        query=BureauQuery,
        reply=BureauReply,
        errors=(400, 401, 403),
    ),
]
