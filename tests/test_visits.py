"""Visits: rules, requests and decisions. Storage on both stores; the API over real HTTP and
sockets on PostgreSQL and Redis. Days and hours are the bureau's (Asia/Shanghai) local time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from channels.protocol import VisitEvent
from domain.records import Visit
from storage import accounts, audit_trail, inmate_info, prisons, visits
from storage.errors import Conflict
from storage.inmate_info import InfoPatch, Refused
from storage.postgres import PostgresDatabase
from storage.sql import Database
from storage.visit_rules import Hours, VisitRules
from tests.realtime import Reader, client
from tests.sites import Site, site_for

ZONE = ZoneInfo("Asia/Shanghai")
RULES = VisitRules(
    days=[2, 6],  # Tuesday, Saturday
    hours=[Hours("09:00", "11:30"), Hours("14:00", "16:00")],
    min_days_between=30,
    max_visitors=3,
    allowed_items=["clothes", "books"],
    forbidden_items=["cash"],
)


def slot(weekday: int, clock: str, weeks: int = 1) -> datetime:
    """A local time on the ISO ``weekday`` at least ``weeks`` weeks from today."""
    today = datetime.now(ZONE).date()
    day = today + timedelta(days=(weekday - today.isoweekday()) % 7 + 7 * weeks)
    hour, minute = clock.split(":")
    return datetime.combine(day, time(int(hour), int(minute)), ZONE)


# -- storage, on SQLite and PostgreSQL ----------------------------------------------------------


@dataclass
class Seeded:
    prison: int
    officer: int
    inmate: int
    relatives: list[int]


async def _seeded(store: Database, relatives: int = 2) -> Seeded:
    prison = await prisons.add_prison(store, "GM", "Gaoming Prison")
    officer = await accounts.add_user(store, "officer", "li", "Officer Li", "x", [prison.id])
    inmate = await prisons.add_inmate(store, prison.id, "GM-001", "Chen Jian")
    kin = [
        (await accounts.add_user(store, "relative", f"1380000000{n}", f"Kin {n}", "x")).id
        for n in range(relatives)
    ]
    await visits.set_visit_rules(store, prison.id, RULES, officer.id, datetime.now(UTC))
    return Seeded(prison.id, officer.id, inmate.id, kin)


async def _request(store: Database, s: Seeded, relative: int, at: datetime) -> Visit:
    return await visits.request_visit(
        store,
        relative_id=relative,
        inmate_id=s.inmate,
        slot_start=at,
        visitors=2,
        visitor_names=["Chen Mei", "Chen Lu"],
        now=datetime.now(UTC),
        zone=ZONE,
    )


async def _decide(store: Database, s: Seeded, visit: int, approve: bool) -> Visit:
    return await visits.decide_visit(
        store,
        visit,
        approve=approve,
        reason=None if approve else "the hall is closed",
        actor_id=s.officer,
        now=datetime.now(UTC),
        zone=ZONE,
    )


async def test_requests_are_checked_decided_once_and_audited(store: Database) -> None:
    s = await _seeded(store)
    [rules_set] = await audit_trail.audit_entries(store, action="prison.visit_rules_set")
    assert rules_set.before is not None and rules_set.before["days"] == []  # the defaults
    assert rules_set.after is not None and rules_set.after["days"] == [2, 6]
    assert await visits.visit_rules(store, s.prison) == RULES

    first = await _request(store, s, s.relatives[0], slot(2, "10:00"))
    assert (first.state, first.visitor_names, first.prison_id) == (
        "pending",
        ["Chen Mei", "Chen Lu"],
        s.prison,
    )
    with pytest.raises(Conflict):  # one pending request per relative and inmate
        await _request(store, s, s.relatives[0], slot(6, "10:00"))
    declined = await _decide(store, s, first.id, approve=False)
    assert (declined.state, declined.reason, declined.decided_by) == (
        "declined",
        "the hall is closed",
        s.officer,
    )
    with pytest.raises(Conflict):
        await _decide(store, s, first.id, approve=True)  # only from pending

    again = await _request(store, s, s.relatives[0], slot(2, "10:00"))
    approved = await _decide(store, s, again.id, approve=True)
    assert approved.state == "approved"
    assert [v.id for v in await visits.upcoming_approved(store, s.inmate, datetime.now(UTC))] == [
        again.id
    ]
    with pytest.raises(Refused) as refused:  # within 30 days of an approved visit
        await _request(store, s, s.relatives[1], slot(6, "10:00", weeks=2))
    assert refused.value.code == "visit_rule_frequency"
    later = await _request(store, s, s.relatives[1], slot(2, "10:00", weeks=6))
    listed = await visits.visits(store, inmate_ids=[s.inmate])
    assert [v.id for v in listed] == [first.id, again.id, later.id]  # soonest slot first
    assert [v.id for v in await visits.visits(store, state="pending")] == [later.id]
    assert [e.after for e in reversed(await audit_trail.audit_entries(store, prison_id=s.prison))][
        1:
    ] == [
        {"state": "declined", "reason": "the hall is closed"},
        {"state": "approved", "reason": None},
    ]


async def test_an_approval_checks_the_rules_and_card_as_they_are_then(store: Database) -> None:
    """Regression: approving re-checked only the past and the frequency rule, so a request
    made before the inmate was barred from visits (the card's next visit date moved) or
    before the rules changed could still be approved."""
    s = await _seeded(store)
    asked = await _request(store, s, s.relatives[0], slot(2, "10:00"))
    barred = InfoPatch(next_visit_date=slot(2, "10:00", weeks=4).date())
    await inmate_info.update_info(store, s.inmate, barred, s.officer, datetime.now(UTC))
    with pytest.raises(Refused) as refused:
        await _decide(store, s, asked.id, approve=True)
    assert refused.value.code == "visit_not_eligible"
    later = await _request(store, s, s.relatives[1], slot(2, "10:00", weeks=5))  # 2 visitors
    fewer = msgspec.structs.replace(RULES, max_visitors=1)  # the rules change meanwhile
    await visits.set_visit_rules(store, s.prison, fewer, s.officer, datetime.now(UTC))
    with pytest.raises(Refused) as refused:
        await _decide(store, s, later.id, approve=True)
    assert refused.value.code == "visit_rule_visitors"
    assert await visits.visits(store, state="approved") == []


async def test_racing_approvals_cannot_break_the_frequency_rule(store: Database) -> None:
    """Pending requests a week apart for the same inmate, approved at once: one wins."""
    s = await _seeded(store, relatives=4)
    pending = [
        await _request(store, s, relative, slot(2, "10:00", weeks=n + 1))
        for n, relative in enumerate(s.relatives)
    ]  # all four within 21 days of each other

    async def approve(visit: int) -> str:
        try:
            return (await _decide(store, s, visit, approve=True)).state
        except Refused as refused:
            return refused.code

    outcomes = await asyncio.gather(*(approve(v.id) for v in pending))
    assert sorted(outcomes) == ["approved"] + ["visit_rule_frequency"] * 3
    assert len(await visits.visits(store, state="approved")) == 1


def test_each_rule_is_checked_in_local_time() -> None:
    now = datetime.now(UTC)

    def code(at: datetime, visitors: int = 1, eligible: date | None = None,
             approved: tuple[datetime, ...] = ()) -> str | None:  # fmt: skip
        try:
            visits.check_slot(
                RULES,
                slot_start=at,
                visitors=visitors,
                next_visit_date=eligible,
                approved=approved,
                now=now,
                zone=ZONE,
            )
        except Refused as refused:
            return refused.code
        return None

    tuesday = slot(2, "10:00")
    assert code(tuesday) is None
    assert code(slot(2, "15:59")) is None
    assert code(tuesday.astimezone(UTC)) is None  # the same instant, written in UTC
    assert code(now - timedelta(minutes=1)) == "visit_in_past"
    assert code(slot(1, "10:00")) == "visit_rule_days"
    assert code(slot(2, "11:30")) == "visit_rule_hours"  # windows end exclusive
    assert code(slot(2, "10:00").replace(tzinfo=UTC)) == "visit_rule_hours"  # 18:00 local
    assert code(tuesday, visitors=4) == "visit_rule_visitors"
    assert code(tuesday, eligible=tuesday.date() + timedelta(days=1)) == "visit_not_eligible"
    assert code(tuesday, eligible=tuesday.date()) is None
    assert code(tuesday, approved=(tuesday - timedelta(days=29),)) == "visit_rule_frequency"
    assert code(tuesday, approved=(tuesday + timedelta(days=29),)) == "visit_rule_frequency"
    assert code(tuesday, approved=(tuesday - timedelta(days=30),)) is None
    # no days or hours published: any time (does not raise)
    visits.check_slot(
        VisitRules(), slot_start=slot(1, "03:00"), visitors=3, next_visit_date=None,
        approved=(), now=now, zone=ZONE,
    )  # fmt: skip


# -- the API, over real HTTP and sockets on PostgreSQL and Redis ---------------------------------


HTTP_RULES = {  # as an officer sets them over HTTP
    "days": [6, 2, 2],
    "hours": [{"start": "09:00", "end": "11:30"}, {"start": "14:00", "end": "16:00"}],
    "min_days_between": 30,
    "max_visitors": 3,
    "allowed_items": ["clothes", "books"],
    "forbidden_items": ["cash"],
}


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    async with site_for(pg_store, pg_url, redis_url, redis_prefix) as served:
        w = served.world
        status, stored = await served.call(
            "PUT", f"/prisons/{w.gaoming.id}/visit-rules", w.officer, HTTP_RULES
        )
        assert status == 200 and stored["days"] == [2, 6]
        yield served


def ask(inmate: int, at: datetime, visitors: int = 2, **more: Any) -> dict[str, Any]:
    return {"inmate_id": inmate, "slot_start": at.isoformat(), "visitors": visitors, **more}


def visit_events(reader: Reader) -> list[VisitEvent]:
    return [f for f in reader.frames if isinstance(f, VisitEvent)]


async def test_each_broken_rule_is_refused_with_a_code_naming_it(site: Site) -> None:
    w = site.world
    inmate = w.conv.inmate_id
    status, first = await site.call("POST", "/visits", w.relative, ask(inmate, slot(2, "10:00")))
    assert status == 201
    status, _ = await site.call("POST", f"/visits/{first['id']}/approve", w.officer)
    assert status == 200
    frequency = ask(inmate, slot(6, "10:00", weeks=1))  # 4 days after the approved visit
    status, answer = await site.call("POST", "/visits", w.relative, frequency)
    assert (status, answer["error"]["code"]) == (400, "visit_rule_frequency")
    await site.call(
        "PATCH",
        f"/inmates/{inmate}",
        w.officer,
        {"next_visit_date": slot(2, "10:00", weeks=10).date().isoformat()},
    )
    yesterday = datetime.now(ZONE) - timedelta(days=1)
    refusals = {
        "visit_in_past": ask(inmate, yesterday),
        "visit_rule_days": ask(inmate, slot(3, "10:00", weeks=6)),  # a Wednesday
        "visit_rule_hours": ask(inmate, slot(2, "12:00", weeks=6)),
        "visit_rule_visitors": ask(inmate, slot(2, "10:00", weeks=6), visitors=4),
        "visit_not_eligible": ask(inmate, slot(2, "10:00", weeks=9)),
    }
    for code, payload in refusals.items():
        status, answer = await site.call("POST", "/visits", w.relative, payload)
        assert (status, answer["error"]["code"]) == (400, code), payload
        assert answer["error"]["field"] in ("slot_start", "visitors")
    bad = [
        (ask(inmate, slot(2, "10:00", weeks=12)) | {"slot_start": "2030-01-01T10:00:00"},
         "slot_start"),  # no offset: which time zone?
        (ask(inmate, slot(2, "10:00", weeks=12), visitors=0), "visitors"),
        (ask(inmate, slot(2, "10:00", weeks=12), visitor_names=["only one"]), "visitor_names"),
    ]  # fmt: skip
    for payload, field in bad:
        status, answer = await site.call("POST", "/visits", w.relative, payload)
        assert (status, answer["error"]["code"], answer["error"]["field"]) == (
            400,
            "invalid_request",
            field,
        )
    status, fine = await site.call(
        "POST", "/visits", w.relative, ask(inmate, slot(6, "14:30", weeks=12))
    )
    assert status == 201
    status, twice = await site.call(
        "POST", "/visits", w.relative, ask(inmate, slot(2, "09:00", weeks=14))
    )
    assert (status, twice["error"]["code"]) == (409, "conflict")
    _, mine = await site.call("GET", "/visits", w.relative)
    assert [(v["id"], v["state"]) for v in mine["visits"]] == [
        (first["id"], "approved"),
        (fine["id"], "pending"),
    ]


async def test_decisions_are_told_live_and_an_approved_visit_shows_on_the_card(
    site: Site,
) -> None:
    w = site.world
    inmate, inmate_b = w.conv.inmate_id, w.conv_b.inmate_id
    async with (
        Reader(client(site.ws, w.token(w.relative))) as relative,
        Reader(client(site.ws, w.token(w.relative_b))) as relative_b,
        Reader(client(site.ws, w.token(w.officer))) as officer,
        Reader(client(site.ws, w.token(w.other_officer))) as other_officer,
    ):
        at = slot(2, "10:00")
        status, asked = await site.call(
            "POST", "/visits", w.relative, ask(inmate, at, visitor_names=["Chen Mei", "Chen Lu"])
        )
        assert status == 201 and asked["state"] == "pending" and "relative" not in asked
        await officer.until(lambda: bool(visit_events(officer)))
        assert visit_events(officer) == [
            VisitEvent(id=asked["id"], inmate=inmate, state="pending", slot_start=at)
        ]
        _, queue = await site.call("GET", "/visits?state=pending", w.officer)
        assert [(v["id"], v["relative"]["name"]) for v in queue["visits"]] == [
            (asked["id"], "Chen Mei")
        ]

        status, bad = await site.call("POST", f"/visits/{asked['id']}/decline", w.officer, {})
        assert (status, bad["error"]["code"], bad["error"]["field"]) == (
            400,
            "invalid_request",
            "reason",
        )
        status, declined = await site.call(
            "POST", f"/visits/{asked['id']}/decline", w.officer, {"reason": "hall closed"}
        )
        assert (status, declined["state"], declined["reason"]) == (200, "declined", "hall closed")
        await relative.until(lambda: len(visit_events(relative)) == 1)
        assert visit_events(relative)[0] == VisitEvent(
            id=asked["id"], inmate=inmate, state="declined", slot_start=at, reason="hall closed"
        )
        status, late = await site.call("POST", f"/visits/{asked['id']}/approve", w.officer)
        assert (status, late["error"]["code"]) == (409, "conflict")

        status, again = await site.call("POST", "/visits", w.relative, ask(inmate, at))
        assert status == 201
        status, approved = await site.call("POST", f"/visits/{again['id']}/approve", w.officer)
        assert (status, approved["state"]) == (200, "approved")
        await relative.until(lambda: len(visit_events(relative)) == 2)
        assert visit_events(relative)[1].state == "approved"

        # fence: B's relative is told of its own decision, published after A's on its topic
        status, other = await site.call("POST", "/visits", w.relative_b, ask(inmate_b, at))
        await site.call("POST", f"/visits/{other['id']}/approve", w.officer)
        await relative_b.until(lambda: bool(visit_events(relative_b)))
        assert [e.id for e in visit_events(relative_b)] == [other["id"]]
        await officer.until(lambda: len(visit_events(officer)) == 6)
        assert [e.state for e in visit_events(officer)] == [
            "pending", "declined", "pending", "approved", "pending", "approved"
        ]  # fmt: skip
        assert visit_events(other_officer) == []  # Sanshui's staff hear nothing of Gaoming

    _, seen = await site.call("GET", f"/inmates/{inmate}", w.relative)
    assert seen["visits"] == [{"id": again["id"], "slot_start": approved["slot_start"],
                               "visitors": 2}]  # fmt: skip
    assert seen["visit_rules"]["forbidden_items"] == ["cash"]
    entries = {
        e.action: e for e in await audit_trail.audit_entries(site.store, prison_id=w.gaoming.id)
    }
    assert entries["visit.declined"].after == {
        "state": "declined",
        "reason": "hall closed",
        "reason_code": "other",  # no code named: other, with the free text
    }
    assert entries["visit.declined"].object_id == asked["id"]
    assert entries["visit.approved"].actor_id == w.officer.id


async def test_visit_rules_are_validated_and_audited(site: Site) -> None:
    w = site.world
    path = f"/prisons/{w.gaoming.id}/visit-rules"
    status, bad = await site.call(
        "PUT", path, w.officer, {"hours": [{"start": "11:00", "end": "09:00"}]}
    )
    assert (status, bad["error"]["code"], bad["error"]["field"]) == (
        400,
        "invalid_request",
        "hours",
    )
    status, bad = await site.call("PUT", path, w.officer, {"days": [8]})
    assert (status, bad["error"]["field"]) == (400, "days")
    status, bad = await site.call("PUT", path, w.officer, {"open": True})
    assert (status, bad["error"]["field"]) == (400, "open")
    status, stored = await site.call(
        "PUT", path, site.staff.admin, {"days": [7], "min_days_between": 14}
    )
    assert status == 200 and stored["max_visitors"] == 3  # left out: the default
    first, second = reversed(
        await audit_trail.audit_entries(site.store, action="prison.visit_rules_set")
    )
    assert first.actor_id == w.officer.id and second.actor_id == site.staff.admin.id
    assert second.before is not None and second.before["days"] == [2, 6]
    assert second.after is not None and (second.after["days"], second.after["hours"]) == ([7], [])
    # the new rules are the ones applied
    status, answer = await site.call(
        "POST", "/visits", w.relative, ask(w.conv.inmate_id, slot(2, "10:00"))
    )
    assert (status, answer["error"]["code"]) == (400, "visit_rule_days")
    status, _ = await site.call(
        "POST", "/visits", w.relative, ask(w.conv.inmate_id, slot(7, "19:00"))
    )
    assert status == 201


async def test_visit_lists_are_scoped(site: Site) -> None:
    w = site.world
    at = slot(2, "10:00")
    _, a = await site.call("POST", "/visits", w.relative, ask(w.conv.inmate_id, at))
    _, b = await site.call("POST", "/visits", w.relative_b, ask(w.conv_b.inmate_id, at))
    await site.call("POST", f"/visits/{b['id']}/approve", w.officer)
    _, mine = await site.call("GET", "/visits", w.relative)
    assert [v["id"] for v in mine["visits"]] == [a["id"]]
    _, none = await site.call("GET", f"/visits?inmate={w.conv_b.inmate_id}", w.relative)
    assert none["visits"] == []
    _, theirs = await site.call("GET", "/visits", w.supervisor)
    assert {v["id"] for v in theirs["visits"]} == {a["id"], b["id"]}
    _, approved = await site.call("GET", "/visits?state=approved", w.officer)
    assert [v["id"] for v in approved["visits"]] == [b["id"]]
    _, elsewhere = await site.call("GET", "/visits", w.other_officer)
    assert elsewhere["visits"] == []
    _, narrowed = await site.call("GET", f"/visits?prison={w.gaoming.id}", w.other_officer)
    assert narrowed["visits"] == []
