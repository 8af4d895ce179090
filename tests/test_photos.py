"""Supervisors' photos over real HTTP on PostgreSQL: an uploaded image is resized, stripped of
its metadata (EXIF with a GPS position, a comment) and re-encoded as a JPEG, served as an image
only; a file that is not an image is refused with a code; a profile photo URL is only an
uploaded photo of that supervisor (or a bundled /static/photos/ picture), never a path that
merely starts like one (``/static/../api/v1/me``, issue 14)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from PIL import Image

from domain.records import User
from server.config import Settings
from storage import accounts, audit_trail
from storage.postgres import PostgresDatabase
from tests.servers import free_port, inprocess
from tests.world import World, seed, seed_staff


@dataclass
class Ctx:
    api: str
    http: aiohttp.ClientSession
    world: World
    admin: User
    store: PostgresDatabase

    def auth(self, who: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.world.token(who)}"}

    async def upload(
        self, supervisor: int, data: bytes, who: User | None = None
    ) -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field("file", data, filename="me.jpg", content_type="image/jpeg")
        async with self.http.post(
            f"{self.api}/admin/supervisors/{supervisor}/photo",
            data=form,
            headers=self.auth(who or self.admin),
        ) as response:
            return response.status, await response.json()

    async def set_profile(self, supervisor: int, photo: str) -> tuple[int, Any]:
        async with self.http.put(
            f"{self.api}/supervisors/{supervisor}/profile",
            json={"title": "CPPCC member", "photo": photo},
            headers=self.auth(self.admin),
        ) as response:
            return response.status, await response.json()


@pytest.fixture
async def ctx(pg_store: PostgresDatabase, pg_url: str) -> AsyncIterator[Ctx]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    settings = Settings(database_url=pg_url, port=free_port(), secret="photos")
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Ctx(served.http_url + "/api/v1", http, world, staff.admin, pg_store)


def camera_jpeg() -> bytes:
    """A 1600x1200 photo as a phone writes it: EXIF with a GPS position, a camera serial,
    an orientation (rotated 90 degrees), and a comment."""
    image = Image.new("RGB", (1600, 1200), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    exif[0xA431] = "SERIAL-123456"  # body serial number
    gps = {1: "N", 2: (22.0, 59.0, 30.0), 3: "E", 4: (113.0, 6.0, 0.0)}
    exif[0x8825] = gps
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"taken at home")
    return out.getvalue()


async def test_an_uploaded_photo_is_resized_stripped_and_served_as_an_image(ctx: Ctx) -> None:
    sup = ctx.world.supervisor
    original = camera_jpeg()
    assert b"SERIAL-123456" in original and b"taken at home" in original
    status, answer = await ctx.upload(sup.id, original)
    assert status == 201, answer
    url = answer["photo"]
    assert url.startswith("/api/v1/photos/")
    base = ctx.api.removesuffix("/api/v1")
    async with ctx.http.get(base + url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        served = await response.read()
    assert b"SERIAL-123456" not in served and b"taken at home" not in served
    with Image.open(io.BytesIO(served)) as shown:
        assert shown.format == "JPEG"
        assert shown.size == (384, 512)  # turned upright, then fitted into 512 x 512
        assert len(shown.getexif()) == 0
        assert "comment" not in shown.info and "icc_profile" not in shown.info
    # the public prison page now shows it, and the change is audited
    async with ctx.http.get(f"{ctx.api}/prisons/{ctx.world.gaoming.id}") as response:
        page = await response.json()
    assert [s["photo"] for s in page["supervisors"] if s["id"] == sup.id] == [url]
    entries = await audit_trail.audit_entries(ctx.store, action="supervisor.photo")
    assert [(e.actor_id, e.object_id, e.after and e.after["photo"]) for e in entries] == [
        (ctx.admin.id, sup.id, url)
    ]


async def test_png_and_webp_are_accepted_and_other_files_refused(ctx: Ctx) -> None:
    sup = ctx.world.supervisor.id
    for kind in ("PNG", "WEBP"):
        out = io.BytesIO()
        Image.new("RGBA", (64, 48), (0, 0, 255, 128)).save(out, kind)
        status, answer = await ctx.upload(sup, out.getvalue())
        assert status == 201, (kind, answer)
    html = b"<html><script>alert(1)</script></html>"
    status, answer = await ctx.upload(sup, html)
    assert (status, answer["error"]["code"]) == (415, "photo_unreadable")
    gif = io.BytesIO()
    Image.new("P", (10, 10)).save(gif, "GIF")
    status, answer = await ctx.upload(sup, gif.getvalue())
    assert (status, answer["error"]["code"]) == (415, "photo_unreadable")
    truncated = camera_jpeg()[:2000]
    status, answer = await ctx.upload(sup, truncated)
    assert (status, answer["error"]["code"]) == (415, "photo_unreadable")
    # not a supervisor: 404; not the admin: 403
    status, answer = await ctx.upload(ctx.world.officer.id, html)
    assert (status, answer["error"]["code"]) == (404, "not_found")
    status, answer = await ctx.upload(sup, html, ctx.world.supervisor)
    assert (status, answer["error"]["code"]) == (403, "forbidden")


async def test_a_photo_url_is_only_an_uploaded_photo_of_that_supervisor(ctx: Ctx) -> None:
    sup = ctx.world.supervisor.id
    other = await accounts.add_user(
        ctx.store, "supervisor", "sup.lin", "Lin", "x", [ctx.world.sanshui.id]
    )
    _, mine = await ctx.upload(sup, camera_jpeg())
    _, theirs = await ctx.upload(other.id, camera_jpeg())
    for refused in (
        "/static/../api/v1/me",
        "/static/%2e%2e/api/v1/me",
        "/static/photos/../../api/v1/me",
        "/static/kinline.css",
        "/api/v1/photos/1/../../me",
        "data:image/png;base64,iVBORw0KGgo=",
        "https://tracker.example/p.png",
        theirs["photo"],  # another supervisor's upload
        "/api/v1/photos/999999",  # no such upload
    ):
        status, answer = await ctx.set_profile(sup, refused)
        assert (status, answer["error"]["field"]) == (400, "photo"), refused
    for accepted in (mine["photo"], "/static/photos/supervisor-1.svg", ""):
        status, answer = await ctx.set_profile(sup, accepted)
        assert status == 200, (accepted, answer)
        assert answer["photo"] == accepted


async def test_an_upload_larger_than_the_bound_is_413(ctx: Ctx) -> None:
    status, answer = await ctx.upload(ctx.world.supervisor.id, b"\xff" * (5 * 1024 * 1024))
    assert (status, answer["error"]["code"]) == (413, "too_large")
