"""Consent scopes and the family case over real HTTP and sockets (PostgreSQL and Redis).

Two relatives of one inmate with different scopes: each reads only its part of the card, is
told live only of the parts shared with it, and a fact card is refused (``consent_withheld``)
in the conversation of the one it is not shared with. The family case: two relatives in one
thread (each message names who wrote it), a third verified later reads nothing from before it
joined (history and socket replay), and one whose link is revoked loses the thread at once,
its open socket included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from channels.client import SendError
from channels.protocol import InfoEvent, LinkEvent, Subscribed
from domain.records import User
from server import sessions
from server.config import load
from storage import accounts, audit_trail, links, prisons
from storage.postgres import PostgresDatabase
from tests import record_checker
from tests.realtime import Reader, client
from tests.sites import Site, site_for
from tests.test_attachments import pdf


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    async with site_for(pg_store, pg_url, redis_url, redis_prefix) as served:
        yield served


def infos(reader: Reader) -> list[InfoEvent]:
    return [f for f in reader.frames if isinstance(f, InfoEvent)]


async def relative_of_a(site: Site, phone: str, name: str, *, verify: bool = True) -> User:
    """A new relative of inmate A with a session, verified unless told otherwise."""
    w = site.world
    user = await accounts.add_user(site.store, "relative", phone, name, "x")
    w.tokens[user.login] = await sessions.issue(site.store, user, days=1)
    link = await links.request_link(site.store, user.id, w.conv.inmate_id, "brother", "card")
    if verify:
        status, _ = await site.call("POST", f"/links/{link}/verify", w.officer, {})
        assert status == 200
    return user


async def scope(site: Site, relative: User, categories: list[str]) -> None:
    status, recorded = await site.call(
        "PUT",
        f"/inmates/{site.world.conv.inmate_id}/consent",
        site.world.officer,
        {
            "relative_id": relative.id,
            "categories": categories,
            "decided_on": "2026-11-20",
            "witness": "Guard Wu",
            "note": "told in the visiting room",
        },
    )
    assert status == 200, recorded
    assert recorded["shared"] == categories and recorded["recorded"] is True


async def test_consent_filters_the_card_the_pushes_and_the_fact_cards(site: Site) -> None:
    w = site.world
    inmate = w.conv.inmate_id
    brother = await relative_of_a(site, "13800000021", "Chen Gang")
    async with (
        Reader(client(site.ws, w.token(w.relative))) as mother_socket,
        Reader(client(site.ws, w.token(brother))) as brother_socket,
    ):
        await scope(site, w.relative, ["activity", "money"])  # the mother: money, not health
        await scope(site, brother, ["activity", "work", "health"])  # the brother: no money
        for reader in (mother_socket, brother_socket):  # each told of its own decision
            await reader.until(lambda r=reader: any(i.field == "consent" for i in infos(r)))
        status, _ = await site.call(
            "PATCH",
            f"/inmates/{inmate}",
            w.officer,
            {
                "health": {"status": "poor", "note": "flu"},
                "movement": {"kind": "deposit", "amount_fen": 31250},
            },
        )
        assert status == 200
        # fence: a later change shared with both; had a withheld part been sent, it came first
        status, _ = await site.call("PATCH", f"/inmates/{inmate}", w.officer, {"activity": "art"})
        assert status == 200
        for reader in (mother_socket, brother_socket):
            await reader.until(lambda r=reader: any(i.field == "activity" for i in infos(r)))
        assert infos(mother_socket) == [
            InfoEvent(inmate=inmate, field="consent"),
            InfoEvent(inmate=inmate, field="money"),
            InfoEvent(inmate=inmate, field="activity"),
        ]
        assert infos(brother_socket) == [
            InfoEvent(inmate=inmate, field="consent"),
            InfoEvent(inmate=inmate, field="health"),
            InfoEvent(inmate=inmate, field="activity"),
        ]

    _, mother = await site.call("GET", f"/inmates/{inmate}", w.relative)
    assert mother["shared"] == ["activity", "money"]
    assert mother["withheld"] == ["work", "health", "term", "visits"]
    assert mother["info"]["money"]["balance_fen"] == 31250
    assert mother["info"]["health"] == {
        "updated_at": None,
        "updated_by": None,
        "status": None,
        "note": "",
    }
    _, theirs = await site.call("GET", f"/inmates/{inmate}", brother)
    assert theirs["info"]["health"]["status"] == "poor"
    assert (
        theirs["info"]["money"]["balance_fen"] == 0 and theirs["info"]["money"]["movements"] == []
    )
    _, staff = await site.call("GET", f"/inmates/{inmate}", w.officer)
    assert staff["withheld"] == [] and staff["info"]["health"]["status"] == "poor"

    # fact cards follow the scope of whoever reads the conversation
    status, own = await site.call("POST", "/conversations", brother, {"inmate_id": inmate})
    assert status == 201
    for conv, field, want in (
        (w.conv.id, "balance", 201),
        (w.conv.id, "health", 403),
        (own["id"], "health", 201),
        (own["id"], "balance", 403),
    ):
        status, answer = await site.call(
            "POST", f"/conversations/{conv}/facts", w.officer, {"field": field}
        )
        assert status == want, (conv, field, answer)
        if status == 403:
            assert answer["error"]["code"] == "consent_withheld"
            assert "has not agreed to share" in answer["error"]["message"]

    # what each reads of the decisions: a relative its own, staff everyone's
    _, seen = await site.call("GET", f"/inmates/{inmate}/consent", w.relative)
    [item] = seen["items"]
    assert (item["relative_id"], item["shared"], item["note"]) == (
        w.relative.id,
        ["activity", "money"],
        None,
    )
    _, listed = await site.call("GET", f"/inmates/{inmate}/consent", w.supervisor)
    assert [(i["relative_id"], i["witness"]) for i in listed["items"]] == [
        (w.relative.id, "Guard Wu"),
        (brother.id, "Guard Wu"),
    ]
    entries = await audit_trail.audit_entries(site.store, action="consent.recorded")
    assert {e.after["relative_id"] for e in entries if e.after} == {w.relative.id, brother.id}
    assert {e.actor_id for e in entries} == {w.officer.id}


async def test_a_relative_with_no_recorded_decision_gets_the_default(site: Site) -> None:
    w = site.world
    _, card = await site.call("GET", f"/inmates/{w.conv.inmate_id}", w.relative)
    assert card["shared"] == ["activity", "work", "health", "term", "money", "visits"]
    _, seen = await site.call("GET", f"/inmates/{w.conv.inmate_id}/consent", w.relative)
    assert seen["items"][0]["recorded"] is False and seen["default"] == card["shared"]
    narrow = load({"KINLINE_CONSENT_DEFAULT": "activity, visits"})
    assert narrow.consent_default == ("activity", "visits")
    assert load({"KINLINE_CONSENT_DEFAULT": "none"}).consent_default == ()


async def test_bad_consent_input_gets_a_stable_code(site: Site) -> None:
    w = site.world
    path = f"/inmates/{w.conv.inmate_id}/consent"
    cases = [
        ({"relative_id": w.relative.id, "categories": ["diet"]}, 400, "invalid_request"),
        ({"relative_id": w.relative.id}, 400, "invalid_request"),
        (
            {"relative_id": w.relative.id, "categories": [], "decided_on": "2099-01-01"},
            400,
            "invalid_request",
        ),
        ({"relative_id": w.relative.id, "categories": [], "witness": " "}, 400, "invalid_request"),
        ({"relative_id": w.relative_b.id, "categories": []}, 409, "not_verified"),
    ]
    for payload, status, code in cases:
        got, answer = await site.call("PUT", path, w.officer, payload)
        assert (got, answer["error"]["code"]) == (status, code), payload
    got, answer = await site.call(
        "PUT", f"/inmates/{w.conv.inmate_id}/family-case", w.officer, {"enabled": False}
    )
    assert (got, answer["error"]["code"]) == (409, "no_family_case")
    assert await audit_trail.audit_entries(site.store, action="consent.recorded") == []


async def upload(site: Site, who: User, data: bytes) -> Any:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="paper.pdf", content_type="application/pdf")
    async with site.http.post(
        f"{site.api}/attachments",
        data=form,
        headers={"Authorization": f"Bearer {site.world.token(who)}"},
    ) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def file_status(site: Site, who: User, file_id: int) -> int:
    async with site.http.get(
        f"{site.api}/attachments/{file_id}",
        headers={"Authorization": f"Bearer {site.world.token(who)}"},
    ) as response:
        return response.status


async def test_the_family_shares_one_case(site: Site) -> None:
    w = site.world
    inmate = w.conv.inmate_id
    brother = await relative_of_a(site, "13800000021", "Chen Gang")
    paper = await upload(site, w.relative, pdf())
    status, private = await site.call(
        "POST",
        f"/conversations/{w.conv.id}/messages",
        w.relative,
        {"cid": "p1", "body": "mine", "attachments": [paper["id"]]},
    )
    assert status == 201, private
    status, case = await site.call(
        "PUT", f"/inmates/{inmate}/family-case", w.officer, {"enabled": True, "witness": "Wu"}
    )
    assert (status, case["conversation_id"], case["enabled"]) == (200, w.conv.id, True)
    status, opened = await site.call("POST", "/conversations", brother, {"inmate_id": inmate})
    assert (status, opened["id"]) == (200, w.conv.id)  # one thread for the family
    assert (opened["shared"], opened["joined_seq"]) == (True, private["seq"])
    _, listed = await site.call("GET", "/conversations", brother)
    assert [(c["id"], c.get("shared")) for c in listed["conversations"]] == [(w.conv.id, True)]
    _, own = await site.call("GET", "/conversations", w.relative)
    assert "shared" not in own["conversations"][0]  # the mother's own thread

    async with (
        Reader(client(site.ws, w.token(w.relative))) as mother_socket,
        Reader(client(site.ws, w.token(brother))) as brother_socket,
    ):
        for reader in (mother_socket, brother_socket):
            await reader.until(lambda r=reader: any(isinstance(f, Subscribed) for f in r.frames))
        asked = await brother_socket.client.send(w.conv.id, "how is he?")
        await mother_socket.until(lambda: any(m.seq == asked.seq for m in mother_socket.messages))
        [heard] = [m for m in mother_socket.messages if m.seq == asked.seq]
        assert (heard.sender.id, heard.sender.name) == (brother.id, "Chen Gang")
        # the brother joined when the case began: the mother's earlier message is not his
        assert private["seq"] not in [m.seq for m in brother_socket.messages]
        _, page = await site.call("GET", f"/conversations/{w.conv.id}/messages", brother)
        assert [m["body"] for m in page["messages"]] == ["how is he?"]
        # nor is the file sent with it (as for a file that does not exist)
        assert await file_status(site, brother, paper["id"]) == 404
        assert await file_status(site, w.officer, paper["id"]) == 200
        async with site.http.get(
            f"{site.api}/conversations/{w.conv.id}/transcript?format=csv",
            headers={"Authorization": f"Bearer {w.token(brother)}"},
        ) as response:
            csv = await response.text()
            assert response.status == 200, csv
        assert "how is he?" in csv and "mine" not in csv
        _, record = await site.call("GET", f"/conversations/{w.conv.id}/export", brother)
        assert [(m["seq"], "body" in m) for m in record["messages"]] == [
            (private["seq"], False),  # the link to check against, as its hash only
            (asked.seq, True),
        ]
        assert record_checker.holds(record)
        _, archive = await site.call("GET", "/me/export", brother)
        [thread] = [c for c in archive["conversations"] if c["id"] == w.conv.id]
        assert [m["body"] for m in thread["messages"]] == ["how is he?"]
        _, staff_page = await site.call("GET", f"/conversations/{w.conv.id}/messages", w.officer)
        assert [m["sender"]["name"] for m in staff_page["messages"]] == ["Chen Mei", "Chen Gang"]

        # a third relative, verified now, reads the case from now on
        third = await relative_of_a(site, "13800000022", "Chen Li")
        async with Reader(client(site.ws, w.token(third))) as third_socket:
            await third_socket.until(
                lambda: any(isinstance(f, Subscribed) for f in third_socket.frames)
            )
            later = await mother_socket.client.send(w.conv.id, "thank you")
            await third_socket.until(lambda: any(m.seq == later.seq for m in third_socket.messages))
            assert [m.seq for m in third_socket.messages] == [later.seq]
        _, page = await site.call("GET", f"/conversations/{w.conv.id}/messages?after=0", third)
        assert [m["body"] for m in page["messages"]] == ["thank you"]
        status, _ = await site.call("GET", f"/conversations/{w.conv.id}/messages", w.stranger)
        assert status == 404

        # the brother's link is revoked: the thread is gone for him at once, socket too
        [link] = await links.links(site.store, relative_id=brother.id, state="verified")
        spare = await prisons.add_inmate(site.store, w.gaoming.id, "GM-300", "Spare")
        fence = await links.request_link(site.store, brother.id, spare.id, "son", "")
        status, _ = await site.call(
            "POST", f"/links/{link.id}/revoke", w.supervisor, {"reason": "court order"}
        )
        assert status == 200
        with pytest.raises(SendError) as refused:
            await brother_socket.client.send(w.conv.id, "still here?")
        assert refused.value.code == "not_found"
        after = await mother_socket.client.send(w.conv.id, "after the revocation")
        await site.call("POST", f"/links/{fence}/reject", w.officer, {"reason": "fence"})
        await brother_socket.until(
            lambda: len([f for f in brother_socket.frames if isinstance(f, LinkEvent)]) >= 2
        )
        assert after.seq not in [m.seq for m in brother_socket.messages]
    status, _ = await site.call("GET", f"/conversations/{w.conv.id}/messages", brother)
    assert status == 404
    entries = await audit_trail.audit_entries(site.store, action="inmate.family_case_set")
    assert [(e.actor_id, (e.after or {})["enabled"]) for e in entries] == [(w.officer.id, True)]
