"""Figures for a whole period (issue 16: figures people can read): ``GET /stats/period``.

For each prison the caller may read (``figure_prisons``, as ``GET /stats``; one, when
``prison`` names it): the period's totals, the ratings (average and 1-to-5 distribution) and
each officer's response figures, over the local days ``from..to`` (the same range rules and
defaults as ``GET /stats``: the last 7 days). Definitions: ``storage/period_figures.py``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import msgspec
from aiohttp import web

from server.api import stats
from server.api.base import ApiError, Route, principal, query, reply
from server.keys import DB, SETTINGS
from server.policy import check_figures, figure_prisons
from storage import figures, period_figures
from storage.period_figures import PeriodFigures


class PeriodReply(msgspec.Struct, frozen=True):
    from_: date = msgspec.field(name="from")
    to: date
    timezone: str
    at: datetime
    prisons: list[PeriodFigures]


async def period(request: web.Request) -> web.Response:
    who = check_figures(await principal(request), "prison")
    wanted = query(request, stats.StatsQuery)
    scope = figure_prisons(who, wanted.prison)
    settings = request.app[SETTINGS]
    now = stats.clock()
    first, last = stats.date_range(wanted.from_, wanted.to, settings.zone, now)
    db = request.app[DB]
    named = await figures.prisons(db, scope)
    if wanted.prison is not None and not named:
        raise ApiError(404, "not_found", "no such prison")
    since = datetime.combine(first, time(), settings.zone)
    until = datetime.combine(last + timedelta(days=1), time(), settings.zone)
    rows = await period_figures.period_figures(db, named, since, until, now)
    return reply(PeriodReply(first, last, settings.timezone, now, rows))


ROUTES = [
    Route(
        "GET",
        "/stats/period",
        period,
        "Per prison over the local days from..to (default: the last 7 days, at most 366):"
        " totals (conversations, messages, cycles, answered, median and p90 seconds, share"
        " within 5 minutes, late past the response target, resolved), ratings (count, average,"
        " distribution of 1 to 5 stars) and per-officer response figures",
        "officer: its prison; supervisor: its prisons; admin: any (another prison: 404)",
        query=stats.StatsQuery,
        reply=PeriodReply,
        errors=(400, 401, 403, 404),
    ),
]
