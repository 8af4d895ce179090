"""The public prison page: what anyone may read about a prison, without signing in.

Exactly this, and nothing else about any user: the prison (id, code, name, city); its
supervisors' directory (id, name and the public profile: title, photo, address, phone, from
``users.profile``; never a login, an account phone, a password hash or an id number); its
visit rules and what may and may not be brought (``VisitRules``); recent announcements (the
prison's and the bureau-wide ones); and the response-time figures of the last 30 days
(``storage.figures.public_figures``); and the latest daily anchors of the hash chains
(``storage.chain_anchors``: the day and the digest of every head, the same for every prison,
so anyone can keep them and later tell a rewritten history). Disabled supervisors are not
listed.

Each record is built field by field from named columns, so a column added to ``users``
later cannot leak through here.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from storage.announcements import Announcement, announcements
from storage.chain_anchors import Anchor, anchors
from storage.figures import PublicFigures, public_figures
from storage.profiles import profile_from
from storage.sql import Database
from storage.visit_rules import VisitRules, rules_from

RECENT_ANNOUNCEMENTS = 10


class PublicPrisonSummary(msgspec.Struct, frozen=True):
    id: int
    code: str
    name: str
    city: str


class PublicSupervisor(msgspec.Struct, frozen=True):
    id: int
    name: str
    title: str
    photo: str
    address: str
    phone: str  # the public contact phone of the profile, not the account's


class PublicAnnouncement(msgspec.Struct, frozen=True):
    id: int
    prison_id: int | None  # None: bureau-wide
    title: str
    body: str
    open_day: date | None
    created_at: datetime


class PublicPrison(msgspec.Struct, frozen=True):
    id: int
    code: str
    name: str
    city: str
    supervisors: list[PublicSupervisor]
    visit_rules: VisitRules
    announcements: list[PublicAnnouncement]
    figures: PublicFigures
    anchors: list[Anchor]


async def public_prisons(db: Database) -> list[PublicPrisonSummary]:
    """Every prison, by code."""
    async with db.read() as sql:
        rows = await sql.fetch("SELECT id, code, name, city FROM prisons ORDER BY code")
    return [PublicPrisonSummary(r["id"], r["code"], r["name"], r["city"]) for r in rows]


async def supervisors(db: Database, prison_id: int) -> list[PublicSupervisor]:
    """The prison's supervisors' directory, by name."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT u.id, u.name, u.profile FROM users u"
            " JOIN user_prisons up ON up.user_id = u.id"
            " WHERE up.prison_id = $1 AND u.role = 'supervisor' AND NOT u.disabled"
            " ORDER BY u.name, u.id",
            prison_id,
        )
        found = []
        for row in rows:
            profile = profile_from(sql.unjson(row["profile"]))
            found.append(
                PublicSupervisor(
                    id=row["id"],
                    name=row["name"],
                    title=profile.title,
                    photo=profile.photo,
                    address=profile.address,
                    phone=profile.phone,
                )
            )
    return found


def public_announcement(item: Announcement) -> PublicAnnouncement:
    """An announcement as the public reads it (no author)."""
    return PublicAnnouncement(
        item.id, item.prison_id, item.title, item.body, item.open_day, item.created_at
    )


async def public_prison(db: Database, prison_id: int, now: datetime) -> PublicPrison | None:
    """The page of one prison as of ``now``; ``None`` if there is no such prison."""
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT id, code, name, city, visit_rules FROM prisons WHERE id = $1", prison_id
        )
        if row is None:
            return None
        rules = rules_from(sql.unjson(row["visit_rules"]))
    recent = await announcements(db, prison_id=prison_id, limit=RECENT_ANNOUNCEMENTS)
    return PublicPrison(
        id=row["id"],
        code=row["code"],
        name=row["name"],
        city=row["city"],
        supervisors=await supervisors(db, prison_id),
        visit_rules=rules,
        announcements=[public_announcement(a) for a in recent],
        figures=await public_figures(db, prison_id, now),
        anchors=await anchors(db),
    )
