"""Every HTTP error is ``{"error": {"code", "message"}}`` with its status; every response
carries the security headers. User text is never rendered as HTML by the server. Whatever
``server.faults`` classifies as "the database cannot do this now" is 503 ``unavailable``
(``Retry-After: 1``), logged once per outage episode."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from server import faults

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


async def answer_and_close(request: web.Request, response: web.Response) -> web.Response:
    """Write ``response`` now and close the connection: its request body was not read, and
    waiting for it (aiohttp's lingering close reads on for 10 s) would hold the connection."""
    response.headers.update(SECURITY_HEADERS)
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()  # the transport flushes what was written, then closes
    return response


# The routes that take a file, allowed ``upload_bytes`` instead (they read their body with
# the same bound themselves: ``server/api/uploads.py``).
UPLOAD_PATHS = re.compile(
    r"^/api/v1/admin/(supervisors/[0-9]+/photo|prisons/[0-9]+/inmates/import)$"
)


# The attachment upload (issue 18), allowed a file of ``attachment_bytes`` and its multipart
# framing.
ATTACHMENT_PATH = "/api/v1/attachments"
MULTIPART_SLACK = 16 * 1024


def oversize_guard(
    max_bytes: int, upload_bytes: int | None = None, *, attachment_bytes: int | None = None
) -> Middleware:
    """413 ``too_large`` at once, before reading, for a body announced larger than
    ``max_bytes`` (``upload_bytes`` on the upload routes), and close the connection (nothing
    of the body is read or waited for)."""

    @web.middleware
    def guard(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # Not a coroutine: it returns the handler's awaitable, so no frame of its own stays
        # for a request's life (a WebSocket's is long: issue 17).
        limit = max_bytes
        if upload_bytes is not None and UPLOAD_PATHS.match(request.path):
            limit = max(max_bytes, upload_bytes)
        if attachment_bytes is not None and request.path == ATTACHMENT_PATH:
            limit = max(max_bytes, attachment_bytes + MULTIPART_SLACK)
        if request.content_length is not None and request.content_length > limit:
            response = json_error(413, "too_large", f"the body exceeds {limit} bytes")
            return answer_and_close(request, response)
        return handler(request)

    return guard


def error_response(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The JSON answer for ``exc``, raised by a handler (called in its ``except`` block): an
    HTTP error keeps its status, a storage fault is 503, anything else is a bug (logged, 500).
    An ``HTTPException`` below 400 (a redirect) is raised again."""
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return json_error(exc.status, _CODES.get(exc.status, "error"), exc.reason)
    if faults.unavailable(exc):  # logged once per outage, without a traceback
        faults.STORAGE.failed(exc)
        return json_error(
            503, "unavailable", "storage is unavailable; try again", **{"Retry-After": "1"}
        )
    log.exception("request failed", extra={"path": request.path})
    return json_error(500, "internal", "internal error")


def secured(response: web.StreamResponse) -> web.StreamResponse:
    if not response.prepared:  # a WebSocket is already upgraded
        response.headers.update(SECURITY_HEADERS)
    return response


_GUARDED: set[Handler] = set()


def guards_itself(handler: Handler) -> Handler:
    """Mark a route's handler that answers its own errors (:func:`error_response`,
    :func:`secured`) in its own frame: :func:`errors_and_headers` keeps no coroutine frame
    around it, which for a WebSocket's handler stays for the socket's whole life (issue 17)."""
    _GUARDED.add(handler)
    return handler


@web.middleware
def errors_and_headers(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    if request.match_info.handler in _GUARDED:
        return handler(request)
    return _errors_and_headers(request, handler)


async def _errors_and_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except Exception as exc:
        response = error_response(request, exc)
    return secured(response)
