"""Session tokens: random, shown to the client once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from aiohttp import web

from storage.base import Store, User

COOKIE = "kinline_session"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def issue(store: Store, user: User, days: int) -> str:
    token = secrets.token_urlsafe(32)
    await store.create_session(user.id, token_hash(token), datetime.now(UTC) + timedelta(days=days))
    return token


def presented_token(request: web.Request) -> tuple[str | None, bool]:
    """The token a request carries, and whether it came from the cookie (Origin matters then)."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else (None, False)


async def user_for(store: Store, token: str) -> User | None:
    if len(token) > 256:
        return None
    return await store.session_user(token_hash(token), datetime.now(UTC))
