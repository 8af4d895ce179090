"""Complaints: references, deadlines, the state machine and its history (both stores); who
sees them over REST and live sockets (PostgreSQL, Redis, real sockets). Officers never do."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from channels.protocol import ComplaintEvent
from server.policy import ComplaintFacts, complaint_audience
from storage import accounts, audit_trail, complaints, prisons
from storage.complaints import ComplaintScope, ComplaintState, NewComplaint
from storage.errors import Conflict, NotFound
from storage.postgres import PostgresDatabase
from storage.sql import Database
from tests.realtime import Reader, client
from tests.sites import Site, site_for
from tests.world import World, seed, seed_staff

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


# storage, on SQLite and PostgreSQL


async def _file(store: Database, w: World, now: datetime, **kw: Any) -> complaints.Complaint:
    new = NewComplaint(
        prison_id=kw.pop("prison_id", w.gaoming.id),
        complainant_id=kw.pop("complainant_id", w.relative.id),
        category=kw.pop("category", "visits"),
        body=kw.pop("body", "The visit was cancelled without a reason."),
        **kw,
    )
    return await complaints.file_complaint(store, new, now=now, zone=SHANGHAI, days=15)


async def test_references_run_per_prison_and_local_year_with_a_deadline(store: Database) -> None:
    w = await seed(store)
    first = await _file(store, w, T0, inmate_id=w.conv.inmate_id)
    second = await _file(store, w, T0 + timedelta(hours=1))
    sanshui = await _file(store, w, T0, prison_id=w.sanshui.id)
    # 2026-12-31 16:30 UTC is already 2027 in Shanghai: a new year, numbered from 1 again
    new_year = await _file(store, w, datetime(2026, 12, 31, 16, 30, tzinfo=UTC))
    assert [c.reference for c in (first, second, sanshui, new_year)] == [
        "GM-2026-000001",
        "GM-2026-000002",
        "SS-2026-000001",
        "GM-2027-000001",
    ]
    assert first.deadline == T0 + timedelta(days=15)
    assert (first.state, first.inmate_id, first.complainant_name) == (
        "received",
        w.conv.inmate_id,
        "Chen Mei",
    )
    [entry] = await complaints.history(store, first.id)
    assert (entry.state, entry.actor_id, entry.at) == ("received", w.relative.id, T0)
    filed = [
        e
        for e in await audit_trail.audit_entries(store, action="complaint.filed")
        if e.object_id == first.id
    ]
    assert [(e.actor_id, e.prison_id, e.after and e.after["reference"]) for e in filed] == [
        (w.relative.id, w.gaoming.id, "GM-2026-000001")
    ]
    assert "body" not in (filed[0].after or {})  # the text stays with the complaint
    with pytest.raises(NotFound):
        await _file(store, w, T0, prison_id=999999)


async def test_the_state_machine_keeps_history_and_refuses_illegal_moves(store: Database) -> None:
    w = await seed(store)
    c = await _file(store, w, T0)
    sup = w.supervisor.id

    async def move(to: Any, at: int, actor: int = sup) -> complaints.Complaint:
        return await complaints.transition(
            store, c.id, to, actor_id=actor, message=f"to {to}", now=T0 + timedelta(hours=at)
        )

    with pytest.raises(Conflict):
        await move("closed", 1)  # received -> closed does not exist
    with pytest.raises(Conflict):
        await move("received", 1)
    assert (await move("in_review", 1)).state == "in_review"
    escalated = await move("escalated", 2)
    assert escalated.escalated and escalated.escalated_at == T0 + timedelta(hours=2)
    admin = await accounts.add_user(store, "admin", "admin.x", "Admin X", "x")
    assert (await move("answered", 3, admin.id)).state == "answered"
    with pytest.raises(Conflict):
        await move("escalated", 4, admin.id)  # once only
    closed = await move("closed", 5, admin.id)
    assert (closed.state, closed.updated_at, closed.escalated) == (
        "closed",
        T0 + timedelta(hours=5),
        True,
    )
    for to in ("in_review", "answered", "escalated", "closed"):
        with pytest.raises(Conflict):
            await move(to, 6)  # closed is final
    history = await complaints.history(store, c.id)
    assert [(h.state, h.message, h.actor_name) for h in history] == [
        ("received", "", "Chen Mei"),
        ("in_review", "to in_review", "Wang Fang"),
        ("escalated", "to escalated", "Wang Fang"),
        ("answered", "to answered", "Admin X"),
        ("closed", "to closed", "Admin X"),
    ]
    audited = [
        (e.action, e.actor_id, e.before, e.after)
        for e in reversed(await audit_trail.audit_entries(store, prison_id=w.gaoming.id))
        if e.object_type == "complaint" and e.action != "complaint.filed"
    ]
    assert audited[0] == (
        "complaint.in_review",
        sup,
        {"state": "received"},
        {"state": "in_review", "message": "to in_review"},
    )
    assert [a[0] for a in audited] == [
        "complaint.in_review",
        "complaint.escalated",
        "complaint.answered",
        "complaint.closed",
    ]
    with pytest.raises(NotFound):
        await complaints.transition(store, 999999, "closed", actor_id=sup, message="x", now=T0)


async def test_overdue_means_past_the_deadline_and_neither_answered_nor_closed(
    store: Database,
) -> None:
    w = await seed(store)
    late = await _file(store, w, T0)
    answered = await _file(store, w, T0)
    escalated = await _file(store, w, T0)
    fresh = await _file(store, w, T0 + timedelta(days=10))
    elsewhere = await _file(store, w, T0, prison_id=w.sanshui.id)
    moves: list[tuple[complaints.Complaint, ComplaintState]] = [
        (answered, "answered"),
        (escalated, "escalated"),
    ]
    for c, to in moves:
        await complaints.transition(store, c.id, to, actor_id=w.supervisor.id, message="m", now=T0)
    now = T0 + timedelta(days=16)
    prisons = [w.gaoming.id, w.sanshui.id]
    assert await complaints.overdue_count(store, prisons, now) == {
        w.gaoming.id: 2,  # late and escalated
        w.sanshui.id: 1,
    }
    assert await complaints.overdue_count(store, prisons, T0 + timedelta(days=14)) == {
        w.gaoming.id: 0,
        w.sanshui.id: 0,
    }
    gm = ComplaintScope(prison_ids=(w.gaoming.id,))
    overdue = await complaints.complaints(store, gm, now=now, overdue=True)
    assert [c.id for c in overdue] == [escalated.id, late.id]  # newest first
    assert all(c.overdue(now) for c in overdue)
    on_time = await complaints.complaints(store, gm, now=now, overdue=False)
    assert [c.id for c in on_time] == [fresh.id, answered.id]
    mine = ComplaintScope(complainant_id=w.relative.id)
    assert len(await complaints.complaints(store, mine, now=now)) == 5
    assert [
        c.id for c in await complaints.complaints(store, mine, now=now, prison_id=w.sanshui.id)
    ] == [elsewhere.id]


async def test_the_live_audience_is_never_an_officer(store: Database) -> None:
    w = await seed(store)
    staff = await seed_staff(store, w)
    by_relative = await _file(store, w, T0)
    by_officer = await _file(store, w, T0, complainant_id=w.officer.id, inmate_id=w.conv.inmate_id)
    expected = {w.supervisor.id, staff.admin.id}

    async def audience(complaint: complaints.Complaint) -> set[int]:
        candidates = [
            await accounts.user(store, i) for i in await complaints.candidates(store, complaint)
        ]
        assert w.officer.id in {u.id for u in candidates}  # the policy, not the query, decides
        facts = ComplaintFacts(complaint.prison_id, complaint.complainant_id, complaint.escalated)
        return set(complaint_audience(facts, candidates))

    assert await audience(by_relative) == expected | {w.relative.id}
    assert await audience(by_officer) == expected
    assert by_officer.on_behalf and not by_relative.on_behalf


async def test_references_are_unique_when_filed_at_once_from_two_pools(
    pg_store: PostgresDatabase, pg_url: str
) -> None:
    """Two connection pools stand for two server processes filing at the same moment."""
    w = await seed(pg_store)
    other = await PostgresDatabase.open(pg_url)
    try:
        new = NewComplaint(
            prison_id=w.gaoming.id, complainant_id=w.relative.id, category="c", body="b"
        )
        filed = await asyncio.gather(
            *(
                complaints.file_complaint(s, new, now=T0, zone=SHANGHAI, days=15)
                for s in [pg_store, other] * 15
            )
        )
    finally:
        await other.close()
    references = sorted(c.reference for c in filed)
    assert references == [f"GM-2026-{n:06d}" for n in range(1, 31)]


# over HTTP and live sockets (PostgreSQL + Redis)


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    async with site_for(pg_store, pg_url, redis_url, redis_prefix) as served:
        yield served


async def settled(reader: Reader) -> None:
    """Wait until the server handles this socket's frames, hence has joined its topics: a
    frame about a conversation that does not exist is answered with an error only then."""
    before = len(reader.errors())
    await reader.client.typing(999_999_999)
    await reader.until(lambda: len(reader.errors()) > before)


def complaint_events(reader: Reader) -> list[ComplaintEvent]:
    return [f for f in reader.frames if isinstance(f, ComplaintEvent)]


async def until_events(reader: Reader, count: int) -> None:
    await reader.until(lambda: len(complaint_events(reader)) >= count)


def complaint_file(w: World, **extra: Any) -> dict[str, Any]:
    return {
        "prison_id": w.gaoming.id,
        "category": "conduct of staff",
        "body": "An officer was rude on the phone.",
        **extra,
    }


async def test_a_complaint_is_told_live_to_its_complainant_and_supervisors_never_to_officers(
    site: Site,
) -> None:
    w, admin = site.world, site.staff.admin
    async with (
        Reader(client(site.ws, w.token(w.relative))) as relative,
        Reader(client(site.ws, w.token(w.relative_b))) as relative_b,
        Reader(client(site.ws, w.token(w.supervisor))) as supervisor,
        Reader(client(site.ws, w.token(site.staff.other_supervisor))) as other_supervisor,
        Reader(client(site.ws, w.token(admin))) as admin_ws,
        Reader(client(site.ws, w.token(w.officer))) as officer,
    ):
        for reader in (relative, relative_b, supervisor, other_supervisor, admin_ws, officer):
            await settled(reader)
        await officer.watch(w.conv.id)

        status, filed = await site.call(
            "POST", "/complaints", w.relative, complaint_file(w, conversation_id=w.conv.id)
        )
        assert status == 201
        created = datetime.fromisoformat(filed["created_at"])
        assert re.fullmatch(r"GM-\d{4}-000001", filed["reference"])
        assert filed["reference"][3:7] == str(created.astimezone(SHANGHAI).year)
        assert datetime.fromisoformat(filed["deadline"]) == created + timedelta(days=15)
        assert (filed["state"], filed["overdue"], filed["inmate_id"]) == (
            "received",
            False,
            w.conv.inmate_id,  # taken from the conversation named
        )
        cid = filed["id"]

        moves = [
            ("transition", {"state": "in_review", "message": "We are looking into it."}),
            ("answer", {"message": "The officer has been spoken to."}),
            ("transition", {"state": "closed", "message": "Closed. Thank you."}),
        ]
        for path, payload in moves:
            status, moved = await site.call(
                "POST", f"/complaints/{cid}/{path}", w.supervisor, payload
            )
            assert status == 200, moved
        expected = [
            ComplaintEvent(cid, filed["reference"], "received", ""),
            ComplaintEvent(cid, filed["reference"], "in_review", "We are looking into it."),
            ComplaintEvent(cid, filed["reference"], "answered", "The officer has been spoken to."),
            ComplaintEvent(cid, filed["reference"], "closed", "Closed. Thank you."),
        ]
        for reader in (relative, supervisor, admin_ws):
            await until_events(reader, 4)
            assert complaint_events(reader) == expected

        # illegal moves: refused, nothing told
        for payload in (
            {"state": "in_review", "message": "again"},
            {"state": "escalated", "message": "x"},
        ):
            status, refused = await site.call(
                "POST", f"/complaints/{cid}/transition", w.supervisor, payload
            )
            assert (status, refused["error"]["code"]) == (409, "conflict")

        # fences: a later event each of the others is entitled to, on its own socket
        sent = await relative.client.send(w.conv.id, "one more question")
        await officer.until(lambda: any(m.seq == sent.seq for m in officer.messages))
        await site.call("POST", "/complaints", w.relative_b, complaint_file(w))  # its own
        await relative_b.until(lambda: bool(complaint_events(relative_b)))
        assert complaint_events(officer) == []
        assert [e.state for e in complaint_events(relative_b)] == ["received"]
        assert all(e.id != cid for e in complaint_events(relative_b))
        await settled(other_supervisor)
        assert complaint_events(other_supervisor) == []

    status, detail = await site.call("GET", f"/complaints/{cid}", w.relative)
    assert status == 200
    assert [(h["state"], h["message"], h["by"]["name"]) for h in detail["history"]] == [
        ("received", "", "Chen Mei"),
        ("in_review", "We are looking into it.", "Wang Fang"),
        ("answered", "The officer has been spoken to.", "Wang Fang"),
        ("closed", "Closed. Thank you.", "Wang Fang"),
    ]
    # who reads it over REST
    for who, code in (
        (w.relative, 200),
        (w.supervisor, 200),
        (admin, 200),
        (w.officer, 404),
        (w.other_officer, 404),
        (w.relative_b, 404),
        (w.stranger, 404),
        (site.staff.other_supervisor, 404),
    ):
        status, _ = await site.call("GET", f"/complaints/{cid}", who)
        assert status == code, who.login
    listed = {}
    for who in (w.relative, w.relative_b, w.supervisor, admin, site.staff.other_supervisor):
        status, page = await site.call("GET", "/complaints", who)
        assert status == 200
        listed[who.login] = [c["id"] for c in page["complaints"]]
    assert cid in listed[w.relative.login] and cid in listed[w.supervisor.login]
    assert cid in listed[admin.login]
    assert cid not in listed[w.relative_b.login] and listed[site.staff.other_supervisor.login] == []
    for officer_user in (w.officer, w.other_officer):
        status, refused = await site.call("GET", "/complaints", officer_user)
        assert (status, refused["error"]["code"]) == (403, "forbidden")
    actions = [
        e.action
        for e in reversed(await audit_trail.audit_entries(site.store, prison_id=w.gaoming.id))
    ]
    complaint_actions = [a for a in actions if a.startswith("complaint.")]
    assert complaint_actions[:4] == [
        "complaint.filed",
        "complaint.in_review",
        "complaint.answered",
        "complaint.closed",
    ]

    # and nothing else an officer of the prison can read names it: the conversation it was
    # filed about (thread and history), the figures, the audit trail, the overview
    for path, code in (
        (f"/conversations/{w.conv.id}", 200),
        (f"/conversations/{w.conv.id}/messages?after=0", 200),
        ("/conversations?state=resolved", 200),
        (f"/stats?prison={w.gaoming.id}", 200),
        ("/stats/bureau", 403),
        ("/audit", 403),
        (f"/audit?object_type=complaint&object_id={cid}", 403),
        (f"/overview?prison={w.gaoming.id}", 403),
    ):
        status, answer = await site.call("GET", path, w.officer)
        assert status == code, (path, answer)
        text = json.dumps(answer)
        assert filed["reference"] not in text and "complaint" not in text, path


async def test_an_officer_files_for_an_inmate_and_then_cannot_see_it(site: Site) -> None:
    w = site.world
    status, bad = await site.call("POST", "/complaints", w.officer, complaint_file(w))
    assert (status, bad["error"]["code"], bad["error"]["field"]) == (
        400,
        "invalid_request",
        "inmate_id",
    )
    elsewhere = await prisons.add_inmate(site.store, w.sanshui.id, "SS-001", "Zhou Li")
    status, _ = await site.call(
        "POST", "/complaints", w.officer, complaint_file(w, inmate_id=elsewhere.id)
    )
    assert status == 404  # not an inmate of the prison
    status, _ = await site.call(
        "POST",
        "/complaints",
        w.officer,
        complaint_file(w, prison_id=w.sanshui.id, inmate_id=elsewhere.id),
    )
    assert status == 403  # not its prison
    async with (
        Reader(client(site.ws, w.token(w.officer))) as officer,
        Reader(client(site.ws, w.token(w.supervisor))) as supervisor,
    ):
        await settled(officer)
        await settled(supervisor)
        await officer.watch(w.conv.id)
        status, filed = await site.call(
            "POST", "/complaints", w.officer, complaint_file(w, inmate_id=w.conv.inmate_id)
        )
        assert status == 201
        assert (filed["on_behalf"], filed["inmate_id"], filed["complainant"]["role"]) == (
            True,
            w.conv.inmate_id,
            "officer",
        )
        assert re.fullmatch(r"GM-\d{4}-\d{6}", filed["reference"])
        cid = filed["id"]
        status, _ = await site.call("GET", f"/complaints/{cid}", w.officer)
        assert status == 404  # past the 201 reply, never again
        status, _ = await site.call(
            "POST", f"/complaints/{cid}/answer", w.officer, {"message": "x"}
        )
        assert status == 404
        status, _ = await site.call(
            "POST", f"/complaints/{cid}/answer", w.supervisor, {"message": "Dealt with."}
        )
        assert status == 200
        await supervisor.until(lambda: len(complaint_events(supervisor)) == 2)
        sent = await officer.client.send(w.conv.id, "fence")
        await officer.until(lambda: any(m.seq == sent.seq for m in officer.messages))
        assert complaint_events(officer) == []
    status, seen = await site.call("GET", f"/complaints/{cid}", w.supervisor)
    assert (status, seen["on_behalf"], [h["state"] for h in seen["history"]]) == (
        200,
        True,
        ["received", "answered"],
    )
    status, mine = await site.call("GET", "/complaints", w.relative)
    assert cid not in [c["id"] for c in mine["complaints"]]


async def test_who_may_file_about_which_prison(site: Site) -> None:
    w = site.world
    cases = [
        (w.stranger, complaint_file(w), 403),  # no verified inmate anywhere
        (w.relative, complaint_file(w, prison_id=w.sanshui.id), 403),  # none in Sanshui
        (w.relative, complaint_file(w, inmate_id=w.conv_b.inmate_id), 404),  # not its inmate
        (w.relative, complaint_file(w, conversation_id=w.conv_b.id), 404),  # not its thread
        (w.relative, complaint_file(w, conversation_id=999999), 404),
        (w.supervisor, complaint_file(w), 403),
        (site.staff.admin, complaint_file(w), 403),
        (w.relative, complaint_file(w, body="   "), 400),
        (w.relative, complaint_file(w, extra="x"), 400),
        (w.relative_b, complaint_file(w, inmate_id=w.conv_b.inmate_id), 201),
    ]
    for who, payload, expected in cases:
        status, answer = await site.call("POST", "/complaints", who, payload)
        assert status == expected, (who.login, payload, answer)
    status, _ = await site.call("POST", "/complaints", None, complaint_file(w))
    assert status == 401


async def test_an_escalated_complaint_is_the_bureaus(site: Site) -> None:
    w, admin = site.world, site.staff.admin
    async with Reader(client(site.ws, w.token(w.relative))) as relative:
        await settled(relative)
        _, filed = await site.call("POST", "/complaints", w.relative, complaint_file(w))
        cid = filed["id"]
        status, _ = await site.call(
            "POST", f"/complaints/{cid}/answer", admin, {"message": "not yet mine"}
        )
        assert status == 403  # the supervisors' until escalated
        status, up = await site.call(
            "POST",
            f"/complaints/{cid}/transition",
            w.supervisor,
            {"state": "escalated", "message": "Passed to the bureau."},
        )
        assert (status, up["state"], up["escalated"]) == (200, "escalated", True)
        status, _ = await site.call(
            "POST", f"/complaints/{cid}/answer", w.supervisor, {"message": "late"}
        )
        assert status == 403
        status, _ = await site.call(
            "POST", f"/complaints/{cid}/answer", admin, {"message": "The bureau answers."}
        )
        assert status == 200
        status, again = await site.call(
            "POST", f"/complaints/{cid}/transition", admin, {"state": "escalated", "message": "x"}
        )
        assert (status, again["error"]["code"]) == (409, "conflict")
        await relative.until(lambda: len(complaint_events(relative)) == 3)
        assert [(e.state, e.message) for e in complaint_events(relative)] == [
            ("received", ""),
            ("escalated", "Passed to the bureau."),
            ("answered", "The bureau answers."),
        ]


async def test_overdue_complaints_are_flagged_and_filtered(site: Site) -> None:
    w = site.world
    _, late = await site.call("POST", "/complaints", w.relative, complaint_file(w))
    _, answered = await site.call("POST", "/complaints", w.relative, complaint_file(w))
    _, fresh = await site.call("POST", "/complaints", w.relative, complaint_file(w))
    await site.call(
        "POST", f"/complaints/{answered['id']}/answer", w.supervisor, {"message": "Answered."}
    )
    past = datetime.now(UTC) - timedelta(days=1)
    async with site.store.write() as sql:
        await sql.execute(
            f"UPDATE complaints SET deadline = $1 WHERE id IN ({late['id']}, {answered['id']})",
            past,
        )
    status, overdue = await site.call("GET", "/complaints?overdue=true", w.supervisor)
    assert status == 200
    assert [(c["id"], c["overdue"]) for c in overdue["complaints"]] == [(late["id"], True)]
    _, on_time = await site.call("GET", "/complaints?overdue=false", w.supervisor)
    assert [c["id"] for c in on_time["complaints"]] == [fresh["id"], answered["id"]]
    _, by_state = await site.call("GET", "/complaints?state=answered", w.relative)
    assert [(c["id"], c["overdue"]) for c in by_state["complaints"]] == [(answered["id"], False)]
    status, bad = await site.call("GET", "/complaints?state=lost", w.supervisor)
    assert (status, bad["error"]["field"]) == (400, "state")
    assert await complaints.overdue_count(site.store, [w.gaoming.id], datetime.now(UTC)) == {
        w.gaoming.id: 1
    }


async def test_references_stay_unique_when_relatives_file_at_once(site: Site) -> None:
    w = site.world
    filers = [w.relative, w.relative_b] * 10
    replies = await asyncio.gather(
        *(site.call("POST", "/complaints", who, complaint_file(w)) for who in filers)
    )
    assert {status for status, _ in replies} == {201}
    numbers = sorted(int(body["reference"].rsplit("-", 1)[1]) for _, body in replies)
    assert numbers == list(range(1, 21))
