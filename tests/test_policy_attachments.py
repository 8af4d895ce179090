"""Who may upload and read attachments: every actor against every route of the area, over
real HTTP to an in-process server on PostgreSQL. A file is read as what it belongs to: a
message's file as its conversation (a note's by staff only), link evidence by the relative
who asked and the officers deciding it, an upload not sent by its uploader alone; anyone
else gets 404. ``ROUTES`` lists each row's ``(method, path)`` for ``test_policy_matrix``."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from domain.records import User
from server.api import attachments as attachments_api
from server.config import Settings
from storage import links, prisons
from storage.postgres import PostgresDatabase
from tests.servers import free_port, inprocess
from tests.world import World, seed, seed_staff

ACTORS = (
    "anonymous",
    "relative_none",
    "relative_a",
    "relative_b",
    "officer",
    "officer_other",
    "supervisor",
    "supervisor_other",
    "admin",
)
Outcome = int
U, F, N = 401, 403, 404


def row(*cells: Outcome) -> dict[str, Outcome]:
    return dict(zip(ACTORS, cells, strict=True))


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # as described in openapi.json, under /api/v1
    file: str  # which of the seeded files the {id} is ("" for the upload)
    expect: dict[str, Outcome]


ROWS: dict[str, Row] = {
    # actors: anon rel_n rel_a rel_b off off_o sup sup_o admin
    "upload": Row("POST", "/attachments", "", row(U, 201, 201, 201, 201, 201, F, F, F)),
    "read a sent file": Row(
        "GET", "/attachments/{id}", "sent", row(U, N, 200, N, 200, N, 200, N, N)
    ),
    "its thumbnail": Row(
        "GET", "/attachments/{id}/thumbnail", "sent", row(U, N, 200, N, 200, N, 200, N, N)
    ),
    "read a note's file": Row(
        "GET", "/attachments/{id}", "note", row(U, N, N, N, 200, N, 200, N, N)
    ),
    "read an upload not sent": Row(
        "GET", "/attachments/{id}", "unsent", row(U, N, 200, N, N, N, N, N, N)
    ),
    "read link evidence": Row(
        "GET", "/attachments/{id}", "evidence", row(U, 200, N, N, 200, N, N, N, N)
    ),
}
ROUTES = {(r.method, r.route) for r in ROWS.values()}


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 10)).save(out, "JPEG")
    return out.getvalue()


@dataclass
class Ctx:
    api: str
    http: aiohttp.ClientSession
    world: World
    users: dict[str, User]
    files: dict[str, int]

    def headers(self, actor: str) -> dict[str, str]:
        if actor == "anonymous":
            return {}
        return {"Authorization": f"Bearer {self.world.token(self.users[actor])}"}

    async def upload(self, actor: str) -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field("file", jpeg(), filename="p.jpg", content_type="image/jpeg")
        async with self.http.post(
            f"{self.api}/attachments", data=form, headers=self.headers(actor)
        ) as response:
            return response.status, await response.json()

    async def outcome(self, row: Row, actor: str) -> Outcome:
        if row.method == "POST":
            return (await self.upload(actor))[0]
        url = self.api + row.route.format(id=self.files[row.file])
        async with self.http.get(url, headers=self.headers(actor)) as response:
            return response.status


@pytest.fixture
async def ctx(pg_store: PostgresDatabase, tmp_path: Path) -> AsyncIterator[Ctx]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    users = {
        "relative_none": world.stranger,
        "relative_a": world.relative,
        "relative_b": world.relative_b,
        "officer": world.officer,
        "officer_other": world.other_officer,
        "supervisor": world.supervisor,
        "supervisor_other": staff.other_supervisor,
        "admin": staff.admin,
    }
    settings = Settings(port=free_port(), secret="attachments-policy", files=str(tmp_path))
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        ctx = Ctx(served.http_url + "/api/v1", http, world, users, {})

        async def send(actor: str, kind: str) -> int:
            _, file = await ctx.upload(actor)
            async with http.post(
                f"{ctx.api}/conversations/{world.conv.id}/messages",
                json={"body": "with a file", "kind": kind, "attachments": [file["id"]]},
                headers=ctx.headers(actor),
            ) as response:
                assert response.status == 201, await response.text()
            return int(file["id"])

        ctx.files["sent"] = await send("relative_a", "text")
        ctx.files["note"] = await send("officer", "note")
        ctx.files["unsent"] = (await ctx.upload("relative_a"))[1]["id"]
        inmate = await prisons.add_inmate(pg_store, world.gaoming.id, "GM-300", "Zhou Ming")
        _, evidence = await ctx.upload("relative_none")
        async with http.post(
            f"{ctx.api}/links",
            json={
                "prison": "GM",
                "inmate_number": inmate.number,
                "relationship": "wife",
                "attachments": [evidence["id"]],
            },
            headers=ctx.headers("relative_none"),
        ) as response:
            assert response.status == 201, await response.text()
        assert await links.links(pg_store, relative_id=world.stranger.id)
        ctx.files["evidence"] = evidence["id"]
        yield ctx


@pytest.mark.parametrize("name", list(ROWS))
async def test_attachments_matrix_over_http(ctx: Ctx, name: str) -> None:
    row = ROWS[name]
    got = {actor: await ctx.outcome(row, actor) for actor in ACTORS}
    assert got == row.expect


def test_every_attachment_route_has_a_row() -> None:
    assert {(r.method, r.path) for r in attachments_api.ROUTES} == ROUTES
