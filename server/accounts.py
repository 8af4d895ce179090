"""Registering relatives and logging in, independent of HTTP.

Passwords are hashed and verified in a worker thread: argon2id takes ~100 ms of CPU by design,
which must not stall every socket of the event loop. An unknown login is verified against
``DUMMY_HASH`` so it takes as long as a wrong password, and both get the same ``LoginFailed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from domain.records import User
from server import identity, passwords
from server.throttle import LoginThrottle
from storage import accounts
from storage.errors import NotFound
from storage.sql import Database, Sql


class LoginFailed(Exception):
    """Wrong login or password (which one is never said)."""


class AccountDisabled(Exception):
    """The right password for an account the bureau has disabled."""


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


class InvalidCode(Exception):
    """The phone's SMS code is wrong, expired, spent or was never sent (one answer for all)."""


async def register_relative(
    store: Database,
    secret: str,
    *,
    phone: str,
    name: str,
    password: str,
    id_number: str,
    proof: Callable[[Sql], Awaitable[bool]] | None = None,
) -> User:
    """A new relative account, made only if ``proof`` (spending the phone's SMS code in the
    account's transaction) holds. Raises ``InvalidCode``, ``identity.InvalidIdNumber``,
    ``WeakPassword``, ``identity.NoSecret`` or ``Conflict("login")`` (the phone is
    registered). An id number in use already is a claim under review, not a refusal
    (``storage.accounts.insert_relative``)."""
    problem = identity.problem(id_number)
    if problem is not None:
        raise identity.InvalidIdNumber(problem)
    passwords.check_strength(password, (phone, name, id_number))
    digest = identity.digest(secret, id_number)
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    user = None
    async with store.write() as sql:  # the code is spent only with the account made
        if proof is None or await proof(sql):
            user = await accounts.insert_relative(
                sql, phone, name.strip(), password_hash, digest, identity.last4(id_number)
            )
    if user is None:  # committed: the wrong try counts against the code
        raise InvalidCode("the code is not right, or has expired; ask for a new one")
    return user


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
