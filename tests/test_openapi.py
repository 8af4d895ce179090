"""``/api/v1/openapi.json`` describes every endpoint the app serves, from the same table."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from server.api import routes
from server.app import build_app
from server.config import Settings
from storage.sqlite import SqliteDatabase
from tests.servers import free_port, inprocess


@pytest.fixture
async def spec(tmp_path: Any) -> dict[str, Any]:
    store = await SqliteDatabase.open(str(tmp_path / "k.db"))
    await store.migrate()
    try:
        async with (
            inprocess(Settings(port=free_port(), secret="s"), store) as served,
            aiohttp.ClientSession() as http,
            http.get(served.http_url + "/api/v1/openapi.json") as response,
        ):
            assert response.status == 200
            document: dict[str, Any] = await response.json()
            return document
    finally:
        await store.close()


def registered(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/v1") and route.method != "HEAD":
            found.add((route.method.lower(), path))
    return found


def test_every_api_route_registered_in_the_app_is_described(spec: dict[str, Any]) -> None:
    app = build_app(Settings(secret="s"))
    served = registered(app)
    described = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert served, "no /api/v1 routes registered"
    assert served == described
    assert len(served) == len(routes())


def test_bodies_replies_and_errors_are_schemas_that_resolve(spec: dict[str, Any]) -> None:
    components = spec["components"]["schemas"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', str(spec).replace("'", '"')))
    assert refs and refs <= set(components)
    register = spec["paths"]["/api/v1/auth/register"]["post"]
    schema = components["Register"]
    assert register["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Register"
    }
    assert set(schema["required"]) == {"phone", "name", "password", "id_number"}
    assert "pattern" in schema["properties"]["phone"]
    verify = spec["paths"]["/api/v1/links/{id}/verify"]["post"]
    assert verify["x-kinline-policy"] == "officer of the link's prison"
    assert {"404", "409", "503"} <= set(verify["responses"])
    assert verify["parameters"][0] == {
        "name": "id", "in": "path", "required": True, "schema": {"type": "integer"}
    }  # fmt: skip
    listing = spec["paths"]["/api/v1/links"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"state", "limit"}
    assert "ErrorReply" in components
