"""Attachments end to end over real HTTP and a real socket on PostgreSQL, with real files:
a phone's JPEG (EXIF with a GPS position) comes back without it, with a thumbnail; an HTML
file named ``x.jpg`` is 415; an oversized file 413 (announced or not), a full quota 413
``quota_exceeded``; a file is read exactly as its conversation (another family, another
prison, anyone before it is sent: 404), a note's file by staff only; PDFs only as downloads;
the socket's ``send`` and REST carry files into frames and history; an upload never sent is
swept with its objects, and retention removes a purged message's files."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from channels.client import SendError
from domain.records import User
from server.attachment_sweep import sweep
from server.config import Settings
from server.keys import OBJECTS
from storage import attachments, audit_trail, prisons, retention
from storage.errors import NotFound
from storage.postgres import PostgresDatabase
from storage.sql import utcnow
from tests.realtime import Reader, client
from tests.servers import Served, free_port, inprocess
from tests.world import World, seed, seed_staff


@dataclass
class Ctx:
    api: str
    base: str
    ws: str
    http: aiohttp.ClientSession
    world: World
    admin: User
    store: PostgresDatabase
    served: Served

    def auth(self, who: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.world.token(who)}"}

    async def upload(
        self, who: User, data: bytes, name: str = "photo.jpg", announced: str = "image/jpeg"
    ) -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type=announced)
        async with self.http.post(
            f"{self.api}/attachments", data=form, headers=self.auth(who)
        ) as response:
            return response.status, await response.json()

    async def fetch(self, who: User | None, url: str) -> tuple[int, bytes, Any]:
        headers = self.auth(who) if who is not None else {}
        async with self.http.get(self.base + url, headers=headers) as response:
            return response.status, await response.read(), response.headers

    async def send_rest(self, who: User, conv: int, **body: Any) -> tuple[int, Any]:
        async with self.http.post(
            f"{self.api}/conversations/{conv}/messages", json=body, headers=self.auth(who)
        ) as response:
            return response.status, await response.json()

    async def history(self, who: User, conv: int) -> tuple[int, Any]:
        async with self.http.get(
            f"{self.api}/conversations/{conv}/messages", headers=self.auth(who)
        ) as response:
            return response.status, await response.json()


SMALL_LIMIT = 600 * 1024


@pytest.fixture
async def ctx(pg_store: PostgresDatabase, pg_url: str, tmp_path: Path) -> AsyncIterator[Ctx]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    settings = Settings(
        database_url=pg_url,
        port=free_port(),
        secret="attachments",
        files=str(tmp_path / "files"),
        max_attachment_bytes=SMALL_LIMIT,
        max_attachments=2,
    )
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Ctx(
            served.http_url + "/api/v1",
            served.http_url,
            served.ws_url,
            http,
            world,
            staff.admin,
            pg_store,
            served,
        )


def phone_jpeg(size: tuple[int, int] = (1600, 1200)) -> bytes:
    """A photo as a phone writes it: EXIF with a GPS position, a camera serial, an
    orientation (rotated 90 degrees), and a comment."""
    image = Image.new("RGB", size, (30, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0xA431] = "SERIAL-998877"
    exif[0x8825] = {1: "N", 2: (22.0, 59.0, 30.0), 3: "E", 4: (113.0, 6.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"at home in Foshan")
    return out.getvalue()


def pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


async def test_a_phone_photo_comes_back_without_exif_or_gps_with_a_thumbnail(ctx: Ctx) -> None:
    original = phone_jpeg()
    assert b"SERIAL-998877" in original and b"at home in Foshan" in original
    with Image.open(io.BytesIO(original)) as opened:
        assert opened.getexif().get_ifd(0x8825)  # the GPS position is there to begin with
    status, file = await ctx.upload(ctx.world.relative, original, name="../../IMG_0001.JPG")
    assert status == 201, file
    assert file["type"] == "image/jpeg" and file["name"] == "IMG_0001.jpg"
    assert (file["width"], file["height"]) == (1200, 1600)  # turned upright
    status, served, headers = await ctx.fetch(ctx.world.relative, file["url"])
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["Content-Disposition"].startswith("inline;")
    assert len(served) == file["size"]
    assert b"SERIAL-998877" not in served and b"at home in Foshan" not in served
    with Image.open(io.BytesIO(served)) as shown:
        assert len(shown.getexif()) == 0 and not shown.getexif().get_ifd(0x8825)
        assert "comment" not in shown.info and "exif" not in shown.info
    assert hashlib.sha256(served).hexdigest() == file["sha256"]
    status, thumb, headers = await ctx.fetch(ctx.world.relative, file["thumbnail"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb)) as small:
        assert max(small.size) == 320 and len(small.getexif()) == 0


async def test_html_named_jpg_is_refused_415_and_nothing_is_stored(
    ctx: Ctx, tmp_path: Path
) -> None:
    html = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
    status, answer = await ctx.upload(ctx.world.relative, html, name="x.jpg")
    assert (status, answer["error"]["code"]) == (415, "unsupported_type")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    status, answer = await ctx.upload(ctx.world.relative, svg, name="x.png", announced="image/png")
    assert (status, answer["error"]["code"]) == (415, "unsupported_type")
    # a JPEG's magic number in front of a script is not a readable image either
    status, answer = await ctx.upload(ctx.world.relative, b"\xff\xd8\xff\xe0" + html)
    assert (status, answer["error"]["code"]) == (415, "unsupported_type")
    assert await attachments.usage(ctx.store, ctx.world.relative.id) == 0
    assert not list((tmp_path / "files").rglob("*")) or all(
        p.is_dir() for p in (tmp_path / "files").rglob("*")
    )


async def test_oversized_files_are_413(ctx: Ctx) -> None:
    big = b"%PDF-1.4\n" + b"0" * (SMALL_LIMIT + 1)
    status, answer = await ctx.upload(ctx.world.relative, big, name="ruling.pdf")
    assert (status, answer["error"]["code"]) == (413, "too_large")
    # announced by Content-Length beyond the limit: refused before the body is read
    async with ctx.http.post(
        f"{ctx.api}/attachments",
        data=b"x" * (SMALL_LIMIT + 64 * 1024),
        headers={**ctx.auth(ctx.world.relative), "Content-Type": "multipart/form-data; boundary=b"},
    ) as response:
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "too_large"


async def test_the_quota_counts_every_stored_file(
    pg_store: PostgresDatabase, pg_url: str, tmp_path: Path
) -> None:
    world = await seed(pg_store)
    settings = Settings(
        database_url=pg_url,
        port=free_port(),
        secret="quota",
        files=str(tmp_path / "files"),
        attachment_quota_bytes=len(pdf()) * 2,
    )
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        api, base = served.http_url + "/api/v1", served.http_url
        ctx = Ctx(api, base, "", http, world, world.officer, pg_store, served)
        for _ in range(2):
            status, _answer = await ctx.upload(world.relative, pdf(), name="a.pdf")
            assert status == 201
        status, answer = await ctx.upload(world.relative, pdf(), name="a.pdf")
        assert (status, answer["error"]["code"]) == (413, "quota_exceeded")
        status, _answer = await ctx.upload(world.relative_b, pdf(), name="a.pdf")
        assert status == 201  # another user's quota is its own


async def test_who_may_upload(ctx: Ctx) -> None:
    for who, expected in (
        (ctx.world.relative, 201),
        (ctx.world.stranger, 201),  # a relative not verified yet: link evidence
        (ctx.world.officer, 201),
        (ctx.world.supervisor, 403),
        (ctx.admin, 403),
    ):
        status, answer = await ctx.upload(who, pdf(), name="doc.pdf")
        assert status == expected, (who.login, answer)
    form = aiohttp.FormData()
    form.add_field("file", pdf(), filename="doc.pdf")
    async with ctx.http.post(f"{ctx.api}/attachments", data=form) as response:
        assert response.status == 401


async def test_a_file_is_read_exactly_as_its_conversation(ctx: Ctx) -> None:
    w = ctx.world
    status, file = await ctx.upload(w.relative, phone_jpeg((400, 300)))
    assert status == 201
    url = file["url"]
    # not sent yet: its uploader alone
    readers = {
        w.relative: 200,
        w.relative_b: 404,
        w.stranger: 404,
        w.officer: 404,
        w.other_officer: 404,
        w.supervisor: 404,
        ctx.admin: 404,
    }
    for who, expected in readers.items():
        assert (await ctx.fetch(who, url))[0] == expected, ("unsent", who.login)
    status, sent = await ctx.send_rest(w.relative, w.conv.id, body="", attachments=[file["id"]])
    assert status == 201, sent
    assert [a["id"] for a in sent["attachments"]] == [file["id"]]
    # sent: whoever may read the conversation; another family, another prison, the admin: 404
    readers.update({w.officer: 200, w.supervisor: 200})
    for who, expected in readers.items():
        assert (await ctx.fetch(who, url))[0] == expected, ("sent", who.login)
        assert (await ctx.fetch(who, file["thumbnail"]))[0] == expected
    assert (await ctx.fetch(None, url))[0] == 401
    # the supervisor's reads were looks at the conversation, audited (one per file read)
    looks = await audit_trail.audit_entries(ctx.store, action="conversation.opened")
    assert [(e.actor_id, e.object_id, (e.after or {}).get("via")) for e in looks] == [
        (w.supervisor.id, w.conv.id, "attachment")
    ] * 2
    assert (await ctx.fetch(w.relative_b, "/api/v1/attachments/999999"))[0] == 404


async def test_a_notes_file_is_for_staff_only(ctx: Ctx) -> None:
    w = ctx.world
    status, file = await ctx.upload(w.officer, pdf(), name="ruling.pdf")
    assert status == 201 and "thumbnail" not in file
    status, sent = await ctx.send_rest(
        w.officer, w.conv.id, body="for colleagues", kind="note", attachments=[file["id"]]
    )
    assert status == 201, sent
    assert (await ctx.fetch(w.relative, file["url"]))[0] == 404
    status, data, headers = await ctx.fetch(w.supervisor, file["url"])
    assert status == 200 and data == pdf()
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"].startswith("attachment;")  # a download, never inline
    assert 'filename="ruling.pdf"' in headers["Content-Disposition"]


async def test_files_ride_the_socket_into_frames_and_history(ctx: Ctx) -> None:
    w = ctx.world
    status, photo = await ctx.upload(w.relative, phone_jpeg((800, 600)), name="家.jpg")
    assert status == 201
    status, doc = await ctx.upload(w.relative, pdf(), name="判决书.pdf")
    assert status == 201
    async with (
        Reader(client(ctx.ws, w.token(w.officer))) as officer,
        Reader(client(ctx.ws, w.token(w.relative))) as relative,
    ):
        await officer.watch(w.conv.id)
        ack = await relative.client.send(
            w.conv.id, "his papers", attachments=[photo["id"], doc["id"]]
        )
        await officer.until(lambda: any(m.seq == ack.seq for m in officer.messages))
        frame = next(m for m in officer.messages if m.seq == ack.seq)
        assert [(a.id, a.type, a.size, a.name, a.sha256) for a in frame.attachments] == [
            (photo["id"], "image/jpeg", photo["size"], "家.jpg", photo["sha256"]),
            (doc["id"], "application/pdf", doc["size"], "判决书.pdf", doc["sha256"]),
        ]
        assert frame.attachments[0].thumbnail and not frame.attachments[1].thumbnail
        # the same cid again is acked again and binds nothing new
        again = await relative.client.send(
            w.conv.id, "his papers", cid=frame.cid, attachments=[photo["id"], doc["id"]]
        )
        assert again.seq == ack.seq
        # refused: too many files, a file already sent with another message, someone else's
        status, third = await ctx.upload(w.relative, pdf(), name="c.pdf")
        with pytest.raises(SendError) as refused:
            await relative.client.send(
                w.conv.id, "x", attachments=[photo["id"], doc["id"], third["id"]]
            )
        assert refused.value.code == "too_many_attachments"
        with pytest.raises(SendError) as refused:
            await relative.client.send(w.conv.id, "again", attachments=[photo["id"]])
        assert refused.value.code == "attachment_not_found"
        status, theirs = await ctx.upload(w.relative_b, pdf(), name="b.pdf")
        with pytest.raises(SendError) as refused:
            await relative.client.send(w.conv.id, "theirs", attachments=[theirs["id"]])
        assert refused.value.code == "attachment_not_found"
        # a file alone, no text
        alone = await relative.client.send(w.conv.id, "", attachments=[third["id"]])
        assert alone.seq == ack.seq + 1
    status, page = await ctx.history(w.officer, w.conv.id)
    assert status == 200
    by_seq = {m["seq"]: m for m in page["messages"]}
    assert [a["id"] for a in by_seq[ack.seq]["attachments"]] == [photo["id"], doc["id"]]
    assert by_seq[ack.seq]["attachments"][0]["sha256"] == photo["sha256"]
    assert [a["id"] for a in by_seq[alone.seq]["attachments"]] == [third["id"]]
    status, answer = await ctx.send_rest(w.relative, w.conv.id, attachments=[theirs["id"]])
    assert (status, answer["error"]["code"]) == (400, "attachment_not_found")
    # the relative's own data archive names the files it sent
    async with ctx.http.get(f"{ctx.api}/me/export", headers=ctx.auth(w.relative)) as response:
        archive = await response.json()
    [thread] = [c for c in archive["conversations"] if c["id"] == w.conv.id]
    sent = {m["seq"]: m for m in thread["messages"]}
    assert [a["sha256"] for a in sent[ack.seq]["attachments"]] == [photo["sha256"], doc["sha256"]]


async def test_unsent_uploads_are_swept_with_their_objects(ctx: Ctx) -> None:
    w = ctx.world
    _, kept = await ctx.upload(w.relative, pdf(), name="kept.pdf")
    _, dropped = await ctx.upload(w.relative, pdf(), name="dropped.pdf")
    _, bound = await ctx.upload(w.relative, phone_jpeg((64, 48)))
    assert (await ctx.send_rest(w.relative, w.conv.id, body="kept", attachments=[kept["id"]]))[
        0
    ] == 201
    # bound to a message key whose message never came: still unsent
    await attachments.bind_to_message(
        ctx.store, [bound["id"]], owner_id=w.relative.id, conversation_id=w.conv.id, cid="lost"
    )
    objects = ctx.served.app[OBJECTS]
    gone = [await attachments.attachment(ctx.store, i) for i in (dropped["id"], bound["id"])]
    later = utcnow() + timedelta(hours=25)
    removed, deleted = await sweep(ctx.store, objects, 24.0, now=later)
    assert (removed, deleted) == (2, 3)  # two files, one with a thumbnail
    for found in gone:
        with pytest.raises(NotFound):
            await objects.get(found.object_key)
    assert (await ctx.fetch(w.relative, dropped["url"]))[0] == 404
    assert (await ctx.fetch(w.officer, kept["url"]))[0] == 200
    assert await sweep(ctx.store, objects, 24.0, now=later) == (0, 0)


async def test_retention_removes_a_purged_messages_files(ctx: Ctx) -> None:
    w = ctx.world
    _, photo = await ctx.upload(w.relative, phone_jpeg((64, 48)))
    assert (await ctx.send_rest(w.relative, w.conv.id, body="old", attachments=[photo["id"]]))[
        0
    ] == 201
    found = await attachments.attachment(ctx.store, photo["id"])
    now = utcnow() + timedelta(seconds=1)
    assert await retention.purge(ctx.store, now, now) == 1
    objects = ctx.served.app[OBJECTS]
    assert await sweep(ctx.store, objects, 24.0) == (0, 2)
    for key in (found.object_key, found.thumb_key):
        assert key is not None
        with pytest.raises(NotFound):
            await objects.get(key)
    assert (await ctx.fetch(w.officer, photo["url"]))[0] == 404
    _status, page = await ctx.history(w.officer, w.conv.id)
    assert page["messages"][-1]["attachments"] == []


async def test_link_evidence_is_seen_by_the_deciding_officer_only(ctx: Ctx) -> None:
    w = ctx.world
    await prisons.add_inmate(ctx.store, w.gaoming.id, "GM-100", "Li Wei")
    _, register = await ctx.upload(w.stranger, phone_jpeg((600, 400)), name="hukou.jpg")
    _, ruling = await ctx.upload(w.stranger, pdf(), name="ruling.pdf")
    _, theirs = await ctx.upload(w.relative_b, pdf(), name="b.pdf")
    ask = {"prison": "GM", "inmate_number": "GM-100", "relationship": "wife"}

    async def request(who: User, **body: Any) -> tuple[int, Any]:
        async with ctx.http.post(
            f"{ctx.api}/links", json={**ask, **body}, headers=ctx.auth(who)
        ) as response:
            return response.status, await response.json()

    status, answer = await request(w.stranger, attachments=[register["id"], theirs["id"]])
    assert (status, answer["error"]["code"]) == (400, "attachment_not_found")
    extra = [(await ctx.upload(w.stranger, pdf(), name=f"{n}.pdf"))[1]["id"] for n in range(3)]
    status, answer = await request(w.stranger, attachments=[register["id"], *extra])
    assert (status, answer["error"]["code"]) == (400, "too_many_attachments")
    status, asked = await request(w.stranger, attachments=[register["id"], ruling["id"]])
    assert status == 201, asked
    assert [a["id"] for a in asked["attachments"]] == [register["id"], ruling["id"]]

    async def listed(who: User) -> Any:
        async with ctx.http.get(
            f"{ctx.api}/links/{asked['id']}", headers=ctx.auth(who)
        ) as response:
            return response.status, await response.json()

    status, seen = await listed(w.officer)  # the officer deciding it, beside the request
    assert status == 200 and [a["name"] for a in seen["attachments"]] == ["hukou.jpg", "ruling.pdf"]
    async with ctx.http.get(f"{ctx.api}/links?state=pending", headers=ctx.auth(w.officer)) as r:
        [row] = [x for x in (await r.json())["links"] if x["id"] == asked["id"]]
        assert len(row["attachments"]) == 2
    for who in (w.supervisor, ctx.admin):  # they see the request, never its evidence
        status, seen = await listed(who)
        assert status == 200 and "attachments" not in seen
    readers = {
        w.officer: 200,
        w.stranger: 200,
        w.supervisor: 404,
        ctx.admin: 404,
        w.other_officer: 404,
        w.relative: 404,
    }
    for who, expected in readers.items():
        for url in (register["url"], register["thumbnail"], ruling["url"]):
            assert (await ctx.fetch(who, url))[0] == expected, (who.login, url)
    # evidence is not a message's to carry
    status, answer = await ctx.send_rest(w.relative, w.conv.id, attachments=[register["id"]])
    assert (status, answer["error"]["code"]) == (400, "attachment_not_found")
    # deciding keeps it beside the request; the sweep leaves evidence alone
    async with ctx.http.post(
        f"{ctx.api}/links/{asked['id']}/verify", json={"reason": "ok"}, headers=ctx.auth(w.officer)
    ) as response:
        decided = await response.json()
        assert response.status == 200 and len(decided["attachments"]) == 2
    removed, _ = await sweep(ctx.store, ctx.served.app[OBJECTS], 24.0, utcnow() + timedelta(days=2))
    assert removed == 4  # theirs and the three extra, never the evidence
    assert (await ctx.fetch(w.officer, ruling["url"]))[0] == 200
