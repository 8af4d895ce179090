"""The staff life cycle and passwords, end to end on PostgreSQL and Redis with two server
processes: disabling really switches an account off everywhere, a password change or reset
ends the old sessions, and every such change is audited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from domain.records import NewMessage
from server import passwords
from server.config import Settings
from storage import accounts, audit_trail, desk, links
from storage.postgres import PostgresDatabase
from storage.sql import utcnow
from tests.servers import Served, free_port, inprocess
from tests.sites import Site, site_for

PASSWORD = "a long passphrase here"
NEW_PASSWORD = "another long passphrase"


@pytest.fixture
async def two(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[Site, Served]]:
    """The seeded site and a second server process on the same database and Redis."""
    async with site_for(pg_store, pg_url, redis_url, redis_prefix) as site:
        officer = site.world.officer
        await accounts.set_password_hash(site.store, officer.id, passwords.hash_password(PASSWORD))
        settings = Settings(
            database_url=pg_url,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            port=free_port(),
            secret="tests",
        )
        async with inprocess(settings, pg_store) as other:
            yield site, other


async def _socket(ws_url: str, token: str) -> ClientConnection:
    ws = await connect(
        ws_url,
        subprotocols=["kinline.v1"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token}"},
    )
    await ws.recv()  # welcome
    return ws


async def _closed(ws: ClientConnection) -> int | None:
    async with asyncio.timeout(5):
        await ws.wait_closed()
    return ws.close_code


async def _login(site: Site, login: str, password: str) -> tuple[int, Any]:
    return await site.call("POST", "/auth/login", json={"login": login, "password": password})


async def test_a_disabled_officer_is_off_on_every_process_and_cannot_log_in(
    two: tuple[Site, Served],
) -> None:
    site, other = two
    officer, admin, w = site.world.officer, site.staff.admin, site.world
    question = NewMessage(w.conv.id, w.relative.id, "relative", "q", "is he well?", "text")
    await site.store.append_messages([question])
    await desk.claim(site.store, w.conv.id, officer.id, utcnow())  # it holds a question
    here = await _socket(site.ws, site.world.token(officer))
    there = await _socket(other.ws_url, site.world.token(officer))
    status, body = await site.call("POST", f"/admin/users/{officer.id}/disable", admin)
    assert status == 200 and body["disabled"] is True and body["sessions_ended"] == 1
    assert (await _closed(here), await _closed(there)) == (4401, 4401)
    back = await desk.thread(site.store, w.conv.id)
    assert (back.state, back.assigned_officer_id) == ("waiting", None)  # in the queue again
    assert back.handover_note and "disabled" in back.handover_note
    assert (await site.call("GET", "/me", officer))[0] == 401  # its old session is over
    status, body = await _login(site, officer.login, PASSWORD)
    assert (status, body["error"]["code"]) == (403, "account_disabled")
    status, body = await _login(site, officer.login, "not the password at all")
    assert (status, body["error"]["code"]) == (401, "invalid_credentials")  # nothing learnt

    status, body = await site.call("POST", f"/admin/users/{officer.id}/enable", admin)
    assert status == 200 and body["disabled"] is False
    assert (await site.call("GET", "/me", officer))[0] == 401  # no old session comes back
    assert (await _login(site, officer.login, PASSWORD))[0] == 200
    trail = await audit_trail.audit_entries(site.store, actor_id=admin.id)
    assert [(e.action, e.object_id) for e in trail][:3] == [
        ("user.enable", officer.id),
        ("user.disable", officer.id),
        ("conversation.released", w.conv.id),  # in the disabling transaction
    ]


async def test_only_the_admin_disables_and_not_itself(two: tuple[Site, Served]) -> None:
    site, _ = two
    w, admin = site.world, site.staff.admin
    for who in (w.officer, w.supervisor, w.relative):
        status, body = await site.call("POST", f"/admin/users/{w.other_officer.id}/disable", who)
        assert (status, body["error"]["code"]) == (403, "forbidden")
    status, _ = await site.call("POST", f"/admin/users/{admin.id}/disable", admin)
    assert status == 403
    assert (await site.call("POST", "/admin/users/999999/disable", admin))[0] == 404


async def test_a_password_change_keeps_this_session_and_ends_the_others(
    two: tuple[Site, Served],
) -> None:
    site, other = two
    officer = site.world.officer
    status, first = await _login(site, officer.login, PASSWORD)
    assert status == 200
    elsewhere = await _socket(other.ws_url, site.world.token(officer))  # another session
    here = await _socket(site.ws, first["token"])
    headers = {"Authorization": f"Bearer {first['token']}"}

    async def change(old: str, new: str) -> tuple[int, Any]:
        async with site.http.post(
            site.api + "/auth/password",
            json={"old_password": old, "new_password": new},
            headers=headers,
        ) as response:
            return response.status, await response.json()

    status, body = await change("wrong old password", NEW_PASSWORD)
    assert (status, body["error"]["field"]) == (400, "old_password")
    status, body = await change(PASSWORD, "qwerty1234")
    assert (status, body["error"]["field"]) == (400, "new_password")
    status, body = await change(PASSWORD, NEW_PASSWORD)
    assert (status, body) == (200, {"sessions_ended": 1})
    assert await _closed(elsewhere) == 4401
    assert (await site.call("GET", "/me", officer))[0] == 401  # the other session ended
    async with site.http.get(site.api + "/me", headers=headers) as response:
        assert response.status == 200  # this one goes on, and so does its socket
    await here.ping()
    assert (await _login(site, officer.login, PASSWORD))[0] == 401
    assert (await _login(site, officer.login, NEW_PASSWORD))[0] == 200
    [entry] = await audit_trail.audit_entries(site.store, action="user.password_changed")
    assert (entry.actor_id, entry.object_id) == (officer.id, officer.id)
    await here.close()


async def test_an_officer_resets_the_password_of_a_relative_of_its_prison_only(
    two: tuple[Site, Served],
) -> None:
    """The staff-assisted reset at the visit desk: the relative has no phone at hand."""
    site, _ = two
    w = site.world
    assert await links.verified_inmates(site.store, w.relative.id)  # linked with Gaoming
    path = f"/admin/users/{w.relative.id}/password"
    status, _ = await site.call("POST", path, w.other_officer, json={"new_password": NEW_PASSWORD})
    assert status == 403  # an officer of another prison
    status, _ = await site.call("POST", path, w.supervisor, json={"new_password": NEW_PASSWORD})
    assert status == 403
    status, body = await site.call("POST", path, w.officer, json={"new_password": NEW_PASSWORD})
    assert status == 200 and body["sessions_ended"] == 1
    assert (await site.call("GET", "/me", w.relative))[0] == 401
    assert (await _login(site, w.relative.login, NEW_PASSWORD))[0] == 200
    stranger = f"/admin/users/{w.stranger.id}/password"
    status, _ = await site.call("POST", stranger, w.officer, json={"new_password": NEW_PASSWORD})
    assert status == 403  # no link with the officer's prison
    [entry] = await audit_trail.audit_entries(site.store, action="user.password_reset")
    assert (entry.actor_id, entry.object_id) == (w.officer.id, w.relative.id)


async def test_the_admin_moves_an_officer_to_another_prison(two: tuple[Site, Served]) -> None:
    site, _ = two
    w, admin = site.world, site.staff.admin
    path = f"/admin/users/{w.officer.id}"
    status, body = await site.call(
        "PATCH", path, admin, json={"prison_ids": [w.gaoming.id, w.sanshui.id]}
    )
    assert (status, body["error"]["field"]) == (400, "prison_ids")  # one prison for an officer
    status, body = await site.call("PATCH", path, admin, json={"prison_ids": [w.sanshui.id]})
    assert status == 200 and body["user"]["prison_ids"] == [w.sanshui.id]
    assert (await accounts.user(site.store, w.officer.id)).prison_ids == (w.sanshui.id,)
    [entry] = await audit_trail.audit_entries(site.store, action="user.edit")
    assert entry.before == {"name": w.officer.name, "prison_ids": [w.gaoming.id]}
