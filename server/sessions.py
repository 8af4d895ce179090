"""Session tokens: random, shown to the client once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from aiohttp import web

from domain.records import User
from server.policy import Principal
from storage import family, sessions
from storage.sql import Database

COOKIE = "kinline_session"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def issue(store: Database, user: User, days: int) -> str:
    token = secrets.token_urlsafe(32)
    await sessions.create_session(
        store, user.id, token_hash(token), datetime.now(UTC) + timedelta(days=days)
    )
    return token


def presented_token(request: web.Request) -> tuple[str | None, bool]:
    """The token a request carries, and whether it came from the cookie (Origin matters then)."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else (None, False)


async def user_for(store: Database, token: str) -> User | None:
    if len(token) > 256:
        return None
    return await sessions.session_user(store, token_hash(token), datetime.now(UTC))


async def principal_for(store: Database, user: User) -> Principal:
    """The principal a signed-in user acts as: for a relative, with its verified inmates and
    their prisons read now (permissions follow family links as they are decided), and the
    shared threads of family cases it is a member of, with its join seq."""
    if user.role != "relative":
        return Principal(user)
    return principal_of(user, await family.access(store, user.id))


def principal_of(user: User, access: family.Access) -> Principal:
    """A relative's principal from its verified links and family-case joins."""
    links, joins = access
    return Principal(
        user, frozenset(links), frozenset(links.values()), tuple(sorted(joins.items()))
    )
