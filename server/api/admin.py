"""Bureau administration: prisons, staff accounts, revoking a user's sessions. Admin only;
every change is in the audit trail with who, when, what, before and after."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from channels.protocol import CloseCode
from domain.records import Prison, Role
from server import passwords
from server.api.base import (
    ApiError,
    Id,
    Limit,
    Route,
    UserOut,
    body,
    invalid,
    path_id,
    principal,
    query,
    reply,
    user_out,
)
from server.keys import DB, GATEWAY
from server.policy import check_action
from storage import accounts, audit_trail, prisons, sessions
from storage.errors import Conflict, NotFound
from storage.sql import utcnow

Login = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]{2,39}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
StaffRole = Literal["officer", "supervisor", "admin"]


class NewStaff(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: StaffRole
    login: Login
    name: Name
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    prison_ids: Annotated[list[Id], msgspec.Meta(max_length=50)] = []


class NewPrison(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{0,19}$")]
    name: Name
    city: Annotated[str, msgspec.Meta(max_length=100)] = ""


class UsersQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Role | None = None
    limit: Limit = 100


class PrisonOut(msgspec.Struct, frozen=True):
    id: int
    code: str
    name: str
    city: str


class AccountRow(UserOut, frozen=True):
    disabled: bool = False  # switched off by the bureau (POST /admin/users/{id}/disable)


class UserList(msgspec.Struct, frozen=True):
    users: list[AccountRow]


class PrisonList(msgspec.Struct, frozen=True):
    prisons: list[PrisonOut]


class Revoked(msgspec.Struct, frozen=True):
    revoked: int  # sessions ended


def prison_out(prison: Prison) -> PrisonOut:
    return PrisonOut(prison.id, prison.code, prison.name, prison.city)


async def list_users(request: web.Request) -> web.Response:
    check_action(await principal(request), "admin")
    wanted = query(request, UsersQuery)
    users = await accounts.users(request.app[DB], role=wanted.role, limit=wanted.limit)
    off = await accounts.disabled_ids(request.app[DB], [u.id for u in users])
    rows = [AccountRow(**msgspec.structs.asdict(user_out(u)), disabled=u.id in off) for u in users]
    return reply(UserList(rows))


async def create_user(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "admin")
    form = await body(request, NewStaff)
    store = request.app[DB]
    prison_ids = sorted(set(form.prison_ids))
    if form.role == "officer" and len(prison_ids) != 1:
        raise invalid("prison_ids", "an officer belongs to exactly one prison")
    if form.role == "supervisor" and not prison_ids:
        raise invalid("prison_ids", "a supervisor belongs to one or more prisons")
    if form.role == "admin" and prison_ids:
        raise invalid("prison_ids", "an admin belongs to the bureau, not to a prison")
    known = {p.id for p in await prisons.prisons(store)}
    if set(prison_ids) - known:
        raise invalid("prison_ids", f"no prison with id {min(set(prison_ids) - known)}")
    try:
        passwords.check_strength(form.password, (form.login, form.name))
    except passwords.WeakPassword as exc:
        raise invalid("password", str(exc)) from None
    password_hash = await asyncio.to_thread(passwords.hash_password, form.password)
    try:
        async with store.write() as sql:
            user = await accounts.insert_user(
                sql, form.role, form.login, form.name, password_hash, prison_ids
            )
            await audit_trail.record(
                sql,
                at=utcnow(),
                actor_id=who.id,
                action="user.create",
                object_type="user",
                object_id=user.id,
                prison_id=None,
                after={"role": user.role, "login": user.login, "name": user.name}
                | {"prison_ids": prison_ids},
            )
    except Conflict:
        raise ApiError(409, "conflict", "this login is taken") from None
    return reply(user_out(user), 201)


async def revoke_sessions(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "admin")
    store = request.app[DB]
    try:
        user = await accounts.user(store, path_id(request))
    except NotFound:
        raise ApiError(404, "not_found", "no such user") from None
    async with store.write() as sql:
        revoked = await sessions.revoke_user_sessions_in(sql, user.id)
        await audit_trail.record(
            sql,
            at=utcnow(),
            actor_id=who.id,
            action="user.revoke_sessions",
            object_type="user",
            object_id=user.id,
            prison_id=None,
            before={"live_sessions": revoked},
            after={"live_sessions": 0},
        )
    request.app[GATEWAY].close_user(user.id, CloseCode.NOT_AUTHENTICATED, "sessions revoked")
    return reply(Revoked(revoked))


async def list_prisons(request: web.Request) -> web.Response:
    check_action(await principal(request), "admin")
    return reply(PrisonList([prison_out(p) for p in await prisons.prisons(request.app[DB])]))


async def create_prison(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "admin")
    form = await body(request, NewPrison)
    store = request.app[DB]
    try:
        async with store.write() as sql:
            prison = await prisons.insert_prison(
                sql, form.code, form.name.strip(), form.city.strip()
            )
            await audit_trail.record(
                sql,
                at=utcnow(),
                actor_id=who.id,
                action="prison.create",
                object_type="prison",
                object_id=prison.id,
                prison_id=prison.id,
                after={"code": prison.code, "name": prison.name, "city": prison.city},
            )
    except Conflict:
        raise ApiError(409, "conflict", "this prison code is taken") from None
    return reply(prison_out(prison), 201)


_ADMIN = "admin"
ROUTES = [
    Route(
        "GET",
        "/admin/users",
        list_users,
        "List accounts",
        _ADMIN,
        query=UsersQuery,
        reply=UserList,
        errors=(400, 401, 403),
    ),
    Route(
        "POST",
        "/admin/users",
        create_user,
        "Create a staff account (officer: one prison; supervisor: one or more) (audited)",
        _ADMIN,
        body=NewStaff,
        reply=UserOut,
        status=201,
        errors=(400, 401, 403, 409, 413),
    ),
    Route(
        "POST",
        "/admin/users/{id}/revoke-sessions",
        revoke_sessions,
        "End every session of a user and close its sockets (audited)",
        _ADMIN,
        reply=Revoked,
        errors=(401, 403, 404),
    ),
    Route(
        "GET",
        "/admin/prisons",
        list_prisons,
        "List prisons",
        _ADMIN,
        reply=PrisonList,
        errors=(401, 403),
    ),
    Route(
        "POST",
        "/admin/prisons",
        create_prison,
        "Create a prison (audited)",
        _ADMIN,
        body=NewPrison,
        reply=PrisonOut,
        status=201,
        errors=(400, 401, 403, 409, 413),
    ),
]
