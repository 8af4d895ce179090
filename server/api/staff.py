"""The staff life cycle and password resets (DESIGN.md, second-round routes).

Disable means off: in one transaction the account is flagged, every session of it revoked,
every conversation it held returned to the queue with a note, and all of it audited; then its
sockets are closed on every process (``Gateway.close_user``,
through the control topic) and login answers 403 ``account_disabled`` to its right password.
Re-enabling lets it sign in again and brings no old session back. A new password set by the
admin, or by an officer for a relative of its prison at the visit desk, also ends every
session of the account. Who may do what is ``server.policy.check_account``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from aiohttp import web

from channels.protocol import CloseCode
from domain.records import User
from server import passwords
from server.api import desk as desk_api
from server.api.base import (
    ApiError,
    Id,
    Route,
    UserOut,
    body,
    invalid,
    path_id,
    principal,
    reply,
    user_out,
)
from server.keys import DB, GATEWAY
from server.policy import AccountAction, check_account
from storage import accounts, audit_trail, desk, links, prisons, sessions
from storage.errors import NotFound
from storage.sql import Database, utcnow

RELEASED = "returned to the queue: the officer's account was disabled"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class NewPassword(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    new_password: Password


class StaffEdit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name | None = None
    prison_ids: Annotated[list[Id], msgspec.Meta(max_length=50)] | None = None


class AccountOut(msgspec.Struct, frozen=True):
    user: UserOut
    disabled: bool
    sessions_ended: int = 0


async def _target(request: web.Request, action: AccountAction) -> tuple[int, User]:
    """The acting user's id and the account it may act on (404 for no such user)."""
    who = await principal(request)
    try:
        target = await accounts.user(request.app[DB], path_id(request))
    except NotFound:
        raise ApiError(404, "not_found", "no such user") from None
    linked: set[int] = set()
    if target.role == "relative" and action == "reset_password":
        found = await links.links(request.app[DB], relative_id=target.id, limit=500)
        linked = {link.prison_id for link in found if link.prison_id is not None}
    target = check_account(who, target, action, linked)
    assert who is not None
    return who.id, target


async def _switch(request: web.Request, disabled: bool) -> web.Response:
    actor, target = await _target(request, "disable" if disabled else "enable")
    db = request.app[DB]
    action = "user.disable" if disabled else "user.enable"
    released: list[desk.Thread] = []
    async with db.write() as sql:
        changed = await accounts.set_disabled(sql, target.id, disabled)
        ended = await sessions.revoke_user_sessions_in(sql, target.id) if disabled else 0
        if disabled and changed:  # what it held goes back to the queue, with a note
            released = await desk.release_held(db, sql, target.id, actor, utcnow(), RELEASED)
        if changed:
            await audit_trail.record(
                sql,
                at=utcnow(),
                actor_id=actor,
                action=action,
                object_type="user",
                object_id=target.id,
                prison_id=None,
                before={"disabled": not disabled},
                after={"disabled": disabled, "sessions_ended": ended},
            )
    if disabled:
        request.app[GATEWAY].close_user(target.id, CloseCode.NOT_AUTHENTICATED, "account disabled")
    for thread in released:
        await desk_api.announce(request.app, "released", thread, actor, RELEASED)
    return reply(AccountOut(user_out(target), disabled, ended))


async def disable(request: web.Request) -> web.Response:
    return await _switch(request, True)


async def enable(request: web.Request) -> web.Response:
    return await _switch(request, False)


async def set_password(request: web.Request) -> web.Response:
    """A new password chosen by the admin (any account) or by an officer for a relative of
    its prison; every session of the account ends."""
    actor, target = await _target(request, "reset_password")
    form = await body(request, NewPassword)
    db = request.app[DB]
    try:
        passwords.check_strength(form.new_password, (target.login, target.name, target.phone))
    except passwords.WeakPassword as exc:
        raise invalid("new_password", str(exc)) from None
    fresh = await asyncio.to_thread(passwords.hash_password, form.new_password)
    async with db.write() as sql:
        await accounts.write_password_hash(sql, target.id, fresh)
        ended = await sessions.revoke_user_sessions_in(sql, target.id)
        await audit_trail.record(
            sql,
            at=utcnow(),
            actor_id=actor,
            action="user.password_reset",
            object_type="user",
            object_id=target.id,
            prison_id=None,
            after={"sessions_ended": ended},
        )
    request.app[GATEWAY].close_user(target.id, CloseCode.NOT_AUTHENTICATED, "password reset")
    disabled = await accounts.is_disabled(db, target.id)
    return reply(AccountOut(user_out(target), disabled, ended))


async def _check_prisons(db: Database, target: User, prison_ids: list[int]) -> None:
    if target.role == "officer" and len(set(prison_ids)) != 1:
        raise invalid("prison_ids", "an officer belongs to exactly one prison")
    if target.role == "supervisor" and not prison_ids:
        raise invalid("prison_ids", "a supervisor belongs to one or more prisons")
    if target.role == "admin" and prison_ids:
        raise invalid("prison_ids", "an admin belongs to the bureau, not to a prison")
    unknown = set(prison_ids) - {p.id for p in await prisons.prisons(db)}
    if unknown:
        raise invalid("prison_ids", f"no prison with id {min(unknown)}")


async def edit(request: web.Request) -> web.Response:
    """A staff account's name and prisons (an officer moved to another prison, a supervisor
    given another); the account's sockets re-read their permissions at once."""
    actor, target = await _target(request, "edit")
    form = await body(request, StaffEdit)
    db = request.app[DB]
    name = target.name if form.name is None else form.name.strip()
    prison_ids = list(target.prison_ids) if form.prison_ids is None else form.prison_ids
    await _check_prisons(db, target, prison_ids)
    async with db.write() as sql:
        await accounts.update_staff(sql, target.id, name, prison_ids)
        await audit_trail.record(
            sql,
            at=utcnow(),
            actor_id=actor,
            action="user.edit",
            object_type="user",
            object_id=target.id,
            prison_id=None,
            before={"name": target.name, "prison_ids": list(target.prison_ids)},
            after={"name": name, "prison_ids": sorted(set(prison_ids))},
        )
    if set(prison_ids) != set(target.prison_ids):  # its sockets follow other prisons now
        request.app[GATEWAY].close_user(target.id, CloseCode.RESTARTING, "prisons changed")
    edited = await accounts.user(db, target.id)
    return reply(AccountOut(user_out(edited), await accounts.is_disabled(db, target.id)))


_ERRORS = (400, 401, 403, 404, 413)
ROUTES = [
    Route(
        "POST",
        "/admin/users/{id}/disable",
        disable,
        "Disable an account: its sessions end, its sockets close everywhere, login answers"
        " account_disabled (audited)",
        "admin",
        reply=AccountOut,
        errors=(401, 403, 404),
    ),
    Route(
        "POST",
        "/admin/users/{id}/enable",
        enable,
        "Re-enable a disabled account; no old session comes back (audited)",
        "admin",
        reply=AccountOut,
        errors=(401, 403, 404),
    ),
    Route(
        "POST",
        "/admin/users/{id}/password",
        set_password,
        "Set a new password: the admin for any account, an officer for a relative with a"
        " family link to its prison (the visit desk); every session ends (audited)",
        "admin, officer",
        body=NewPassword,
        reply=AccountOut,
        errors=_ERRORS,
    ),
    Route(
        "PATCH",
        "/admin/users/{id}",
        edit,
        "Change a staff account's name or prisons (audited)",
        "admin",
        body=StaffEdit,
        reply=AccountOut,
        errors=_ERRORS,
    ),
]
