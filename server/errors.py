"""Every HTTP error is ``{"error": {"code", "message"}}`` with its status; every response
carries the security headers. User text is never rendered as HTML by the server."""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from storage.base import StoreUnavailable

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

_CODES = {
    400: "invalid_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
    503: "unavailable",
}


def json_error(status: int, code: str, message: str, **headers: str) -> web.Response:
    body = msgspec.json.encode({"error": {"code": code, "message": message}})
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


@web.middleware
async def errors_and_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_error(exc.status, _CODES.get(exc.status, "error"), exc.reason)
    except StoreUnavailable:
        response = json_error(503, "unavailable", "storage is unavailable; try again")
    except Exception:
        log.exception("request failed", extra={"path": request.path})
        response = json_error(500, "internal", "internal error")
    if not response.prepared:  # a WebSocket is already upgraded
        response.headers.update(SECURITY_HEADERS)
    return response
