"""Accounts and sessions: register (relatives), log in, log out, who am I.

Browsers get the session as an HttpOnly, SameSite=Strict cookie (Secure when served over TLS);
other clients use the token from the reply as ``Authorization: Bearer``. The token itself is
stored only as a hash. Logging out revokes that session and closes its sockets on every
process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from channels.protocol import CloseCode
from domain.records import User
from server import accounts, clients, identity, passwords, sessions
from server.api.base import (
    ApiError,
    Route,
    UserOut,
    body,
    invalid,
    principal,
    reply,
    user_out,
)
from server.codes import TooMany
from server.keys import CODES, DB, GATEWAY, SETTINGS
from server.passwords import WeakPassword
from server.policy import check_action
from server.throttle import LoginThrottle
from storage import audit_trail
from storage.accounts import credentials, id_number_last4, password_hash, write_password_hash
from storage.errors import Conflict, NotFound
from storage.phone_codes import Purpose
from storage.sessions import revoke_session, revoke_user_sessions_in
from storage.sql import utcnow

log = logging.getLogger(__name__)

THROTTLE = web.AppKey("login_throttle", LoginThrottle)

Phone = Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9]{6,20}$", description="digits, + allowed")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
IdNumber = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9A-Za-z][0-9A-Za-z -]{4,30}[0-9A-Za-z]$", min_length=6)
]


Code = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$", description="the 6 digits sent")]


class Register(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    phone: Phone
    name: Name
    password: Password
    id_number: IdNumber
    code: Code | None = None  # required unless KINLINE_VERIFY_PHONE=0


class CodeRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    phone: Phone


class Reset(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    phone: Phone
    code: Code
    new_password: Password


class Accepted(msgspec.Struct, frozen=True):
    sent: Literal["if it can be used"] = "if it can be used"


class Login(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    login: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    password: Password


class Registered(msgspec.Struct, frozen=True):
    user: UserOut


class LoggedIn(msgspec.Struct, frozen=True):
    token: str
    user: UserOut
    expires_in: int  # seconds


class Me(msgspec.Struct, frozen=True):
    user: UserOut
    verified_inmates: list[int]
    id_number_last4: str | None = None


def _throttled(exc: TooMany) -> ApiError:
    return ApiError(429, "rate_limited", str(exc), headers={"Retry-After": str(exc.retry_after)})


async def _send_code(request: web.Request, purpose: Purpose) -> web.Response:
    """202 whatever the phone (``server.codes``): the answer never tells who is registered."""
    form = await body(request, CodeRequest)
    try:
        await request.app[CODES].send(form.phone, purpose, clients.address(request), utcnow())
    except TooMany as exc:
        raise _throttled(exc) from None
    return reply(Accepted(), 202)


async def register_code(request: web.Request) -> web.Response:
    return await _send_code(request, "register")


async def reset_code(request: web.Request) -> web.Response:
    return await _send_code(request, "reset")


async def register(request: web.Request) -> web.Response:
    form = await body(request, Register)
    codes, settings = request.app[CODES], request.app[SETTINGS]
    try:
        codes.attempt(clients.address(request))
    except TooMany as exc:
        raise _throttled(exc) from None
    proof = None
    if settings.verify_phone:
        if form.code is None:
            raise invalid("code", "ask for a code first: POST /auth/register/code")
        code, now = form.code, utcnow()
        proof = functools.partial(
            codes.redeem, phone=form.phone, purpose="register", code=code, now=now
        )
    try:
        user = await accounts.register_relative(
            request.app[DB],
            settings.secret,
            phone=form.phone,
            name=form.name,
            password=form.password,
            id_number=form.id_number,
            proof=proof,
        )
    except accounts.InvalidCode as exc:
        raise ApiError(400, "invalid_code", str(exc), field="code") from None
    except identity.InvalidIdNumber as exc:
        raise invalid("id_number", str(exc)) from None
    except WeakPassword as exc:
        raise invalid("password", str(exc)) from None
    except identity.NoSecret:
        log.error("registration refused: KINLINE_SECRET is not set")
        raise ApiError(503, "unavailable", "registration is not configured") from None
    except Conflict:
        raise ApiError(409, "conflict", "this phone number is already registered") from None
    return reply(Registered(user_out(user)), 201)


async def login(request: web.Request) -> web.Response:
    form = await body(request, Login)
    try:
        user = await accounts.login(
            request.app[DB],
            request.app[THROTTLE],
            form.login,
            form.password,
            clients.address(request),
        )
    except accounts.Throttled as exc:
        raise ApiError(
            429, "rate_limited", str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except accounts.LoginFailed as exc:
        raise ApiError(401, "invalid_credentials", str(exc)) from None
    except accounts.AccountDisabled as exc:
        raise ApiError(403, "account_disabled", str(exc)) from None
    return await signed_in(request, user)


async def signed_in(request: web.Request, user: User) -> web.Response:
    """A new session for ``user``: ``LoggedIn`` and the session cookie (also the sign-in
    through WeChat's web authorization, ``server/api/notify.py``)."""
    days = request.app[SETTINGS].session_days
    token = await sessions.issue(request.app[DB], user, days)
    response = reply(LoggedIn(token, user_out(user), days * 86400))
    response.set_cookie(
        sessions.COOKIE,
        token,
        max_age=days * 86400,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=clients.over_tls(request),
    )
    return response


async def logout(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "session")
    token, _ = sessions.presented_token(request)
    assert token is not None  # a principal came from it
    digest = sessions.token_hash(token)
    await revoke_session(request.app[DB], digest)
    request.app[GATEWAY].close_user(
        who.id, CloseCode.NOT_AUTHENTICATED, "signed out", session=digest
    )
    response = web.Response(status=204)
    response.del_cookie(sessions.COOKIE, path="/")
    return response


class PasswordChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    old_password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    new_password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class PasswordChanged(msgspec.Struct, frozen=True):
    sessions_ended: int  # the account's other sessions, now ended


async def change_password(request: web.Request) -> web.Response:
    """The signed-in user's own password, given the old one: every other session of it ends
    (and its sockets close); this one stays. Audited."""
    who = check_action(await principal(request), "session")
    form = await body(request, PasswordChange)
    db = request.app[DB]
    stored = await password_hash(db, who.id)
    if not await asyncio.to_thread(passwords.verify, stored, form.old_password):
        raise invalid("old_password", "the old password is not right")
    user = who.user
    try:
        passwords.check_strength(form.new_password, (user.login, user.name, user.phone))
    except WeakPassword as exc:
        raise invalid("new_password", str(exc)) from None
    fresh = await asyncio.to_thread(passwords.hash_password, form.new_password)
    token, _ = sessions.presented_token(request)
    current = sessions.token_hash(token) if token else None
    async with db.write() as sql:
        await write_password_hash(sql, who.id, fresh)
        ended = await revoke_user_sessions_in(sql, who.id, keep=current)
        await audit_trail.record(
            sql,
            at=utcnow(),
            actor_id=who.id,
            action="user.password_changed",
            object_type="user",
            object_id=who.id,
            prison_id=None,
            after={"sessions_ended": ended},
        )
    request.app[GATEWAY].close_user(
        who.id, CloseCode.NOT_AUTHENTICATED, "password changed", keep=current
    )
    return reply(PasswordChanged(ended))


class _Personal(Exception):
    """The new password holds the account's name or login (rolls the redemption back)."""


async def reset(request: web.Request) -> web.Response:
    """A new password by the code texted to the account's phone: every session ends.

    Nothing in the answer may tell whether the phone has an account: the password is judged
    first against what the caller gave (the phone), the same for any phone; only once the
    code is proven right is it judged against the account's name too, and a password refused
    then rolls the redemption back (the code stays good for a better password)."""
    form = await body(request, Reset)
    db, codes = request.app[DB], request.app[CODES]
    try:
        codes.attempt(clients.address(request))
    except TooMany as exc:
        raise _throttled(exc) from None
    try:
        passwords.check_strength(form.new_password, (form.phone,))
    except WeakPassword as exc:
        raise invalid("new_password", str(exc)) from None
    try:
        user, _ = await credentials(db, form.phone)
    except NotFound:
        user = None
    fresh = await asyncio.to_thread(passwords.hash_password, form.new_password)
    done, ended = False, 0
    try:
        async with db.write() as sql:
            if user is not None and await codes.redeem(
                sql, phone=form.phone, purpose="reset", code=form.code, now=utcnow()
            ):
                try:
                    passwords.check_strength(form.new_password, (user.login, user.name))
                except WeakPassword as exc:
                    raise _Personal(str(exc)) from None
                await write_password_hash(sql, user.id, fresh)
                ended = await revoke_user_sessions_in(sql, user.id)
                await audit_trail.record(
                    sql,
                    at=utcnow(),
                    actor_id=user.id,
                    action="user.password_reset",
                    object_type="user",
                    object_id=user.id,
                    prison_id=None,
                    after={"by": "sms", "sessions_ended": ended},
                )
                done = True
    except _Personal as exc:
        raise invalid("new_password", str(exc)) from None
    if not done or user is None:  # committed: a wrong try counts against the code
        raise ApiError(400, "invalid_code", "the code is not right, or has expired", field="code")
    request.app[GATEWAY].close_user(user.id, CloseCode.NOT_AUTHENTICATED, "password reset")
    return reply(PasswordChanged(ended))


async def me(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "session")
    last4 = await id_number_last4(request.app[DB], who.id)
    return reply(Me(user_out(who.user), sorted(who.verified_inmates), last4))


ROUTES = [
    Route(
        "POST",
        "/auth/register",
        register,
        "Register a relative account (login: the phone number)",
        "anyone",
        body=Register,
        reply=Registered,
        status=201,
        errors=(400, 409, 413),
    ),
    Route(
        "POST",
        "/auth/register/code",
        register_code,
        "Text a code to a phone to register it; 202 whatever the phone (known phones are"
        " told they have an account)",
        "anyone",
        body=CodeRequest,
        reply=Accepted,
        status=202,
        errors=(400, 413, 429),
    ),
    Route(
        "POST",
        "/auth/reset/code",
        reset_code,
        "Text a password-reset code to an account's phone; 202 whatever the phone",
        "anyone",
        body=CodeRequest,
        reply=Accepted,
        status=202,
        errors=(400, 413, 429),
    ),
    Route(
        "POST",
        "/auth/reset",
        reset,
        "A new password by the texted code; every session ends (audited)",
        "anyone",
        body=Reset,
        reply=PasswordChanged,
        errors=(400, 413, 429),
    ),
    Route(
        "POST",
        "/auth/login",
        login,
        "Log in: a session token and an HttpOnly session cookie",
        "anyone",
        body=Login,
        reply=LoggedIn,
        errors=(400, 401, 403, 413, 429),
    ),
    Route(
        "POST",
        "/auth/password",
        change_password,
        "Change one's own password with the old one; the other sessions end (audited)",
        "signed in",
        body=PasswordChange,
        reply=PasswordChanged,
        errors=(400, 401, 413),
    ),
    Route(
        "POST",
        "/auth/logout",
        logout,
        "End this session and close its sockets",
        "signed in",
        reply=None,
        status=204,
        errors=(401, 403),
    ),
    Route("GET", "/me", me, "Who am I", "signed in", reply=Me, errors=(401,)),
]
