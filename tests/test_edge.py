"""The edge of the service behind a proxy: which client a request is from, whether it came
over TLS, and who may read ``/metrics``. A real server on SQLite, real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server import passwords
from server.config import ConfigError, Settings, load
from storage import accounts, prisons
from storage.sqlite import SqliteDatabase
from tests.servers import free_port, inprocess

PASSWORD = "a long passphrase here"


async def _serve(where: Path, **settings: Any) -> AsyncIterator[str]:
    db = await SqliteDatabase.open(str(where / "kinline.db"))
    await db.migrate()
    gm = await prisons.add_prison(db, "GM", "Gaoming Prison")
    hashed = await asyncio.to_thread(passwords.hash_password, PASSWORD)
    await accounts.add_user(db, "officer", "officer.chen", "Chen", hashed, [gm.id])
    try:
        async with inprocess(Settings(port=free_port(), secret="t", **settings), db) as served:
            yield served.http_url
    finally:
        await db.close()


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[str]:
    """Behind a proxy on this machine, which is trusted."""
    where = tmp_path / "proxied"
    where.mkdir()
    async for url in _serve(where, trusted_proxies=("127.0.0.1/32",), metrics_token="s3"):
        yield url


@pytest.fixture
async def direct(tmp_path: Path) -> AsyncIterator[str]:
    async for url in _serve(tmp_path / "direct"):
        yield url


async def _login(url: str, password: str, **headers: str) -> aiohttp.ClientResponse:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{url}/api/v1/auth/login",
            json={"login": "officer.chen", "password": password},
            headers=headers,
        ) as response,
    ):
        await response.read()
        return response


async def test_behind_a_trusted_proxy_a_guesser_locks_out_only_itself(proxied: str) -> None:
    guesser = {"X-Forwarded-For": "203.0.113.5"}
    for _ in range(10):
        assert (await _login(proxied, "a wrong guess", **guesser)).status in (401, 429)
    assert (await _login(proxied, PASSWORD, **guesser)).status == 429  # that client waits
    desk = await _login(proxied, PASSWORD, **{"X-Forwarded-For": "10.1.2.3"})
    assert desk.status == 200  # another client behind the same proxy signs in


async def test_a_forwarded_for_header_from_an_untrusted_peer_is_ignored(direct: str) -> None:
    for n in range(5):  # a guesser writing a new address in each request
        response = await _login(direct, "a wrong guess", **{"X-Forwarded-For": f"198.51.100.{n}"})
        assert response.status == 401
    assert (await _login(direct, PASSWORD, **{"X-Forwarded-For": "10.9.9.9"})).status == 429


async def test_the_session_cookie_is_secure_when_a_trusted_proxy_says_https(proxied: str) -> None:
    plain = await _login(proxied, PASSWORD)
    assert not plain.cookies["kinline_session"]["secure"]
    tls = await _login(proxied, PASSWORD, **{"X-Forwarded-Proto": "https"})
    assert tls.cookies["kinline_session"]["secure"]


async def test_metrics_need_the_token_or_a_local_client(proxied: str, direct: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{direct}/metrics") as response:
            assert response.status == 200  # no token set: this machine may read them
        async with http.get(f"{proxied}/metrics", headers={"X-Forwarded-For": "10.1.2.3"}) as r:
            assert r.status == 404
        bearer = {"Authorization": "Bearer s3", "X-Forwarded-For": "10.1.2.3"}
        async with http.get(f"{proxied}/metrics", headers=bearer) as response:
            assert response.status == 200 and b"kinline_" in await response.read()
        async with http.get(f"{proxied}/metrics", headers={"Authorization": "Bearer no"}) as r:
            assert r.status == 404


async def test_a_local_proxy_that_is_not_trusted_does_not_pass_the_public_for_local(
    direct: str,
) -> None:
    """Regression: with no token, /metrics answered anyone "on this machine", and a reverse
    proxy on this machine (not listed in KINLINE_TRUSTED_PROXIES) forwards the whole public
    from 127.0.0.1. A request it forwarded says so; it is not taken for a local one."""
    async with aiohttp.ClientSession() as http:
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            async with http.get(f"{direct}/metrics", headers={header: "198.51.100.7"}) as r:
                assert r.status == 404, header


async def test_metrics_on_a_listener_of_their_own(tmp_path: Path) -> None:
    """KINLINE_METRICS_LISTEN: /metrics alone on its own address; the public port then
    answers 404 even to a client on this machine."""
    listen = f"127.0.0.1:{free_port()}"
    async for url in _serve(tmp_path, metrics_listen=listen):
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{listen}/metrics") as response:
                assert response.status == 200 and b"kinline_" in await response.read()
            async with http.get(f"http://{listen}/api/v1/me") as response:
                assert response.status == 404  # nothing else there
            async with http.get(f"{url}/metrics") as response:
                assert response.status == 404


def test_a_metrics_listen_address_is_checked() -> None:
    assert load({"KINLINE_METRICS_LISTEN": "10.0.0.5:9100"}).metrics_listen == "10.0.0.5:9100"
    for wrong in ("9100", "host:", "host:99999", ":9100"):
        with pytest.raises(ConfigError, match="KINLINE_METRICS_LISTEN"):
            load({"KINLINE_METRICS_LISTEN": wrong})
