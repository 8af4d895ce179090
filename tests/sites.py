"""A Kinline server for API tests: in this process on a real port, PostgreSQL and Redis, the
seeded world (tests/world.py) and an HTTP session that calls ``/api/v1`` as any of its users."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from server.config import Settings
from storage.postgres import PostgresDatabase
from tests.servers import free_port, inprocess
from tests.world import Staff, World, seed, seed_staff


@dataclass
class Site:
    api: str  # http://127.0.0.1:port/api/v1
    ws: str
    http: aiohttp.ClientSession
    store: PostgresDatabase
    world: World
    staff: Staff
    app: Any

    async def call(
        self, method: str, path: str, who: Any = None, json: Any = None
    ) -> tuple[int, Any]:
        """``method path`` as ``who`` (a seeded user; anonymous when None): the status and
        the JSON body (None when there is none)."""
        headers = {"Authorization": f"Bearer {self.world.token(who)}"} if who else {}
        async with self.http.request(
            method, self.api + path, json=json, headers=headers
        ) as response:
            text = await response.text()
            return response.status, (await response.json() if text else None)


@asynccontextmanager
async def site_for(
    store: PostgresDatabase,
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    *,
    extra_officers: int = 0,
    **settings: Any,
) -> AsyncIterator[Site]:
    """Seed ``store`` and serve it; ``settings`` override the test defaults."""
    world = await seed(store, extra_officers=extra_officers)
    staff = await seed_staff(store, world)
    configured = dataclasses.replace(
        Settings(
            database_url=pg_url,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            port=free_port(),
            secret="tests",
        ),
        **settings,
    )
    async with inprocess(configured, store) as served, aiohttp.ClientSession() as http:
        yield Site(
            served.http_url + "/api/v1", served.ws_url, http, store, world, staff, served.app
        )
