"""A prison's desk settings over HTTP: auto-assignment, the away reply and the desk hours.

``GET /prisons/{id}/desk-settings`` (the prison's staff, the admin) and ``PUT`` (the admin,
audited ``desk_settings.changed``). What the settings do is ``server/routing.py``'s. A
round-robin setting takes effect at once: the prison's waiting questions are assigned
(``Router.nudge``).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from server.api.base import ApiError, Route, body, path_id, principal, reply
from server.keys import DB, ROUTER
from server.policy import check_desk_settings
from storage import desk_settings
from storage.desk_settings import AutoAssign, DeskHours, DeskSettings
from storage.errors import NotFound
from storage.sql import utcnow

Hours = Annotated[str, msgspec.Meta(max_length=200)]


class HoursIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    zh: Hours = msgspec.field(default="", name="zh-CN")
    en: Hours = ""


class SettingsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    auto_assign: AutoAssign
    assign_cap: Annotated[int, msgspec.Meta(ge=1, le=100)]
    away_reply: bool
    desk_hours: HoursIn = HoursIn()


class SettingsOut(msgspec.Struct, frozen=True):
    prison_id: int
    auto_assign: AutoAssign
    assign_cap: int
    away_reply: bool
    desk_hours: DeskHours
    changed: bool | None = None


def _out(settings: DeskSettings, changed: bool | None = None) -> SettingsOut:
    return SettingsOut(
        settings.prison_id,
        settings.auto_assign,
        settings.assign_cap,
        settings.away_reply,
        settings.desk_hours,
        changed,
    )


async def get_settings(request: web.Request) -> web.Response:
    prison_id = path_id(request)
    check_desk_settings(await principal(request), prison_id, "read")
    try:
        return reply(_out(await desk_settings.settings(request.app[DB], prison_id)))
    except NotFound:
        raise ApiError(404, "not_found", "no such prison") from None


async def put_settings(request: web.Request) -> web.Response:
    prison_id = path_id(request)
    who = check_desk_settings(await principal(request), prison_id, "update")
    form = await body(request, SettingsIn)
    new = DeskSettings(
        prison_id=prison_id,
        auto_assign=form.auto_assign,
        assign_cap=form.assign_cap,
        away_reply=form.away_reply,
        desk_hours=DeskHours(form.desk_hours.zh.strip(), form.desk_hours.en.strip()),
    )
    try:
        stored, changed = await desk_settings.update(request.app[DB], new, who.id, utcnow())
    except NotFound:
        raise ApiError(404, "not_found", "no such prison") from None
    if changed and stored.auto_assign == "round_robin" and ROUTER in request.app:
        request.app[ROUTER].nudge(prison_id)
    return reply(_out(stored, changed))


ROUTES = [
    Route(
        "GET",
        "/prisons/{id}/desk-settings",
        get_settings,
        "The prison's desk settings: auto-assignment (off or round_robin, with the per-officer"
        " cap), the automatic reply when nobody is on duty, and the desk hours it states",
        "officers and supervisors of the prison; admin (another prison: 404)",
        reply=SettingsOut,
        errors=(401, 404),
    ),
    Route(
        "PUT",
        "/prisons/{id}/desk-settings",
        put_settings,
        "Change the prison's desk settings (audited desk_settings.changed)",
        "admin (staff of the prison: 403, others 404)",
        body=SettingsIn,
        reply=SettingsOut,
        errors=(400, 401, 403, 404),
    ),
]
