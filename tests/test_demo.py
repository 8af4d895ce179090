"""The demo data (``kinline demo``, ``make run``): complete, consistent and idempotent."""

from __future__ import annotations

from server.config import Settings
from server.demo import seed
from storage import accounts, audit_trail, conversations, desk, inmate_info, links, prisons
from storage.prisons_public import supervisors
from storage.sql import Database

COUNTED = (
    "prisons",
    "users",
    "inmates",
    "family_links",
    "conversations",
    "messages",
    "conversation_cycles",
    "announcements",
    "audit_entries",
)


async def counts(store: Database) -> dict[str, int]:
    async with store.read() as sql:
        return {t: int(await sql.fetchval(f"SELECT count(*) FROM {t}")) for t in COUNTED}


async def test_seeding_twice_changes_nothing_and_the_world_is_usable(store: Database) -> None:
    settings = Settings(secret="demo-test")
    lines = await seed(store, settings)
    assert any("kinline-demo-2026" in line for line in lines)
    first = await counts(store)
    assert await seed(store, settings) == lines
    assert await counts(store) == first  # idempotent: nothing made twice

    gaoming = await prisons.prison_by_code(store, "GM")
    for code in ("GM", "SH"):  # the composer's "/" has replies to offer (issue 16)
        prison = await prisons.prison_by_code(store, code)
        assert {c.short_name for c in await desk.canned_replies(store, [prison.id])} >= {
            "visit",
            "money",
        }
    published = await supervisors(store, gaoming.id)
    assert len(published) == 3
    assert all(s.title and s.photo.startswith("/static/photos/") and s.phone for s in published)

    verified = await audit_trail.audit_entries(store, action="link.verified")
    assert len(verified) == 3  # each family link verified as an officer does it, audited

    mother, _ = await accounts.credentials(store, "13800000001")
    [inmate_id] = await links.verified_inmates(store, mother.id)
    _, card = await inmate_info.card(store, inmate_id)
    assert card.money.balance_fen == 31250  # what the seeded conversation tells her

    queue = await desk.threads(store, prison_ids=[gaoming.id], states=["waiting"])
    assert [t.state for t in queue] == ["waiting"]  # Huang Lan's question waits for an officer
    [answered] = await desk.cycles(
        store, (await conversations.conversations_of(store, mother.id))[0].id
    )
    assert answered.first_reply_at is not None and answered.rating == 5
