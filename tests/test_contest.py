"""Refusals you can contest and oversight the family can see (issue 15), over real HTTP and
sockets, on SQLite and on PostgreSQL (migration 0024 changes both).

- Every refusal (link rejected, link revoked, visit declined, complaint closed) carries a
  published reason code; an unlisted one is 400 ``unknown_reason_code``.
- The relative refused complains about that decision, even with no verified link left (it got
  403 before), and reads the answer; nothing else opens to it.
- A complainant escalates an answered complaint to the bureau once; the admin answers it.
- A supervisor's openings of a conversation are listed to its relative (name, title, when,
  how), told live to it while connected, and cannot be deleted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channels.protocol import OpeningEvent, Subscribed
from domain.records import User
from server.config import Settings
from storage import audit_trail, openings
from storage.postgres import PostgresDatabase
from storage.sql import Database
from tests.realtime import Reader, client
from tests.servers import free_port, inprocess
from tests.test_visits import HTTP_RULES, ask, slot
from tests.world import Staff, World, seed, seed_staff


@dataclass
class Here:
    api: str
    ws: str
    http: aiohttp.ClientSession
    store: Database
    world: World
    staff: Staff

    async def call(
        self, method: str, path: str, who: User | None = None, json: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.world.token(who)}"} if who else {}
        async with self.http.request(
            method, self.api + path, json=json, headers=headers
        ) as response:
            text = await response.text()
            return response.status, (await response.json() if text else None)


@pytest.fixture
async def here(
    store: Database, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Here]:
    """The seeded world served on ``store`` (SQLite with the memory broker; PostgreSQL with
    Redis)."""
    world = await seed(store)
    staff = await seed_staff(store, world)
    settings = Settings(port=free_port(), secret="tests")
    if isinstance(store, PostgresDatabase):
        settings = dataclasses.replace(
            settings,
            database_url=request.getfixturevalue("pg_url"),
            redis_url=request.getfixturevalue("redis_url"),
            redis_prefix=request.getfixturevalue("redis_prefix"),
        )
    async with inprocess(settings, store) as served, aiohttp.ClientSession() as http:
        yield Here(served.http_url + "/api/v1", served.ws_url, http, store, world, staff)


def _error(reply: Any) -> tuple[str, str | None]:
    return reply["error"]["code"], reply["error"].get("field")


async def test_the_reasons_are_published_in_both_languages(here: Here) -> None:
    status, listed = await here.call("GET", "/reasons")  # no sign-in
    assert status == 200
    kinds = {item["kind"] for item in listed["items"]}
    assert kinds == {"link.reject", "link.revoke", "visit.decline", "complaint.close"}
    for item in listed["items"]:
        assert item["text"]["zh-CN"] and item["text"]["en"], item
    for kind in kinds:  # "other" for every kind
        assert {"code": "other", "kind": kind} in [
            {"code": i["code"], "kind": i["kind"]} for i in listed["items"]
        ]
    status, declines = await here.call("GET", "/reasons?kind=visit.decline")
    assert status == 200 and {i["kind"] for i in declines["items"]} == {"visit.decline"}
    status, bad = await here.call("GET", "/reasons?kind=nope")
    assert (status, bad["error"]["code"]) == (400, "invalid_request")


async def _stranger_link(here: Here, number: str = "GM-001") -> int:
    """The seeded stranger asks to be linked to an inmate of Gaoming (no verified link)."""
    w = here.world
    status, link = await here.call(
        "POST",
        "/links",
        w.stranger,
        {"prison": "GM", "inmate_number": number, "relationship": "cousin", "evidence": "x"},
    )
    assert status == 201, link
    return int(link["id"])


async def _answer(here: Here, complaint: int, by: User, text: str = "Looked into.") -> None:
    status, answered = await here.call(
        "POST", f"/complaints/{complaint}/answer", by, {"message": text}
    )
    assert (status, answered["state"]) == (200, "answered"), answered


async def test_a_rejected_relative_contests_the_rejection_and_reads_the_answer(
    here: Here,
) -> None:
    w = here.world
    link = await _stranger_link(here)
    status, bad = await here.call(
        "POST", f"/links/{link}/reject", w.officer, {"reason_code": "no_such_reason"}
    )
    assert (status, *_error(bad)) == (400, "unknown_reason_code", "reason_code")
    status, bad = await here.call(
        "POST", f"/links/{link}/reject", w.officer, {"reason_code": "rules_breached"}
    )  # a revocation's reason, not a rejection's
    assert (status, *_error(bad)) == (400, "unknown_reason_code", "reason_code")
    status, bad = await here.call(
        "POST", f"/links/{link}/reject", w.officer, {"reason_code": "other"}
    )
    assert (status, *_error(bad)) == (400, "invalid_request", "reason")  # other: say why
    status, rejected = await here.call(
        "POST",
        f"/links/{link}/reject",
        w.officer,
        {"reason_code": "evidence_insufficient", "reason": "The photo is unreadable."},
    )
    assert status == 200, rejected
    assert (rejected["state"], rejected["reason_code"], rejected["reason"]) == (
        "rejected",
        "evidence_insufficient",
        "The photo is unreadable.",
    )
    status, seen = await here.call("GET", f"/links/{link}", w.stranger)
    assert (status, seen["reason_code"]) == (200, "evidence_insufficient")
    [entry] = await audit_trail.audit_entries(here.store, action="link.rejected")
    assert entry.after == {
        "state": "rejected",
        "reason": "The photo is unreadable.",
        "reason_code": "evidence_insufficient",
    }

    # before: a relative with no verified inmate could not complain at all; it still cannot,
    # except about the decision that refused it
    plain = {"prison_id": w.gaoming.id, "category": "links", "body": "Why?"}
    status, denied = await here.call("POST", "/complaints", w.stranger, plain)
    assert (status, denied["error"]["code"]) == (403, "forbidden")
    contest = {
        "category": "links",
        "body": "My evidence is good.",
        "about": {"kind": "link", "id": link},
    }
    status, filed = await here.call("POST", "/complaints", w.stranger, contest)
    assert status == 201, filed
    assert (filed["prison_id"], filed["about"]) == (w.gaoming.id, {"kind": "link", "id": link})
    assert filed["inmate_id"] is None  # a refused link tells nothing of the inmate

    # another relative's decision is answered like none at all; a pending one is no refusal
    status, other = await here.call("POST", "/complaints", w.relative, contest)
    assert (status, other["error"]["code"]) == (404, "not_found")
    pending = await _stranger_link(here, "GM-002")
    about_pending = {**contest, "about": {"kind": "link", "id": pending}}
    status, denied = await here.call("POST", "/complaints", w.stranger, about_pending)
    assert (status, denied["error"]["code"]) == (403, "forbidden")
    status, denied = await here.call(
        "POST", "/complaints", w.stranger, {**contest, "prison_id": w.sanshui.id}
    )
    assert (status, denied["error"]["code"]) == (403, "forbidden")  # not that prison's
    status, missing = await here.call(
        "POST", "/complaints", w.stranger, {**contest, "about": {"kind": "visit", "id": 999}}
    )
    assert (status, missing["error"]["code"]) == (404, "not_found")

    # the supervisor answers; the stranger reads it, and nothing else opened to it
    await _answer(here, filed["id"], w.supervisor, "We will look at the evidence again.")
    status, read = await here.call("GET", f"/complaints/{filed['id']}", w.stranger)
    assert status == 200
    assert [h["state"] for h in read["history"]] == ["received", "answered"]
    assert read["history"][-1]["message"] == "We will look at the evidence again."
    status, mine = await here.call("GET", "/complaints", w.stranger)
    assert [c["id"] for c in mine["complaints"]] == [filed["id"]]
    status, _ = await here.call("GET", f"/inmates/{w.conv.inmate_id}", w.stranger)
    assert status == 404
    status, _ = await here.call("GET", f"/conversations/{w.conv.id}/access", w.stranger)
    assert status == 404


async def test_a_revoked_link_a_declined_visit_and_a_closed_complaint_can_be_contested(
    here: Here,
) -> None:
    w = here.world
    # a visit declined, with its reason
    status, _ = await here.call(
        "PUT", f"/prisons/{w.gaoming.id}/visit-rules", w.officer, HTTP_RULES
    )
    assert status == 200
    status, asked = await here.call(
        "POST", "/visits", w.relative, ask(w.conv.inmate_id, slot(2, "10:00"))
    )
    assert status == 201, asked
    status, bad = await here.call(
        "POST", f"/visits/{asked['id']}/decline", w.officer, {"reason_code": "resolved"}
    )
    assert (status, *_error(bad)) == (400, "unknown_reason_code", "reason_code")
    status, declined = await here.call(
        "POST", f"/visits/{asked['id']}/decline", w.officer, {"reason_code": "slot_unavailable"}
    )
    assert status == 200, declined
    assert (declined["reason_code"], declined.get("reason")) == ("slot_unavailable", None)
    about_visit = {"kind": "visit", "id": asked["id"]}
    status, on_visit = await here.call(
        "POST",
        "/complaints",
        w.relative,
        {"category": "visits", "body": "Any slot?", "about": about_visit},
    )
    assert (status, on_visit["about"]) == (201, about_visit)

    # a complaint closed, with its reason; contested in turn
    await _answer(here, on_visit["id"], w.supervisor)
    move = {"state": "closed", "message": "Settled.", "reason_code": "nope"}
    status, bad = await here.call(
        "POST", f"/complaints/{on_visit['id']}/transition", w.supervisor, move
    )
    assert (status, *_error(bad)) == (400, "unknown_reason_code", "reason_code")
    status, closed = await here.call(
        "POST",
        f"/complaints/{on_visit['id']}/transition",
        w.supervisor,
        {**move, "reason_code": "resolved"},
    )
    assert (status, closed["state"], closed["reason_code"]) == (200, "closed", "resolved")
    assert closed["history"][-1]["reason_code"] == "resolved"
    about_complaint = {"kind": "complaint", "id": on_visit["id"]}
    status, on_closed = await here.call(
        "POST",
        "/complaints",
        w.relative,
        {"category": "visits", "body": "Not settled.", "about": about_complaint},
    )
    assert (status, on_closed["about"]) == (201, about_complaint)
    status, denied = await here.call(  # an open complaint is no refusal
        "POST",
        "/complaints",
        w.relative,
        {"category": "x", "body": "y", "about": {"kind": "complaint", "id": on_closed["id"]}},
    )
    assert (status, denied["error"]["code"]) == (403, "forbidden")

    # a verified link revoked: the relative has no verified inmate left, and still contests
    status, links = await here.call("GET", "/links", w.relative)
    [mine] = [item for item in links["links"] if item["state"] == "verified"]
    status, revoked = await here.call(
        "POST",
        f"/links/{mine['id']}/revoke",
        w.supervisor,
        {"reason_code": "rules_breached", "reason": "Shared a visitor pass."},
    )
    assert (status, revoked["reason_code"]) == (200, "rules_breached")
    status, me = await here.call("GET", "/me", w.relative)
    assert me.get("verified_inmates", []) == []
    about_link = {"kind": "link", "id": mine["id"]}
    status, on_link = await here.call(
        "POST",
        "/complaints",
        w.relative,
        {"category": "links", "body": "Wrong.", "about": about_link},
    )
    assert (status, on_link["about"], on_link["prison_id"]) == (201, about_link, w.gaoming.id)
    status, listed = await here.call("GET", f"/complaints?prison={w.gaoming.id}", w.supervisor)
    abouts = [c.get("about") for c in listed["complaints"]]
    assert about_link in abouts and about_visit in abouts and about_complaint in abouts


async def test_a_complainant_escalates_an_answered_complaint_once_and_the_admin_answers(
    here: Here,
) -> None:
    w, admin = here.world, here.staff.admin
    form = {"prison_id": w.gaoming.id, "category": "conduct", "body": "Rude at the gate."}
    status, filed = await here.call("POST", "/complaints", w.relative, form)
    assert status == 201
    cid = filed["id"]
    up = {"message": "The answer does not address the gate."}
    status, early = await here.call("POST", f"/complaints/{cid}/escalate", w.relative, up)
    assert (status, early["error"]["code"]) == (409, "not_answered")
    await _answer(here, cid, w.supervisor)
    for who in (w.supervisor, admin, w.relative_b):  # only the complainant escalates
        status, denied = await here.call("POST", f"/complaints/{cid}/escalate", who, up)
        assert status in (403, 404), (who.login, status, denied)
    status, escalated = await here.call("POST", f"/complaints/{cid}/escalate", w.relative, up)
    assert status == 200, escalated
    assert (escalated["state"], escalated["escalated"]) == ("escalated", True)
    assert escalated["history"][-1]["by"]["id"] == w.relative.id
    [entry] = await audit_trail.audit_entries(here.store, action="complaint.escalated")
    assert (entry.actor_id, entry.object_id) == (w.relative.id, cid)

    status, queue = await here.call("GET", "/complaints?state=escalated", admin)
    assert [c["id"] for c in queue["complaints"]] == [cid]
    status, _ = await here.call("POST", f"/complaints/{cid}/answer", w.supervisor, {"message": "x"})
    assert status == 403  # the bureau's now
    await _answer(here, cid, admin, "The bureau has spoken to the prison.")
    status, again = await here.call("POST", f"/complaints/{cid}/escalate", w.relative, up)
    assert (status, again["error"]["code"]) == (409, "already_escalated")
    status, read = await here.call("GET", f"/complaints/{cid}", w.relative)
    assert [(h["state"], h["by"]["role"]) for h in read["history"]] == [
        ("received", "relative"),
        ("answered", "supervisor"),
        ("escalated", "relative"),
        ("answered", "admin"),
    ]


async def test_the_relative_sees_each_supervisor_opening_live_and_nobody_can_delete_it(
    here: Here,
) -> None:
    w, admin = here.world, here.staff.admin
    status, _ = await here.call(
        "PUT",
        f"/supervisors/{w.supervisor.id}/profile",
        admin,
        {"title": "People's Congress deputy"},
    )
    assert status == 200
    conv = w.conv.id
    status, listed = await here.call("GET", f"/conversations/{conv}/access", w.relative)
    assert (status, listed["items"]) == (200, [])
    async with Reader(client(here.ws, w.token(w.relative))) as relative:
        await relative.until(lambda: any(isinstance(f, Subscribed) for f in relative.frames))
        status, _ = await here.call("GET", f"/conversations/{conv}/messages", w.supervisor)
        assert status == 200
        async with Reader(client(here.ws, w.token(w.supervisor))) as supervisor:
            await supervisor.watch(conv)

            def opened() -> list[OpeningEvent]:
                return [f for f in relative.frames if isinstance(f, OpeningEvent)]

            await relative.until(lambda: len(opened()) == 2)
    assert [(e.conv, e.who.name, e.who.title, e.via) for e in opened()] == [
        (conv, "Wang Fang", "People's Congress deputy", "history"),
        (conv, "Wang Fang", "People's Congress deputy", "watch"),
    ]
    status, listed = await here.call("GET", f"/conversations/{conv}/access", w.relative)
    assert status == 200
    items = listed["items"]
    assert [(i["who"], i["via"]) for i in items] == [
        ({"name": "Wang Fang", "title": "People's Congress deputy"}, "watch"),
        ({"name": "Wang Fang", "title": "People's Congress deputy"}, "history"),
    ]  # newest first
    status, page = await here.call(
        "GET", f"/conversations/{conv}/access?limit=1&before={items[0]['id']}", w.relative
    )
    assert [i["id"] for i in page["items"]] == [items[1]["id"]]
    # the officer of the prison reads them too; reading them opens nothing
    status, staff_view = await here.call("GET", f"/conversations/{conv}/access", w.supervisor)
    assert (status, len(staff_view["items"])) == (200, 2)
    assert len(await openings.openings(here.store, conv)) == 2
    for who in (w.relative_b, w.stranger, w.other_officer, admin):
        status, denied = await here.call("GET", f"/conversations/{conv}/access", who)
        assert (status, denied["error"]["code"]) == (404, "not_found"), who.login
    # append-only: not even a statement on the application's connection removes one
    statements = [
        ("DELETE FROM audit_entries WHERE id = $1", (items[0]["id"],)),
        ("UPDATE audit_entries SET object_id = $1 WHERE id = $2", (w.conv_b.id, items[0]["id"])),
    ]
    for statement, args in statements:
        with pytest.raises(Exception, match="append-only"):  # asyncpg's or sqlite3's error
            async with here.store.write() as sql:
                await sql.execute(statement, *args)
    assert len(await openings.openings(here.store, conv)) == 2
