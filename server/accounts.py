"""Registering relatives and logging in, independent of HTTP.

Passwords are hashed and verified in a worker thread: argon2id takes ~100 ms of CPU by design,
which must not stall every socket of the event loop. An unknown login is verified against
``DUMMY_HASH`` so it takes as long as a wrong password, and both get the same ``LoginFailed``.
"""

from __future__ import annotations

import asyncio

from domain.records import User
from server import identity, passwords
from server.throttle import LoginThrottle
from storage import accounts
from storage.errors import NotFound
from storage.sql import Database


class LoginFailed(Exception):
    """Wrong login or password (which one is never said)."""


class AccountDisabled(Exception):
    """The right password for an account the bureau has disabled."""


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


async def register_relative(
    store: Database, secret: str, *, phone: str, name: str, password: str, id_number: str
) -> User:
    """A new relative account. Raises ``identity.InvalidIdNumber``, ``WeakPassword``,
    ``identity.NoSecret`` or ``Conflict("login")`` (the phone is registered). An id number
    in use already is a claim under review, not a refusal (``storage.accounts.add_relative``)."""
    problem = identity.problem(id_number)
    if problem is not None:
        raise identity.InvalidIdNumber(problem)
    passwords.check_strength(password, (phone, name, id_number))
    digest = identity.digest(secret, id_number)
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    return await accounts.add_relative(
        store, phone, name.strip(), password_hash, digest, identity.last4(id_number)
    )


async def login(
    store: Database, throttle: LoginThrottle, login_name: str, password: str, address: str
) -> User:
    """The user whose credentials these are; ``Throttled``, ``LoginFailed`` or (the right
    password of a disabled account) ``AccountDisabled`` otherwise.
    Re-hashes the password when the hashing parameters have changed since it was stored."""
    wait = throttle.retry_after(login_name, address)
    if wait:
        raise Throttled(wait)
    try:
        user, stored = await accounts.credentials(store, login_name.strip())
    except NotFound:
        user = None
        stored = await accounts.disabled_password_hash(store, login_name.strip()) or ""
    ok = await asyncio.to_thread(passwords.verify, stored or passwords.DUMMY_HASH, password)
    if user is None and ok and stored:
        raise AccountDisabled("this account is disabled; ask the bureau")
    if user is None or not ok:
        throttle.failed(login_name, address)
        raise LoginFailed("wrong login or password")
    throttle.succeeded(login_name, address)
    if passwords.needs_rehash(stored):
        fresh = await asyncio.to_thread(passwords.hash_password, password)
        await accounts.set_password_hash(store, user.id, fresh)
    return user
