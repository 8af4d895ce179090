"""Records for a complaint file: a transcript and an audit range, as CSV and printable."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from domain.records import NewMessage
from storage import audit_trail
from storage.postgres import PostgresDatabase
from storage.sql import utcnow
from tests.sites import Site, site_for


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    async with site_for(pg_store, pg_url, redis_url, redis_prefix) as served:
        w = served.world
        await pg_store.append_messages(
            [
                NewMessage(w.conv.id, w.relative.id, "relative", "q", "<b>is he</b> well?", "text"),
                NewMessage(w.conv.id, w.officer.id, "officer", "n", "=1+1 check clinic", "note"),
                NewMessage(w.conv.id, w.officer.id, "officer", "a", "he is well", "text"),
            ]
        )
        yield served


async def _get(site: Site, path: str, who: object) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {site.world.token(who)}"}  # type: ignore[arg-type]
    async with site.http.get(site.api + path, headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def test_a_supervisor_exports_a_transcript_for_a_complaint_file(site: Site) -> None:
    w = site.world
    status, kind, text = await _get(site, f"/conversations/{w.conv.id}/transcript", w.supervisor)
    assert status == 200 and kind.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["seq", "time", "from", "role", "kind", "text"]
    assert [r[5] for r in rows[1:]] == ["<b>is he</b> well?", "'=1+1 check clinic", "he is well"]
    [look] = await audit_trail.audit_entries(site.store, action="conversation.opened")
    assert look.actor_id == w.supervisor.id  # the export is an audited look
    status, kind, page = await _get(
        site, f"/conversations/{w.conv.id}/transcript?format=html", w.supervisor
    )
    assert status == 200 and kind.startswith("text/html")
    assert "&lt;b&gt;is he&lt;/b&gt; well?" in page and "<b>is he" not in page
    status, _, own = await _get(site, f"/conversations/{w.conv.id}/transcript", w.relative)
    assert status == 200 and "check clinic" not in own  # a relative's copy has no notes
    for stranger in (w.relative_b, w.other_officer):
        status, _, _ = await _get(site, f"/conversations/{w.conv.id}/transcript", stranger)
        assert status == 404


async def test_an_audit_range_is_exported_within_the_readers_prisons(site: Site) -> None:
    w = site.world
    now = utcnow()
    since, until = (now - timedelta(days=1)).isoformat(), (now + timedelta(days=1)).isoformat()
    query = f"/audit/export?since={since}&until={until}".replace("+", "%2B")
    await _get(site, f"/conversations/{w.conv.id}/transcript", w.supervisor)  # one entry
    status, _, text = await _get(site, query, w.supervisor)
    assert status == 200
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["id", "time", "who", "action"]
    assert "conversation.opened" in {r[3] for r in rows[1:]}
    status, kind, page = await _get(site, query + "&format=html", w.supervisor)
    assert status == 200 and kind.startswith("text/html")
    assert "conversation.opened" in page and "<table>" in page  # the printable page
    assert (await _get(site, query, w.officer))[0] == 403
    assert (await _get(site, query.replace("since=", "since=x"), w.supervisor))[0] == 400
