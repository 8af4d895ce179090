"""The HTTP API under ``/api/v1`` (DESIGN.md section 3b), one module per area.

``add_routes(app)`` registers every area's ``Route`` rows and serves their OpenAPI
description; a later area adds its module's ``ROUTES`` to ``AREAS``.
"""

from __future__ import annotations

from aiohttp import web

from server.api import (
    access,
    admin,
    announcements,
    attachments,
    auth,
    comments,
    complaints,
    consent,
    conversation_record,
    desk,
    desk_settings,
    export,
    inmate_records,
    inmates,
    keywords,
    links,
    notify,
    openapi,
    oversight,
    period_stats,
    photos,
    prisons,
    reasons,
    records_export,
    search,
    staff,
    stats,
    visits,
)
from server.api.base import Route, add
from server.throttle import LoginThrottle

AREAS: tuple[list[Route], ...] = (
    auth.ROUTES,
    export.ROUTES,
    links.ROUTES,
    admin.ROUTES,
    staff.ROUTES,
    desk.ROUTES,
    desk_settings.ROUTES,
    stats.ROUTES,
    period_stats.ROUTES,
    inmates.ROUTES,
    inmate_records.ROUTES,
    visits.ROUTES,
    prisons.ROUTES,
    photos.ROUTES,
    complaints.ROUTES,
    announcements.ROUTES,
    comments.ROUTES,
    oversight.ROUTES,
    records_export.ROUTES,
    conversation_record.ROUTES,
    search.ROUTES,
    notify.ROUTES,
    consent.ROUTES,  # consent scopes and the family case (issue 15)
    attachments.ROUTES,
    access.ROUTES,  # issue 15: oversight the family can see
    reasons.ROUTES,  # issue 15: refusals you can contest
    keywords.ROUTES,
    openapi.ROUTES,
)


def routes() -> list[Route]:
    return [route for area in AREAS for route in area]


def add_routes(app: web.Application) -> None:
    table = routes()
    app[openapi.ROUTES_KEY] = table
    app[auth.THROTTLE] = LoginThrottle()
    add(app, table)


__all__ = ["add_routes", "routes"]
