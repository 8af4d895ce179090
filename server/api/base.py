"""The pieces every API handler shares: the route table, typed bodies, replies and errors.

A body is decoded once, straight into a msgspec Struct whose annotations carry the constraints
(lengths, patterns, bounds); unknown fields are refused. Any failure is a 400
``invalid_request`` that names the field. Every string anywhere in a body or query, whatever
its route, is checked once decoded: text no database can store (NUL, lone surrogates) is a 400
``invalid_text`` naming the field, never a 500 from the database. Every integer a client sends
is bounded by one of the shared types below (``Id``, ``Seq``, ``Limit``, ``PublicLimit``),
never a bare ``int``: an unbounded one would reach storage (SQLite's and PostgreSQL's integers
are 64-bit) and fail there as a 500 or 503 instead of a 400. Every date and time is checked
against one window (``EARLIEST``..``LATEST``) once decoded, so no date arithmetic or time-zone
conversion further on can overflow. Handlers raise; ``_guarded`` turns the exceptions into
``{"error": {code, message}}`` replies, so no handler builds an error by hand, and the policy's
``Denied`` becomes 404 (``not_found``: an object one may not see is answered like one that does
not exist) or 403 (``forbidden``).

Each area module lists its routes as ``Route`` rows; the same rows register the handlers and
generate ``/api/v1/openapi.json``, so the description cannot drift from what is served.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

import msgspec
from aiohttp import web

from channels.text import INVALID_TEXT, storable
from domain.records import Role
from server import sessions
from server.errors import answer_and_close
from server.keys import DB, SETTINGS
from server.policy import Denied, NotSignedIn, Principal

PREFIX = "/api/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


class ErrorDetail(msgspec.Struct, frozen=True, omit_defaults=True):
    code: str
    message: str
    field: str | None = None  # the body or query field a 400 is about


class ErrorReply(msgspec.Struct, frozen=True):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = ErrorDetail(code, message, field)
        self.headers = headers or {}
        self.close = close  # answer, then close the connection (its request was not read)


def invalid(field: str | None, message: str) -> ApiError:
    return ApiError(400, "invalid_request", message, field=field)


@dataclass(frozen=True)
class Route:
    """One endpoint: how it is served and how it is described."""

    method: str
    path: str  # under PREFIX, with {name} parameters
    handler: Handler
    summary: str
    who: str  # the policy, in words (the policy module decides; this documents it)
    body: type[Any] | None = None
    query: type[Any] | None = None
    reply: type[Any] | None = None  # None: no content
    status: int = 200
    errors: tuple[int, ...] = ()

    @property
    def full_path(self) -> str:
        return PREFIX + self.path


# bodies and queries

MAX_ID = 2**63 - 1  # the largest PostgreSQL BIGINT and SQLite INTEGER
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]  # a stored object's id
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]  # a position or count from 0 (seq, after=)
Limit = Annotated[int, msgspec.Meta(ge=1, le=500)]  # rows in one page
PublicLimit = Annotated[int, msgspec.Meta(ge=1, le=200)]  # rows in one page anyone may ask for

# The dates and times a client may send (a term that started decades ago, a release date far
# ahead): anything outside is a typing mistake, and would overflow date arithmetic.
EARLIEST = date(1900, 1, 1)
LATEST = date(2199, 12, 31)

_AT = re.compile(r"at `\$\.([A-Za-z0-9_]+)")
_NAMED = re.compile(r"(?:required|unknown) field `([^`]+)`")


def _field(message: str) -> str | None:
    found = _AT.search(message) or _NAMED.search(message)
    return found.group(1) if found else None


def _check_values(value: object, where: str | None = None) -> None:
    """Refuse (400, naming the field, dotted when nested), anywhere in a decoded body or query:
    text no database can store (``invalid_text``: NUL, lone surrogates; see
    :mod:`channels.text`), and a date or time outside the window (``invalid_request``)."""
    if isinstance(value, str):
        if not storable(value):
            raise ApiError(
                400,
                INVALID_TEXT,
                f"{where or 'the text'} may not contain NUL or lone surrogates",
                field=where,
            )
    elif isinstance(value, msgspec.Struct):
        for name, wire in zip(value.__struct_fields__, value.__struct_encode_fields__, strict=True):
            _check_values(getattr(value, name), wire if where is None else f"{where}.{wire}")
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_values(item, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_values(key, where)
            _check_values(item, where)
    elif isinstance(value, date):  # a datetime too: its date where it was written
        day = value.date() if isinstance(value, datetime) else value
        if not EARLIEST <= day <= LATEST:
            raise invalid(where, f"{where or 'a date'} must be between {EARLIEST} and {LATEST}")


def _check_raw(value: object, where: str | None = None) -> None:
    """``_check_values`` on a body that did not decode as its type: the same ``invalid_text``
    answer for unstorable text, named by its JSON path, whatever else is wrong with it."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_values(key, where)
            _check_raw(item, str(key) if where is None else f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _check_raw(item, where)
    elif isinstance(value, str):
        _check_values(value, where)


def _checked(value: T) -> T:
    _check_values(value)
    return value


async def body(request: web.Request, kind: type[T]) -> T:
    """The request's JSON body as ``kind``. A body announced larger than
    ``max_request_bytes`` is 413 before it is read (``server.errors.oversize_guard``); one
    not received within ``body_timeout`` seconds is 408 ``body_timeout``, and the connection
    is closed (a client announcing a body it never sends does not hold it open)."""
    if request.content_type != "application/json":
        raise invalid(None, "send a JSON body with Content-Type: application/json")
    timeout = request.app[SETTINGS].body_timeout
    try:
        async with asyncio.timeout(timeout):
            data = await request.read()  # aiohttp enforces client_max_size (413) as it reads
    except TimeoutError:
        raise ApiError(
            408, "body_timeout", f"the body did not arrive within {timeout:g} s", close=True
        ) from None
    try:
        decoded = msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        _check_raw(msgspec.json.decode(data))  # unstorable text is named first, wherever it is
        raise invalid(_field(str(exc)), str(exc)) from None
    except msgspec.DecodeError:
        raise invalid(None, "the body is not valid JSON") from None
    return _checked(decoded)


def query(request: web.Request, kind: type[T]) -> T:
    try:
        decoded = msgspec.convert(dict(request.query), kind, strict=False)
    except msgspec.ValidationError as exc:
        raise invalid(_field(str(exc)), str(exc)) from None
    return _checked(decoded)


_PATH_ID = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() also takes "²"


def path_id(request: web.Request, name: str = "id") -> int:
    """An integer path parameter (0 .. ``MAX_ID``); anything else names nothing, hence 404."""
    text = request.match_info[name]
    if not _PATH_ID.fullmatch(text) or int(text) > MAX_ID:
        raise ApiError(404, "not_found", "no such object")
    return int(text)


def reply(payload: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(payload), content_type="application/json"
    )


# who is asking

_PRINCIPAL = web.RequestKey[Principal | None]("kinline_principal")


async def principal(request: web.Request) -> Principal | None:
    """The signed-in principal (bearer token or session cookie), or None; looked up once."""
    if _PRINCIPAL in request:
        return request[_PRINCIPAL]
    token, _ = sessions.presented_token(request)
    who = None
    if token is not None:
        store = request.app[DB]
        user = await sessions.user_for(store, token)
        if user is not None:
            who = await sessions.principal_for(store, user)
    request[_PRINCIPAL] = who
    return who


# replies shared by several areas


class UserOut(msgspec.Struct, frozen=True):
    id: int
    role: Role
    login: str
    name: str
    prison_ids: list[int]
    phone: str | None = None


def user_out(user: Any) -> UserOut:
    return UserOut(user.id, user.role, user.login, user.name, list(user.prison_ids), user.phone)


# registration


def _error(status: int, detail: ErrorDetail, headers: dict[str, str] | None = None) -> web.Response:
    response = reply(ErrorReply(detail), status)
    response.headers.update(headers or {})
    return response


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            response = _error(exc.status, exc.detail, exc.headers)
            if exc.close:
                return await answer_and_close(request, response)
            return response
        except NotSignedIn as exc:
            return _error(401, ErrorDetail("not_authenticated", str(exc)))
        except Denied as denied:
            status = 404 if denied.code == "not_found" else 403
            return _error(status, ErrorDetail(denied.code, denied.message))

    return guarded


def add(app: web.Application, routes: list[Route]) -> None:
    for route in routes:
        app.router.add_route(route.method, route.full_path, _guarded(route.handler))
