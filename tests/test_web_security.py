"""Web security over real HTTP: the cookie needs an allowed Origin to change state, bodies are
bounded and validated, every error is JSON with its status, every response has the headers."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server import passwords, sessions
from server.config import Settings
from server.errors import SECURITY_HEADERS
from storage import accounts
from storage.postgres import PostgresDatabase
from storage.sqlite import SqliteDatabase
from tests.servers import free_port, inprocess
from tests.world import World, seed


@dataclasses.dataclass
class Site:
    base: str
    api: str
    http: aiohttp.ClientSession
    world: World
    settings: Settings


@pytest.fixture
async def site(pg_store: PostgresDatabase, pg_url: str) -> AsyncIterator[Site]:
    world = await seed(pg_store)
    settings = Settings(database_url=pg_url, port=free_port(), secret="web", max_request_bytes=2048)
    async with (
        inprocess(settings, pg_store) as served,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        yield Site(served.http_url, served.http_url + "/api/v1", http, world, settings)


def cookie(site: Site) -> dict[str, str]:
    return {"Cookie": f"{sessions.COOKIE}={site.world.token(site.world.stranger)}"}


async def status_and_error(response: aiohttp.ClientResponse) -> tuple[int, Any]:
    assert response.content_type == "application/json"
    return response.status, (await response.json()).get("error", {}).get("code")


LINK = {"prison": "GM", "inmate_number": "GM-001", "relationship": "son"}


async def test_a_cookie_cannot_change_state_without_an_allowed_origin(site: Site) -> None:
    for origin in (None, "https://evil.example", "null"):
        headers = cookie(site) | ({"Origin": origin} if origin else {})
        async with site.http.post(site.api + "/links", json=LINK, headers=headers) as response:
            assert await status_and_error(response) == (403, "forbidden_origin"), origin
    own = cookie(site) | {"Origin": site.base}
    async with site.http.post(site.api + "/links", json=LINK, headers=own) as response:
        assert response.status == 201
    # reading with the cookie needs no Origin; a bearer token needs none at all
    async with site.http.get(site.api + "/links", headers=cookie(site)) as response:
        assert response.status == 200
    bearer = {"Authorization": f"Bearer {site.world.token(site.world.relative)}"}
    async with site.http.post(
        site.api + "/links", json={**LINK, "inmate_number": "GM-002"}, headers=bearer
    ) as response:
        assert response.status == 201


async def test_every_response_carries_the_security_headers(site: Site) -> None:
    for method, path in (
        ("GET", "/openapi.json"),
        ("GET", "/me"),
        ("GET", "/links/1"),
        ("GET", "/nothing-here"),
        ("POST", "/auth/login"),
    ):
        async with site.http.request(method, site.api + path, json={}) as response:
            for header, value in SECURITY_HEADERS.items():
                assert response.headers[header] == value, (path, header)


async def test_a_body_over_the_limit_is_413_as_json(site: Site) -> None:
    big = {"login": "x" * 4000, "password": "y"}
    async with site.http.post(site.api + "/auth/login", json=big) as response:
        assert await status_and_error(response) == (413, "too_large")


@pytest.mark.parametrize(
    ("data", "headers", "field"),
    [
        (b"{not json", {"Content-Type": "application/json"}, None),
        (b"login=a&password=b", {"Content-Type": "application/x-www-form-urlencoded"}, None),
        (b'{"login": 5, "password": "x"}', {"Content-Type": "application/json"}, "login"),
        (b'{"password": "x"}', {"Content-Type": "application/json"}, "login"),
        (
            b'{"login": "a", "password": "x", "extra": 1}',
            {"Content-Type": "application/json"},
            "extra",
        ),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(
    site: Site, data: bytes, headers: dict[str, str], field: str | None
) -> None:
    async with site.http.post(site.api + "/auth/login", data=data, headers=headers) as response:
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["code"] == "invalid_request" and error.get("field") == field
        assert error["message"]


async def test_a_bad_query_is_400_and_an_unknown_method_is_405(site: Site) -> None:
    bearer = {"Authorization": f"Bearer {site.world.token(site.world.officer)}"}
    async with site.http.get(site.api + "/links?state=maybe", headers=bearer) as response:
        assert await status_and_error(response) == (400, "invalid_request")
    async with site.http.delete(site.api + "/me", headers=bearer) as response:
        assert await status_and_error(response) == (405, "method_not_allowed")


async def test_the_cookie_is_secure_when_served_over_tls(
    pg_store: PostgresDatabase, pg_url: str
) -> None:
    hashed = passwords.hash_password("a long passphrase here")
    await accounts.add_user(pg_store, "admin", "admin.tls", "Admin", hashed)
    settings = Settings(
        database_url=pg_url, port=free_port(), allowed_origins=("https://kinline.example",)
    )
    login = {"login": "admin.tls", "password": "a long passphrase here"}
    async with (
        inprocess(settings, pg_store) as served,
        aiohttp.ClientSession() as http,
        http.post(served.http_url + "/api/v1/auth/login", json=login) as response,
    ):
        assert response.status == 200
        assert response.cookies[sessions.COOKIE]["secure"]


async def test_storage_down_is_503(tmp_path: Path) -> None:
    store = await SqliteDatabase.open(str(tmp_path / "k.db"))
    await store.migrate()
    world = await seed(store)
    settings = Settings(database_url=f"sqlite:///{tmp_path}/k.db", port=free_port(), secret="s")
    async with inprocess(settings, store) as served, aiohttp.ClientSession() as http:
        await store.close()
        async with http.get(
            served.http_url + "/api/v1/me",
            headers={"Authorization": f"Bearer {world.token(world.relative)}"},
        ) as response:
            assert await status_and_error(response) == (503, "unavailable")
