"""Retention on both databases: text past the period is purged once, its place kept, audited."""

from __future__ import annotations

from datetime import timedelta

from domain.records import NewMessage
from server.retention import retention_cutoff
from storage import audit_trail, messages, retention
from storage.sql import Database, utcnow
from tests.tamper import triggers_off
from tests.world import seed


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
