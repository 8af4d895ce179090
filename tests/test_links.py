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


async def test_a_number_the_prison_does_not_hold_is_refused_at_once_and_guessing_is_capped(
    site: Site,
) -> None:
    """Bug (issue 16): a request naming an inmate number that does not exist in that prison
    was accepted and waited for a person to reject it. It is refused at once, with a code the
    app can say; each miss is in the prison's audit trail; after five misses in a day every
    request is refused (429, a real number too), so numbers cannot be listed by guessing."""
    w = site.world

    async def ask(prison: str | int, number: str) -> tuple[int, dict[str, Any]]:
        body = {"prison": prison, "inmate_number": number, "relationship": "son"}
        status, reply = await site.call("POST", "/links", w.stranger, body)
        return status, reply

    status, real = await ask("GM", "GM-001")
    assert (status, real["state"]) == (201, "pending")
    status, _ = await ask(w.gaoming.id, "GM-002")
    assert status == 201
    status, missing = await ask("GM", "GM-999")
    assert status == 400
    assert (missing["error"]["code"], missing["error"]["field"]) == (
        "inmate_not_found",
        "inmate_number",
    )
    status, no_prison = await ask("NOPE", "GM-001")
    assert (status, no_prison["error"]["code"]) == (400, "unknown_prison")
    status, again = await ask("GM", "GM-001")  # a duplicate is still refused as one
    assert status == 409 and again["error"]["code"] == "conflict"
    _, pending = await site.call("GET", "/links?state=pending", w.officer)
    assert sorted(x["inmate_number"] for x in pending["links"]) == ["GM-001", "GM-002"]
    assert all(x["matched"] for x in pending["links"])  # nothing left for a person to reject

    _, trail = await site.call("GET", "/audit?action=link.missed", w.supervisor)
    [entry] = trail["entries"]
    assert (entry["actor"]["id"], entry["after"]) == (w.stranger.id, {"inmate_number": "GM-999"})
    for n in range(4):  # five misses in all
        status, _ = await ask("GM", f"GM-9{n}")
        assert status == 400
    await prisons.add_inmate(site.store, w.gaoming.id, "GM-100", "Li Wei")
    status, capped = await ask("GM", "GM-100")  # real, but the asker has guessed too much
    assert (status, capped["error"]["code"]) == (429, "too_many_misses")
    status, _ = await site.call(
        "POST",
        "/links",
        w.relative_b,
        {"prison": "GM", "inmate_number": "GM-100", "relationship": "aunt"},
    )
    assert status == 201  # another relative is not held back


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
        await officer.watch(w.conv.id)
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
        {"state": "revoked", "reason": "court order", "reason_code": "other"},
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
