"""Cross-site request forgery: a state-changing request that is authenticated by the session
cookie must come from an allowed origin.

Browsers attach the cookie to cross-site requests (SameSite=Strict stops most, not all, e.g.
from a sibling subdomain); they always send ``Origin`` on POST, PUT, PATCH and DELETE, and a
page cannot forge it. A request carrying a bearer token is not at risk (a foreign page cannot
add that header), so it is not checked. The WebSocket handshake has its own check (gateway).
"""

from __future__ import annotations

from collections.abc import Awaitable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from server import sessions
from server.config import Settings
from server.errors import json_error

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def _now(response: web.StreamResponse) -> web.StreamResponse:
    return response


def cookie_origin_guard(settings: Settings) -> Middleware:
    allowed = settings.origins

    @web.middleware
    def guard(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # Not a coroutine: it returns the handler's awaitable, so no frame of its own stays
        # for a request's life (a WebSocket's is long: issue 17).
        if request.method in UNSAFE:
            _, from_cookie = sessions.presented_token(request)
            origin = request.headers.get("Origin", "").rstrip("/")
            if from_cookie and origin not in allowed:
                return _now(
                    json_error(
                        403, "forbidden_origin", "this origin may not use the session cookie"
                    )
                )
        return handler(request)

    return guard
