"""Retention on both databases: text past the period is purged once, its place kept, audited."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from domain.records import NewMessage
from server.retention import retention_cutoff
from storage import audit_trail, messages, retention, retention_archive
from storage.sql import Database, utcnow
from tests.tamper import triggers_off
from tests.world import World, seed


async def test_text_past_the_retention_period_is_purged_once_and_its_place_kept(
    store: Database,
) -> None:
    w = await seed(store)
    r = w.relative
    await store.append_messages(
        [
            NewMessage(w.conv.id, r.id, "relative", f"c{n}", f"question {n}", "text")
            for n in (1, 2, 3)
        ]
    )
    now = utcnow()
    async with triggers_off(store, "messages") as sql:  # the first two: eight years ago
        await sql.execute(
            "UPDATE messages SET created_at = $1 WHERE conversation_id = $2 AND seq <= 2",
            now - timedelta(days=8 * 366),
            w.conv.id,
        )
    before = retention_cutoff(7, now)
    assert await retention.purge(store, before, now) == 2
    assert await retention.purge(store, before, now) == 0  # nothing more the second time
    page = await messages.messages(store, w.conv.id, after=0)
    assert [(m.seq, m.body) for m in page] == [(1, ""), (2, ""), (3, "question 3")]
    [entry] = await audit_trail.audit_entries(store, action="retention.purged")
    assert entry.after is not None and entry.after["messages"] == 2 and entry.actor_id is None


async def _two_old_messages(store: Database) -> tuple[World, datetime]:
    w = await seed(store)
    r = w.relative
    await store.append_messages(
        [
            NewMessage(w.conv.id, r.id, "relative", f"c{n}", f"question {n}", "text")
            for n in (1, 2, 3)
        ]
    )
    now = utcnow()
    async with triggers_off(store, "messages") as sql:  # the first two: eight years ago
        await sql.execute(
            "UPDATE messages SET created_at = $1 WHERE conversation_id = $2 AND seq <= 2",
            now - timedelta(days=8 * 366),
            w.conv.id,
        )
    return w, now


async def test_the_archive_setting_keeps_the_text_in_a_file_before_it_is_emptied(
    store: Database, tmp_path: Path
) -> None:
    w, now = await _two_old_messages(store)
    kept = tmp_path / "archive"
    before = retention_cutoff(7, now)
    assert await retention.purge(store, before, now, archive_to=kept) == 2
    [archive] = list(kept.iterdir())
    lines = [json.loads(line) for line in gzip.decompress(archive.read_bytes()).splitlines()]
    assert [(m["conv"], m["seq"], m["body"]) for m in lines] == [
        (w.conv.id, 1, "question 1"),
        (w.conv.id, 2, "question 2"),
    ]
    page = await messages.messages(store, w.conv.id, after=0)
    assert [m.body for m in page] == ["", "", "question 3"]
    async with store.read() as sql:
        rows = await sql.fetch(
            "SELECT hash FROM messages WHERE conversation_id = $1 AND seq <= 2 ORDER BY seq",
            w.conv.id,
        )
    assert [m["hash"] for m in lines] == [bytes(r["hash"]).hex() for r in rows]  # checkable
    [entry] = await audit_trail.audit_entries(store, action="retention.purged")
    assert entry.after is not None
    assert (entry.after["archive"], entry.after["archived"]) == (str(archive), 2)
    assert entry.after["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert await retention.purge(store, before, now, archive_to=kept) == 0
    assert list(kept.iterdir()) == [archive]  # nothing more to archive, no empty file


async def test_an_archive_that_cannot_be_written_purges_nothing(
    store: Database, tmp_path: Path
) -> None:
    w, now = await _two_old_messages(store)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the archive directory should be")
    with pytest.raises(retention_archive.ArchiveFailed):
        await retention.purge(store, retention_cutoff(7, now), now, archive_to=blocked)
    page = await messages.messages(store, w.conv.id, after=0)
    assert [m.body for m in page] == ["question 1", "question 2", "question 3"]
    assert await audit_trail.audit_entries(store, action="retention.purged") == []
