"""The web files as a browser gets them (server/assets.py): pages that name one fingerprinted
version of every asset, modules whose imports point at the same version, cached for good
there and revalidated elsewhere, gzipped for clients that accept it, nothing outside web/."""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server import assets
from tests.servers import ROOT

WEB = ROOT / "web"


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    files = assets.Assets(WEB)
    app.router.add_get("/app", assets.file_handler(files, "app.html"))
    assets.add_routes(app, files)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as opened:
        yield opened


async def test_a_page_names_one_version_and_that_version_is_cached_for_good(
    client: TestClient[Any, Any],
) -> None:
    page = await client.get("/app")
    assert page.status == 200 and page.headers["Cache-Control"] == "no-cache"
    html = await page.text()
    (main,) = re.findall(r'src="(/static/v/[0-9a-f]{12}/app/main\.js)"', html)
    assert '"/static/app' not in html and '"/static/kinline.css' not in html

    js = await client.get(main, headers={"Accept-Encoding": "gzip, br"})
    assert js.status == 200
    assert js.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert js.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert js.headers["Vary"] == "Accept-Encoding"
    assert js.headers["Content-Encoding"] == "gzip"
    source = await js.text()  # (aiohttp's client decompresses)
    version = main.removesuffix("app/main.js")
    imports = re.findall(r'from "(/static/[^"]+)"', source)
    assert imports and all(path.startswith(version) for path in imports), imports

    # smaller on the wire than the file itself
    raw = await client.get(main, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    wire = await raw.read()
    assert len(wire) < len(source.encode()) and gzip.decompress(wire).decode() == source

    # a client that takes no gzip gets the plain file; a known ETag gets 304 and no body
    plain = await client.get(main, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and await plain.text() == source
    again = await client.get(main, headers={"If-None-Match": js.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""


async def test_unversioned_addresses_are_revalidated_and_nothing_outside_is_served(
    client: TestClient[Any, Any],
) -> None:
    css = await client.get("/static/kinline.css")
    assert css.status == 200 and css.headers["Cache-Control"] == "no-cache"
    png = await client.get("/static/icons/icon-192.png", headers={"Accept-Encoding": "gzip"})
    assert png.headers["Content-Type"] == "image/png" and "Content-Encoding" not in png.headers
    for path in (
        "/static/../setup.cfg",
        "/static/%2e%2e/setup.cfg",
        "/static/lib/../../setup.cfg",
        "/static/v/000000000000/../setup.cfg",
        "/static/no-such-file.js",
    ):
        response = await client.get(path)
        assert response.status == 404, path


def test_the_fingerprint_follows_the_content(tmp_path: Path) -> None:
    copy = tmp_path / "web"
    shutil.copytree(WEB, copy)
    before = assets.Assets(copy).fingerprint
    assert assets.Assets(copy).fingerprint == before  # the same files, the same version
    (copy / "lib" / "dom.js").write_text((WEB / "lib" / "dom.js").read_text() + "\n// changed\n")
    assert assets.Assets(copy).fingerprint != before
    (copy / "outside.js").write_text("secret")
    (copy / "lib" / "link.js").symlink_to(copy / "outside.js")
    assert assets.Assets(copy).get("lib/link.js") is None  # a symlink is never followed
