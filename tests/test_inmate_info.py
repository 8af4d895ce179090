"""The inmate information card: storage on both stores; the API over real HTTP and sockets
(PostgreSQL and Redis): updates reach only that inmate's relatives, refusals change nothing,
fact cards arrive in the conversation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from channels.protocol import InfoEvent, MessageEvent
from server.api.inmates import CardVisit, fact_card
from storage import accounts, audit_trail, links, prisons
from storage.inmate_info import (
    HealthIn,
    InfoPatch,
    InmateInfo,
    MovementIn,
    Refused,
    TermChangeIn,
    TermIn,
    apply,
    card,
    update_info,
)
from storage.postgres import PostgresDatabase
from storage.sql import Database
from tests.realtime import Reader, client
from tests.sites import Site, site_for

NOW = datetime(2026, 11, 25, 6, 5, tzinfo=UTC)  # 14:05 in Shanghai


async def _inmate(store: Database) -> tuple[int, int, int]:
    prison = await prisons.add_prison(store, "GM", "Gaoming Prison")
    officer = await accounts.add_user(store, "officer", "li", "Officer Li", "x", [prison.id])
    inmate = await prisons.add_inmate(store, prison.id, "GM-001", "Chen Jian")
    return prison.id, officer.id, inmate.id


async def _audit(store: Database) -> list[Any]:
    return list(reversed(await audit_trail.audit_entries(store, action="inmate.updated")))


# -- storage, on SQLite and PostgreSQL ----------------------------------------------------------


async def test_an_update_is_stored_stamped_and_audited_with_before_and_after(
    store: Database,
) -> None:
    prison, officer, inmate = await _inmate(store)
    updated = await update_info(
        store,
        inmate,
        InfoPatch(
            activity="study, then football",
            health=HealthIn("fair", "a cold"),
            movement=MovementIn("deposit", 31250, note="from family"),
        ),
        officer,
        NOW,
    )
    assert updated.parts == ("activity", "health", "money")
    _, info = await card(store, inmate)
    assert info.activity.text == "study, then football"
    assert (info.activity.updated_at, info.activity.updated_by) == (NOW, officer)
    assert (info.health.status, info.health.note) == ("fair", "a cold")
    assert info.money.balance_fen == 31250
    [movement] = info.money.movements
    assert (movement.kind, movement.at, movement.balance_after_fen) == ("deposit", NOW, 31250)
    assert info.work.updated_at is None  # untouched parts stay unrecorded

    later = NOW + timedelta(minutes=5)
    await update_info(store, inmate, InfoPatch(activity="library"), officer, later)
    first, second = await _audit(store)
    assert (first.actor_id, first.object_type, first.object_id, first.prison_id) == (
        officer,
        "inmate",
        inmate,
        prison,
    )
    assert first.before == {
        "activity": "",
        "health": {"status": None, "note": ""},
        "balance_fen": 0,
    }
    assert first.after["activity"] == "study, then football"
    assert first.after["balance_fen"] == 31250
    assert first.after["movement"]["amount_fen"] == 31250
    assert (second.before, second.after) == (
        {"activity": "study, then football"},
        {"activity": "library"},
    )


async def test_a_spending_larger_than_the_balance_is_refused_and_changes_nothing(
    store: Database,
) -> None:
    _, officer, inmate = await _inmate(store)
    await update_info(store, inmate, InfoPatch(movement=MovementIn("deposit", 5000)), officer, NOW)
    with pytest.raises(Refused) as refused:
        await update_info(
            store,
            inmate,
            InfoPatch(activity="changed too", movement=MovementIn("spending", 5001)),
            officer,
            NOW,
        )
    assert (refused.value.code, refused.value.field) == (
        "insufficient_balance",
        "movement.amount_fen",
    )
    _, info = await card(store, inmate)
    assert info.money.balance_fen == 5000 and info.activity.text == ""  # the whole patch refused
    assert len(await _audit(store)) == 1
    await update_info(store, inmate, InfoPatch(movement=MovementIn("spending", 5000)), officer, NOW)
    assert (await card(store, inmate))[1].money.balance_fen == 0  # down to zero is fine


async def test_dates_out_of_order_are_refused_naming_the_field(store: Database) -> None:
    _, officer, inmate = await _inmate(store)
    start, release = date(2024, 3, 1), date(2029, 2, 28)
    await update_info(
        store,
        inmate,
        InfoPatch(term=TermIn("有期徒刑五年", start, release)),
        officer,
        NOW,
    )
    change = TermChangeIn(
        date(2026, 6, 1), "commutation", "(2026) 粤06刑更123号", date(2028, 8, 31)
    )
    await update_info(store, inmate, InfoPatch(term_change=change), officer, NOW)
    before = await card(store, inmate)
    cases = {
        "term.expected_release": InfoPatch(term=TermIn(expected_release=date(2024, 2, 1))),
        "term.start": InfoPatch(term=TermIn(start=date(2026, 7, 1))),
        "term_change.decided_on": InfoPatch(
            term_change=TermChangeIn(date(2026, 5, 1), "parole", "ref", date(2027, 1, 1))
        ),
        "term_change.new_release": InfoPatch(
            term_change=TermChangeIn(date(2026, 9, 1), "parole", "ref", date(2026, 8, 1))
        ),
        "movement.at": InfoPatch(
            movement=MovementIn("deposit", 100, at=NOW + timedelta(minutes=1))
        ),
    }
    for field, patch in cases.items():
        with pytest.raises(Refused) as refused:
            await update_info(store, inmate, patch, officer, NOW)
        assert (refused.value.code, refused.value.field) == ("dates_out_of_order", field)
    assert await card(store, inmate) == before
    _, info = before
    assert info.term.expected_release == date(2028, 8, 31)  # the change moved it
    assert [c.kind for c in info.term.changes] == ["commutation"]
    assert len(await _audit(store)) == 2


async def test_concurrent_spendings_never_overdraw(store: Database) -> None:
    _, officer, inmate = await _inmate(store)
    await update_info(store, inmate, InfoPatch(movement=MovementIn("deposit", 10000)), officer, NOW)

    async def spend() -> bool:
        try:
            await update_info(
                store, inmate, InfoPatch(movement=MovementIn("spending", 3000)), officer, NOW
            )
        except Refused as refused:
            assert refused.code == "insufficient_balance"
            return False
        return True

    results = await asyncio.gather(*(spend() for _ in range(6)))
    assert results.count(True) == 3
    _, info = await card(store, inmate)
    assert info.money.balance_fen == 1000
    assert [m.balance_after_fen for m in info.money.movements] == [10000, 7000, 4000, 1000]


# -- the API, over real HTTP and sockets on PostgreSQL and Redis ---------------------------------


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    async with site_for(pg_store, pg_url, redis_url, redis_prefix) as served:
        yield served


def infos(reader: Reader) -> list[InfoEvent]:
    return [f for f in reader.frames if isinstance(f, InfoEvent)]


async def test_an_update_reaches_only_that_inmates_connected_relatives(site: Site) -> None:
    w = site.world
    inmate_a, inmate_b = w.conv.inmate_id, w.conv_b.inmate_id
    # the stranger becomes a second verified relative of inmate A: both are told
    link = await links.request_link(site.store, w.stranger.id, inmate_a, "brother", "register")
    await links.decide_link(site.store, link, "verified", w.officer.id, None)
    async with (
        Reader(client(site.ws, w.token(w.relative))) as relative_a,
        Reader(client(site.ws, w.token(w.stranger))) as brother_a,
        Reader(client(site.ws, w.token(w.relative_b))) as relative_b,
    ):
        status, updated = await site.call(
            "PATCH",
            f"/inmates/{inmate_a}",
            w.officer,
            {"health": {"status": "hospitalised", "note": "appendix"}, "work": "kitchen"},
        )
        assert status == 200
        assert updated["info"]["health"]["status"] == "hospitalised"
        # fence for B's relative: an update of its own inmate, published after A's on the
        # same topics; had A's update been sent to it, it would have arrived first
        status, _ = await site.call("PATCH", f"/inmates/{inmate_b}", w.officer, {"work": "farm"})
        assert status == 200
        await relative_b.until(lambda: bool(infos(relative_b)))
        assert infos(relative_b) == [InfoEvent(inmate=inmate_b, field="work")]
        # fence for A's relatives: a later update of A, after B's
        status, _ = await site.call(
            "PATCH", f"/inmates/{inmate_a}", w.officer, {"activity": "reading"}
        )
        assert status == 200
        for reader in (relative_a, brother_a):
            await reader.until(lambda r=reader: len(infos(r)) == 3)
            assert infos(reader) == [
                InfoEvent(inmate=inmate_a, field="work"),
                InfoEvent(inmate=inmate_a, field="health"),
                InfoEvent(inmate=inmate_a, field="activity"),
            ]

    _, seen = await site.call("GET", f"/inmates/{inmate_a}", w.relative)
    assert (seen["info"]["work"]["assignment"], seen["info"]["health"]["note"]) == (
        "kitchen",
        "appendix",
    )
    assert seen["info"]["work"]["updated_by"] == w.officer.id
    status, hidden = await site.call("GET", f"/inmates/{inmate_a}", w.relative_b)
    assert (status, hidden["error"]["code"]) == (404, "not_found")
    entry, later = [
        e
        for e in reversed(await audit_trail.audit_entries(site.store, action="inmate.updated"))
        if e.object_id == inmate_a
    ]
    assert (later.before, later.after) == ({"activity": ""}, {"activity": "reading"})
    assert entry.actor_id == w.officer.id
    assert entry.before == {"work": "", "health": {"status": None, "note": ""}}
    assert entry.after == {
        "work": "kitchen",
        "health": {"status": "hospitalised", "note": "appendix"},
    }


async def test_refused_updates_answer_their_code_and_change_nothing(site: Site) -> None:
    w = site.world
    inmate = w.conv.inmate_id
    path = f"/inmates/{inmate}"
    status, _ = await site.call(
        "PATCH", path, w.officer, {"movement": {"kind": "deposit", "amount_fen": 10000}}
    )
    assert status == 200
    _, before = await site.call("GET", path, w.officer)
    refusals = [
        (
            {"movement": {"kind": "spending", "amount_fen": 10001}},
            400,
            "insufficient_balance",
            "movement.amount_fen",
        ),
        (
            {"term": {"start": "2026-01-10", "expected_release": "2025-12-31"}},
            400,
            "dates_out_of_order",
            "term.expected_release",
        ),
        (
            {"movement": {"kind": "deposit", "amount_fen": 1, "at": "2099-01-01T00:00:00Z"}},
            400,
            "dates_out_of_order",
            "movement.at",
        ),
        ({"movement": {"kind": "deposit", "amount_fen": 0}}, 400, "invalid_request", "movement"),
        ({"movement": {"kind": "spending", "amount_fen": -5}}, 400, "invalid_request", "movement"),
        ({"health": {"status": "excellent"}}, 400, "invalid_request", "health"),
        ({"balance_fen": 99999}, 400, "invalid_request", "balance_fen"),
        ({}, 400, "invalid_request", None),
    ]
    for payload, want_status, code, field in refusals:
        status, answer = await site.call("PATCH", path, w.officer, payload)
        assert (status, answer["error"]["code"], answer["error"].get("field")) == (
            want_status,
            code,
            field,
        ), payload
    _, after = await site.call("GET", path, w.officer)
    assert after == before
    assert after["info"]["money"]["balance_fen"] == 10000
    assert len(await audit_trail.audit_entries(site.store, action="inmate.updated")) == 1


async def test_a_fact_card_arrives_on_the_relatives_socket_as_a_system_message(
    site: Site,
) -> None:
    w = site.world
    conv = w.conv.id
    status, refused = await site.call(
        "POST", f"/conversations/{conv}/facts", w.officer, {"field": "balance"}
    )
    assert (status, refused["error"]["code"]) == (409, "no_record")  # nothing recorded yet
    await site.call(
        "PATCH",
        f"/inmates/{w.conv.inmate_id}",
        w.officer,
        {"movement": {"kind": "deposit", "amount_fen": 31250, "note": "from family"}},
    )
    async with Reader(client(site.ws, w.token(w.relative))) as relative:
        status, posted = await site.call(
            "POST", f"/conversations/{conv}/facts", w.officer, {"field": "balance"}
        )
        assert status == 201
        await relative.until(lambda: any(m.seq == posted["seq"] for m in relative.messages))
    [fact] = [m for m in relative.messages if m.seq == posted["seq"]]
    assert isinstance(fact, MessageEvent)
    assert (fact.kind, fact.sender.id, fact.sender.role) == ("system", w.officer.id, "officer")
    _, seen = await site.call("GET", f"/inmates/{w.conv.inmate_id}", w.relative)
    recorded = datetime.fromisoformat(seen["info"]["money"]["updated_at"])
    local = recorded.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    card = json.loads(fact.body)  # structured: each reader is shown its own language
    assert card == {
        "as_of": seen["info"]["money"]["updated_at"].replace("+00:00", "Z"),
        "fact": "balance",
        "source": "prison_records",
        "text": {
            "zh-CN": f"零用钱余额 312.50 元（截至 {local}，来源：狱政信息记录）",
            "en": f"Pocket-money balance 312.50 yuan as of {local} (source: prison records)",
        },
        "values": {"balance_fen": 31250},
    }
    # a fact card is not the relative's to post, nor another prison's officer's
    status, _ = await site.call(
        "POST", f"/conversations/{conv}/facts", w.relative, {"field": "balance"}
    )
    assert status == 403
    status, _ = await site.call(
        "POST", f"/conversations/{conv}/facts", w.other_officer, {"field": "balance"}
    )
    assert status == 404


async def test_staff_list_the_inmates_of_their_prisons(site: Site) -> None:
    w = site.world
    _, listed = await site.call("GET", "/inmates", w.officer)
    assert [i["number"] for i in listed["inmates"]] == ["GM-001", "GM-002"]
    _, page = await site.call("GET", f"/inmates?after={listed['inmates'][0]['id']}", w.supervisor)
    assert [i["number"] for i in page["inmates"]] == ["GM-002"]
    _, elsewhere = await site.call("GET", "/inmates", w.other_officer)
    assert elsewhere["inmates"] == []
    status, _ = await site.call("GET", f"/inmates?prison={w.gaoming.id}", w.other_officer)
    assert status == 403


def test_fact_cards_state_the_record_with_its_source_and_local_time() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    info, _, _, _ = apply(
        InmateInfo(),
        InfoPatch(
            health=HealthIn("hospitalised", "appendix"),
            term=TermIn("有期徒刑五年", date(2024, 3, 1), date(2029, 2, 28)),
            term_change=TermChangeIn(
                date(2026, 6, 1), "commutation", "粤06刑更123号", date(2028, 8, 31)
            ),
            next_visit_date=date(2026, 12, 1),
        ),
        7,
        NOW,
    )
    health = fact_card("health", info, [], zone, NOW)
    assert health is not None and health.text == {
        "zh-CN": "健康状况：住院治疗，appendix（截至 2026-11-25 14:05，来源：狱政信息记录）",
        "en": "Health: hospitalised (appendix) as of 2026-11-25 14:05 (source: prison records)",
    }
    assert health.values == {"status": "hospitalised", "note": "appendix"}
    term = fact_card("term", info, [], zone, NOW)
    assert term is not None
    assert "预计释放日期 2028-08-31" in term.text["zh-CN"]
    assert "减刑（粤06刑更123号）" in term.text["zh-CN"]
    assert "latest change: commutation on 2026-06-01" in term.text["en"]
    assert term.values["latest_change"]["kind"] == "commutation"
    visit = CardVisit(1, datetime(2026, 12, 8, 2, 0, tzinfo=UTC), 2)
    visits_card = fact_card("visits", info, [visit], zone, NOW)
    assert visits_card is not None
    assert "approved visits: 2026-12-08 10:00" in visits_card.text["en"]
    assert visits_card.values["approved"] == ["2026-12-08 10:00"]
    assert json.loads(visits_card.body())["fact"] == "visits"
    assert fact_card("work", info, [], zone, NOW) is None  # never recorded: no fact to state
