"""``GET /me/export``: a relative's own data, all of it and nobody else's."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from domain.records import NewMessage, User
from storage import audit_trail, conversations, desk, prisons
from storage.postgres import PostgresDatabase
from tests.sites import Site, site_for


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[Site]:
    files = str(tmp_path / "files")
    async with site_for(pg_store, pg_url, redis_url, redis_prefix, files=files) as served:
        yield served


async def test_a_relatives_export_holds_its_own_data_and_nobody_elses(site: Site) -> None:
    w = site.world
    mine, theirs = w.relative, w.relative_b
    await site.store.append_messages(
        [
            NewMessage(w.conv.id, mine.id, "relative", "q1", "how is my son?", "text", mine.name),
            NewMessage(w.conv.id, w.officer.id, "officer", "n1", "check clinic", "note"),
            NewMessage(w.conv.id, w.officer.id, "officer", "a1", "he is well", "text"),
            NewMessage(w.conv_b.id, theirs.id, "relative", "q2", "other family secret", "text"),
        ]
    )
    headers = {"Authorization": f"Bearer {w.token(mine)}"}
    async with site.http.get(site.api + "/me/export", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Disposition"].startswith("attachment;")
        raw = await response.read()
    data = json.loads(raw)
    assert data["account"]["id"] == mine.id and data["account"]["login"] == mine.login
    [conv] = data["conversations"]
    assert conv["id"] == w.conv.id
    assert [m["body"] for m in conv["messages"]] == ["how is my son?", "he is well"]
    assert b"check clinic" not in raw  # a staff note is not the relative's to read
    assert b"other family secret" not in raw and theirs.login.encode() not in raw
    assert [link["state"] for link in data["links"]] == ["verified"]  # its own link
    async with site.http.get(site.api + "/me/export") as response:
        assert response.status == 401


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(out, "JPEG")
    return out.getvalue()


async def _own_traces(site: Site, who: User, conv: int, word: str) -> dict[str, Any]:
    """Everything a relative leaves in the service, each marked with ``word``: a message with
    a file, a rating of the answer it got, a visit request, a complaint, a link request with
    a file as evidence."""
    w = site.world
    headers = {"Authorization": f"Bearer {w.token(who)}"}

    async def upload(name: str) -> int:
        form = aiohttp.FormData()
        shade = (len(word) * 20 % 255, 80, 160 if name.startswith("m") else 40)
        form.add_field("file", _jpeg(shade), filename=name, content_type="image/jpeg")
        async with site.http.post(site.api + "/attachments", data=form, headers=headers) as r:
            assert r.status == 201, await r.text()
            uploaded: int = (await r.json())["id"]
            return uploaded

    photo = await upload(f"msg-{word}.jpg")
    status, _ = await site.call(
        "POST",
        f"/conversations/{conv}/messages",
        who,
        {"body": f"q {word}", "attachments": [photo]},
    )
    assert status in (200, 201)
    assert (await site.call("POST", f"/conversations/{conv}/claim", w.officer))[0] == 200
    assert (await site.call("POST", f"/conversations/{conv}/resolve", w.officer))[0] == 200
    rated = {"rating": 4, "comment": f"rated {word}"}
    assert (await site.call("POST", f"/conversations/{conv}/rate", who, rated))[0] == 200
    thread = await conversations.conversation(site.store, conv)
    at = (datetime.now(UTC) + timedelta(days=9)).replace(microsecond=0)
    visit = {"inmate_id": thread.inmate_id, "slot_start": at.isoformat(), "visitors": 1}
    visit["visitor_names"] = [f"visitor {word}"]
    status, made = await site.call("POST", "/visits", who, visit)
    assert status == 201, made
    complaint = {"prison_id": w.gaoming.id, "category": "other", "body": f"complaint {word}"}
    assert (await site.call("POST", "/complaints", who, complaint))[0] == 201
    evidence = await upload(f"evidence-{word}.jpg")
    await prisons.add_inmate(site.store, w.sanshui.id, f"SS-{word}", f"cousin of {word}")
    ask = {
        "prison": w.sanshui.code,
        "inmate_number": f"SS-{word}",
        "relationship": "cousin",
        "evidence": f"papers {word}",
        "attachments": [evidence],
    }
    status, link = await site.call("POST", "/links", who, ask)
    assert status == 201, link
    return {"photo": photo, "evidence": evidence, "link": link["id"], "visit": made["id"]}


async def test_the_export_holds_every_kind_of_its_own_data_and_none_of_anothers(
    site: Site,
) -> None:
    """Account, links (with their evidence files), messages (with their files), ratings,
    visits, complaints: all of the caller's, and not one thing of another relative who did
    the same in the same prison."""
    w = site.world
    await desk.set_duty(site.store, w.officer.id, w.officer.prison_ids, True, datetime.now(UTC))
    mine = await _own_traces(site, w.relative, w.conv.id, "MINE")
    theirs = await _own_traces(site, w.relative_b, w.conv_b.id, "THEIRS")
    headers = {"Authorization": f"Bearer {w.token(w.relative)}"}
    async with site.http.get(site.api + "/me/export", headers=headers) as response:
        assert response.status == 200
        raw = await response.read()
    assert b"THEIRS" not in raw and w.relative_b.login.encode() not in raw
    data = json.loads(raw)
    [conv] = data["conversations"]
    [message] = [m for m in conv["messages"] if m["body"] == "q MINE"]
    [file] = message["attachments"]
    assert (file["id"], file["name"], file["type"]) == (mine["photo"], "msg-MINE.jpg", "image/jpeg")
    assert conv["ratings"] == [{"cycle": 1, "rating": 4, "comment": "rated MINE"}]
    [visit] = data["visits"]
    assert (visit["id"], visit["visitor_names"]) == (mine["visit"], ["visitor MINE"])
    [complaint] = data["complaints"]
    assert complaint["body"] == "complaint MINE" and complaint["history"]
    asked = {link["id"]: link for link in data["links"]}
    assert mine["link"] in asked
    assert theirs["link"] not in asked and len(asked) == 2  # its verified link and this one
    [evidence] = asked[mine["link"]]["evidence_files"]
    assert (evidence["id"], evidence["name"]) == (mine["evidence"], "evidence-MINE.jpg")
    # the bytes of each listed file are the caller's to download, as the archive says
    for url in (file["url"], evidence["url"]):
        async with site.http.get(site.api.removesuffix("/api/v1") + url, headers=headers) as got:
            assert got.status == 200 and got.content_type == "image/jpeg"
    [entry] = await audit_trail.audit_entries(site.store, action="user.exported")
    assert entry.actor_id == w.relative.id
