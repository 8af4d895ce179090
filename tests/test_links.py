"""Family links over real HTTP and real sockets: request, decide, revoke; PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.client import SendError
from channels.protocol import AnnouncementEvent, LinkEvent, PresenceEvent
from storage import audit_trail, links, prisons
from storage.postgres import PostgresDatabase
from tests.realtime import Reader, client
from tests.sites import Site, site_for


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    async with site_for(pg_store, pg_url, redis_url, redis_prefix) as served:
        yield served


def link_events(reader: Reader) -> list[LinkEvent]:
    return [f for f in reader.frames if isinstance(f, LinkEvent)]


async def test_a_verified_request_is_told_live_and_opens_the_inmate(site: Site) -> None:
    w = site.world
    inmate = await prisons.add_inmate(site.store, w.gaoming.id, "GM-100", "Li Wei")
    async with Reader(client(site.ws, w.token(w.stranger))) as stranger:
        status, asked = await site.call(
            "POST",
            "/links",
            w.stranger,
            {"prison": "GM", "inmate_number": "GM-100", "relationship": "wife", "evidence": "x"},
        )
        assert status == 201
        assert asked["state"] == "pending" and "inmate_id" not in asked  # not told yet
        _, pending = await site.call("GET", "/links?state=pending", w.officer)
        [seen] = [link for link in pending["links"] if link["id"] == asked["id"]]
        assert seen["matched"] is True and seen["relative"]["name"] == "Stranger"
        _, elsewhere = await site.call("GET", "/links?state=pending", w.other_officer)
        assert elsewhere["links"] == []  # Sanshui's officers never see Gaoming's requests

        status, decided = await site.call(
            "POST", f"/links/{asked['id']}/verify", w.officer, {"reason": "register checked"}
        )
        assert status == 200 and decided["state"] == "verified"
        await stranger.until(lambda: bool(link_events(stranger)))
        assert link_events(stranger) == [
            LinkEvent(id=asked["id"], state="verified", reason="register checked")
        ]
    _, mine = await site.call("GET", "/links", w.stranger)
    assert [(x["state"], x["inmate_id"], x["reason"]) for x in mine["links"]] == [
        ("verified", inmate.id, "register checked")
    ]
    _, me = await site.call("GET", "/me", w.stranger)
    assert me["verified_inmates"] == [inmate.id]
    [entry] = await audit_trail.audit_entries(site.store, action="link.verified")
    assert (entry.actor_id, entry.object_id, entry.prison_id) == (
        w.officer.id,
        asked["id"],
        w.gaoming.id,
    )
    assert entry.before == {"state": "pending"}
    assert entry.after == {"state": "verified", "reason": "register checked"}
    status, again = await site.call(
        "POST", f"/links/{asked['id']}/verify", w.officer, {"reason": "twice"}
    )
    assert (status, again["error"]["code"]) == (409, "conflict")


async def test_an_unknown_inmate_or_prison_gets_the_same_answer_as_a_real_one(
    site: Site,
) -> None:
    w = site.world

    async def ask(prison: str | int, number: str) -> tuple[int, dict[str, Any]]:
        body = {"prison": prison, "inmate_number": number, "relationship": "son"}
        status, reply = await site.call("POST", "/links", w.stranger, body)
        return status, {k: v for k, v in reply.items() if k not in ("id", "created_at")}

    real = await ask("GM", "GM-001")
    by_id = await ask(w.gaoming.id, "GM-002")
    no_inmate = await ask("GM", "GM-999")
    no_prison = await ask("NOPE", "GM-001")
    for status, reply in (real, by_id, no_inmate, no_prison):
        assert status == 201
        assert set(reply) == set(real[1])  # same fields: nothing tells them apart
        assert (reply["state"], reply["prison_id"]) == ("pending", None)
    # duplicates are refused alike, real or not
    for prison, number in (("GM", "GM-001"), ("GM", "GM-999"), ("NOPE", "GM-001")):
        status, _ = await ask(prison, number)
        assert status == 409

    _, pending = await site.call("GET", "/links?state=pending", w.officer)
    matched = {x["inmate_number"]: x["matched"] for x in pending["links"]}
    assert matched == {"GM-001": True, "GM-002": True, "GM-999": False}
    [unmatched] = [x for x in pending["links"] if not x["matched"]]
    status, refused = await site.call(
        "POST", f"/links/{unmatched['id']}/verify", w.officer, {"reason": ""}
    )
    assert (status, refused["error"]["code"]) == (409, "conflict")
    status, _ = await site.call(
        "POST", f"/links/{unmatched['id']}/reject", w.officer, {"reason": "no such inmate here"}
    )
    assert status == 200
    _, mine = await site.call("GET", "/links", w.stranger)
    [rejected] = [x for x in mine["links"] if x["id"] == unmatched["id"]]
    assert (rejected["state"], rejected["reason"]) == ("rejected", "no such inmate here")
    # a request naming no prison reaches no officer, only the bureau
    _, everything = await site.call("GET", "/links?state=pending", site.staff.admin)
    assert "NOPE" in {x["prison"] for x in everything["links"]}


async def test_a_decision_needs_a_reason_and_a_rejection_is_told_live(site: Site) -> None:
    w = site.world
    async with Reader(client(site.ws, w.token(w.stranger))) as stranger:
        _, asked = await site.call(
            "POST",
            "/links",
            w.stranger,
            {"prison": "GM", "inmate_number": "GM-001", "relationship": "son"},
        )
        status, bad = await site.call("POST", f"/links/{asked['id']}/reject", w.officer, {})
        assert (status, bad["error"]["code"], bad["error"]["field"]) == (
            400,
            "invalid_request",
            "reason",
        )
        await site.call(
            "POST", f"/links/{asked['id']}/reject", w.officer, {"reason": "photo unreadable"}
        )
        await stranger.until(lambda: bool(link_events(stranger)))
        assert link_events(stranger)[0].reason == "photo unreadable"
    assert await links.verified_inmates(site.store, w.stranger.id) == frozenset()


async def test_revocation_ends_access_at_once_on_an_open_socket(site: Site) -> None:
    """After revocation, a send into that conversation gets not_found and messages stop."""
    w = site.world
    [verified] = await links.links(site.store, relative_id=w.relative.id, state="verified")
    spare = await prisons.add_inmate(site.store, w.gaoming.id, "GM-200", "Spare")
    fence = await links.request_link(site.store, w.relative.id, spare.id, "son", "")
    async with (
        Reader(client(site.ws, w.token(w.relative))) as relative,
        Reader(client(site.ws, w.token(w.officer))) as officer,
    ):
        await officer.client.watch(w.conv.id)
        await relative.client.send(w.conv.id, "before")
        before = await officer.client.send(w.conv.id, "answer before")
        await relative.until(lambda: any(m.seq == before.seq for m in relative.messages))

        status, revoked = await site.call(
            "POST", f"/links/{verified.id}/revoke", w.supervisor, {"reason": "court order"}
        )
        assert (status, revoked["state"]) == (200, "revoked")
        # in force on this process before the revoke was answered: no waiting needed
        with pytest.raises(SendError) as refused:
            await relative.client.send(w.conv.id, "after")
        assert refused.value.code == "not_found"
        after = await officer.client.send(w.conv.id, "answer after")
        # fence: an event published after that message on the relative's own topic
        await site.call("POST", f"/links/{fence}/reject", w.officer, {"reason": "fence"})
        await relative.until(lambda: len(link_events(relative)) == 2)
        assert link_events(relative)[0].state == "revoked"
        assert after.seq not in [m.seq for m in relative.messages]
        assert before.seq in [m.seq for m in relative.messages]
    assert await links.verified_inmates(site.store, w.relative.id) == frozenset()
    [entry] = await audit_trail.audit_entries(site.store, action="link.revoked")
    assert (entry.actor_id, entry.before, entry.after) == (
        w.supervisor.id,
        {"state": "verified"},
        {"state": "revoked", "reason": "court order"},
    )


async def test_a_relative_verified_while_connected_follows_the_prison_at_once(
    site: Site,
) -> None:
    """Regression: the prison topics were joined only when the socket opened, so a relative
    verified while connected got no on-duty count and no announcement until it reconnected."""
    w = site.world
    await prisons.add_inmate(site.store, w.gaoming.id, "GM-100", "Li Wei")
    async with Reader(client(site.ws, w.token(w.stranger))) as stranger:
        status, asked = await site.call(
            "POST",
            "/links",
            w.stranger,
            {"prison": "GM", "inmate_number": "GM-100", "relationship": "wife"},
        )
        assert status == 201
        await site.call("POST", f"/links/{asked['id']}/verify", w.officer, {"reason": "ok"})
        await stranger.until(
            lambda: any(
                isinstance(f, PresenceEvent) and f.prison == w.gaoming.id for f in stranger.frames
            )
        )  # the prison's on-duty state, as on arrival
        for prison in (w.gaoming.id, None):  # the prison's, then a bureau-wide one
            status, posted = await site.call(
                "POST",
                "/announcements",
                site.staff.admin,
                {"title": "Open day", "body": "Welcome.", "prison_id": prison},
            )
            assert status == 201
            await stranger.until(
                lambda posted=posted: any(
                    isinstance(f, AnnouncementEvent) and f.id == posted["id"]
                    for f in stranger.frames
                )
            )
