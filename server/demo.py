"""Demo data for ``kinline serve --demo`` (extended by the duty desk issue)."""

from __future__ import annotations

import contextlib

from server.passwords import hash_password
from storage.base import Conflict, NotFound, Store

DEMO_PASSWORD = "kinline-demo-2026"  # noqa: S105 (printed for the demo on purpose)


async def seed(store: Store) -> list[str]:
    """Seed idempotently; return the lines that tell the operator how to sign in."""
    try:
        prison = await store.prison_by_code("GM")
    except NotFound:
        prison = await store.add_prison("GM", "高明监狱 Gaoming Prison", "Foshan")
    for role, login, name in (
        ("officer", "officer.li", "Officer Li Wei"),
        ("supervisor", "supervisor.wang", "Wang Fang"),
    ):
        with contextlib.suppress(Conflict):
            await store.add_user(role, login, name, hash_password(DEMO_PASSWORD), [prison.id])  # type: ignore[arg-type]
    return [f"demo logins (password {DEMO_PASSWORD}): officer.li, supervisor.wang"]
