"""The demo data (``kinline demo``, ``make run``): complete, consistent and idempotent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from server.config import Settings
from server.demo import seed
from server.demo_history import FAMILIES
from storage import (
    accounts,
    audit_trail,
    chains,
    conversations,
    desk,
    desk_settings,
    figures,
    inmate_info,
    links,
    period_figures,
    prisons,
)
from storage.period_figures import PeriodFigures
from storage.prisons_public import supervisors
from storage.sql import Database, utcnow
from storage.sqlite import SqliteDatabase

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
    # each family link verified as an officer does it, audited (and the history's families)
    assert len(verified) == 3 + sum(len(f) for f in FAMILIES.values())

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


async def period_of(store: Database) -> dict[str, PeriodFigures]:
    now = utcnow()
    named = await figures.prisons(store, None)
    got = await period_figures.period_figures(store, named, now - timedelta(days=28), now, now)
    return {p.code: p for p in got}


async def test_the_monitor_first_look_shows_weeks_of_figures(store: Database) -> None:
    """Issue 16: a newcomer's first look at the monitor was 13 rows of zeros. The demo now has
    three weeks of questions (most answered in time, some late), ratings, complaints and
    comments, the same shape on every seed (seeded random)."""
    await seed(store, Settings(secret="demo-test"))
    verdict = await chains.verify(store)  # the back-dated history is chained as stored
    assert verdict.broken is None and verdict.messages > 100
    period = await period_of(store)
    for code in ("GM", "SH"):
        p = period[code]
        assert p.totals.cycles >= 15 and p.totals.answered >= 15
        assert p.totals.median_s is not None and p.totals.median_s > 0
        assert 0 < p.totals.late < p.totals.cycles  # some late, most not
        assert p.ratings.count > 0 and p.ratings.average is not None
        assert sum(p.ratings.distribution) == p.ratings.count
        assert all(o.answered > 0 for o in p.officers)  # every officer has figures
    now = utcnow()
    zone = Settings().zone
    last = now.astimezone(zone).date()
    [gm] = await figures.prison_figures(
        store,
        [n for n in await figures.prisons(store, None) if n.code == "GM"],
        last - timedelta(days=13),
        last,
        zone,
        now,
    )
    assert sum(1 for d in gm.days if d.cycles) >= 7  # most of the 14 days shown have questions
    bureau = await figures.bureau_figures(store, last - timedelta(days=21), last, zone, now)
    assert sum(d.complaints_filed for d in bureau) > 0
    assert sum(d.comments for d in bureau) > 0
    settings = await desk_settings.settings(store, period["GM"].prison_id)
    assert (settings.auto_assign, settings.away_reply) == ("round_robin", True)

    again = await seed(store, Settings(secret="demo-test"))  # idempotent: the history once
    assert again and (await period_of(store))["GM"].totals.cycles == period["GM"].totals.cycles


async def test_the_history_is_the_same_on_every_seed(tmp_path: Path) -> None:
    shapes = []
    for n in range(2):
        db = await SqliteDatabase.open(str(tmp_path / f"demo-{n}.db"))
        await db.migrate()
        try:
            await seed(db, Settings(secret="demo-test"))
            period = await period_of(db)
            shapes.append({c: (p.totals.cycles, p.ratings.distribution) for c, p in period.items()})
        finally:
            await db.close()
    assert shapes[0] == shapes[1]
