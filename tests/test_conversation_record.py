"""The verifiable record of a conversation, over HTTP: checked by a few lines of hashlib and json
written here (nothing of Kinline's), for staff (notes in full) and for the relative (notes as
their hash only); a supervisor's export is an audited look; the public prison page publishes
the day's anchor."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from domain.records import NewMessage
from storage import audit_trail, chain_anchors
from storage.postgres import PostgresDatabase
from storage.sql import utcnow
from tests.record_checker import holds
from tests.sites import Site, site_for


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    async with site_for(pg_store, pg_url, redis_url, redis_prefix) as served:
        w = served.world
        await pg_store.append_messages(
            [
                NewMessage(w.conv.id, w.relative.id, "relative", "q", '他还好吗？"\\\n😀\u2028'),
                NewMessage(w.conv.id, w.officer.id, "officer", "n", "check clinic", "note"),
                NewMessage(w.conv.id, w.officer.id, "officer", "a", "he is well", "text"),
            ]
        )
        yield served


async def download(site: Site, conv: int, who: Any) -> tuple[int, str, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {site.world.token(who)}"}
    async with site.http.get(site.api + f"/conversations/{conv}/export", headers=headers) as r:
        return r.status, r.headers.get("Content-Disposition", ""), json.loads(await r.text())


async def test_the_export_is_checked_by_an_outside_checker_with_notes_as_hashes(
    site: Site,
) -> None:
    w = site.world
    status, disposition, staff = await download(site, w.conv.id, w.officer)
    assert status == 200 and "attachment" in disposition
    assert staff["conversation"] == {
        "id": w.conv.id,
        "prison": w.gaoming.id,
        "inmate": w.conv.inmate_id,
    }
    assert [m["kind"] for m in staff["messages"]] == ["text", "note", "text"]
    assert staff["messages"][1]["body"] == "check clinic"
    assert staff["messages"][0]["sender"] == w.relative.id
    assert holds(staff)

    status, _, own = await download(site, w.conv.id, w.relative)
    assert status == 200
    note = own["messages"][1]
    assert note == {"seq": 2, "kind": "note", "hash": staff["messages"][1]["hash"]}
    assert own["head"] == staff["head"] and holds(own)
    assert "check clinic" not in json.dumps(own, ensure_ascii=False)

    forged = json.loads(json.dumps(own))
    forged["messages"][2]["body"] = "he is not well"
    assert not holds(forged)
    forged = json.loads(json.dumps(own))
    forged["messages"][0]["at_us"] += 1
    assert not holds(forged)

    assert await audit_trail.audit_entries(site.store, action="conversation.opened") == []
    status, _, watched = await download(site, w.conv.id, w.supervisor)
    assert status == 200 and holds(watched)
    [look] = await audit_trail.audit_entries(site.store, action="conversation.opened")
    assert look.actor_id == w.supervisor.id and look.object_id == w.conv.id
    for stranger in (w.relative_b, w.other_officer):
        assert (await download(site, w.conv.id, stranger))[0] == 404


async def test_the_public_prison_page_publishes_the_days_anchor(site: Site) -> None:
    taken, _ = await chain_anchors.anchor(site.store, utcnow())
    status, page = await site.call("GET", f"/prisons/{site.world.gaoming.id}")
    assert status == 200
    assert {"day": taken.day.isoformat(), "digest": taken.digest} in page["anchors"]
    assert len(taken.digest) == 64 and taken.digest == taken.digest.lower()
