"""``GET /me/export``: a relative's own data, all of it and nobody else's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from domain.records import NewMessage
from storage.postgres import PostgresDatabase
from tests.sites import Site, site_for


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    async with site_for(pg_store, pg_url, redis_url, redis_prefix) as served:
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
