"""Accounts and sessions over real HTTP and sockets: register, log in, throttling, log out,
revocation, admin-created staff. Argon2 runs for real here (a handful of hashes)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from argon2 import PasswordHasher
from websockets.asyncio.client import ClientConnection, connect

from server import passwords, sessions
from server.api.auth import THROTTLE
from server.config import Settings
from server.keys import CODES
from server.throttle import LoginThrottle
from storage import accounts, audit_trail, prisons
from storage.postgres import PostgresDatabase
from storage.sessions import create_session
from tests.fake_outside import FakeSms, serve
from tests.servers import free_port, inprocess
from tests.world import Staff, World, seed, seed_staff

SECRET = "accounts-secret"
PASSWORD = "a long passphrase here"
RELATIVE = {"phone": "13900000001", "name": "Zhou Min", "password": PASSWORD,
            "id_number": "11010519491231002x"}  # fmt: skip


@dataclass
class Site:
    base: str
    api: str
    ws: str
    http: aiohttp.ClientSession
    store: PostgresDatabase
    world: World
    staff: Staff
    app: Any
    pg_url: str
    sms: FakeSms

    async def call(
        self, method: str, path: str, json: Any = None, token: str | None = None
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(
            method, self.api + path, json=json, headers=headers
        ) as response:
            body = await response.json() if response.status != 204 else None
            return response.status, body, response


@pytest.fixture
async def site(pg_store: PostgresDatabase, pg_url: str) -> AsyncIterator[Site]:
    world = await seed(pg_store)
    staff = await seed_staff(pg_store, world)
    sms = FakeSms()
    async with serve(sms) as sms_url:
        settings = Settings(database_url=pg_url, port=free_port(), secret=SECRET, sms_url=sms_url)
        async with (
            inprocess(settings, pg_store) as served,
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        ):
            yield Site(
                served.http_url,
                served.http_url + "/api/v1",
                served.ws_url,
                http,
                pg_store,
                world,
                staff,
                served.app,
                pg_url,
                sms,
            )


async def texted(site: Site, phone: str, path: str = "/auth/register/code") -> str:
    """Ask for a code for ``phone`` and read the text the phone got."""
    before = len(site.sms.calls)
    status, reply, _ = await site.call("POST", path, {"phone": phone})
    assert (status, reply) == (202, {"sent": "if it can be used"})
    await site.sms.until(lambda: len(site.sms.calls) > before)
    [call] = site.sms.calls[before:]
    assert call.body["phone"] == phone
    text: str = call.body["text"]
    return text


async def code(site: Site, phone: str, path: str = "/auth/register/code") -> str:
    found = re.search(r"\b(\d{6})\b", await texted(site, phone, path))
    assert found, "no code in the text"
    return found.group(1)


async def register(site: Site, form: dict[str, Any]) -> tuple[int, Any]:
    status, reply, _ = await site.call(
        "POST", "/auth/register", {**form, "code": await code(site, form["phone"])}
    )
    return status, reply


async def socket(site: Site, token: str) -> ClientConnection:
    ws = await connect(
        site.ws,
        subprotocols=["kinline.v1"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token}"},
    )
    await ws.recv()  # welcome
    return ws


async def test_a_relative_registers_logs_in_with_its_phone_and_gets_a_session(
    site: Site,
) -> None:
    status, registered = await register(site, RELATIVE)
    assert status == 201 and registered["user"]["role"] == "relative"
    status, logged, response = await site.call(
        "POST", "/auth/login", {"login": RELATIVE["phone"], "password": PASSWORD}
    )
    assert status == 200 and logged["user"]["id"] == registered["user"]["id"]
    cookie = response.cookies[sessions.COOKIE]
    assert cookie.value == logged["token"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert not cookie["secure"]  # plain http here; see test_web_security for TLS
    status, me, _ = await site.call("GET", "/me", token=logged["token"])
    assert (status, me["id_number_last4"], me["verified_inmates"]) == (200, "002X", [])
    async with site.http.get(
        site.api + "/me", headers={"Cookie": f"{sessions.COOKIE}={logged['token']}"}
    ) as by_cookie:
        assert (await by_cookie.json())["user"]["login"] == RELATIVE["phone"]

    conn = await asyncpg.connect(site.pg_url)
    try:
        row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", registered["user"]["id"])
        tokens = await conn.fetch("SELECT token_hash FROM sessions")
    finally:
        await conn.close()
    expected = hmac.new(SECRET.encode(), b"11010519491231002X", hashlib.sha256).digest()
    assert bytes(row["id_number_hash"]) == expected
    assert "4401011990" not in repr(dict(row))  # never in clear
    assert row["password_hash"].startswith("$argon2id$")
    assert sessions.token_hash(logged["token"]) in {bytes(t["token_hash"]) for t in tokens}
    assert logged["token"].encode() not in {bytes(t["token_hash"]) for t in tokens}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),
        ({"phone": "call me"}, "phone"),
        ({"name": ""}, "name"),
        ({"id_number": "12"}, "id_number"),
        ({"id_number": "110105194912310021"}, "id_number"),  # its check character is wrong
        ({"id_number": None}, "id_number"),
        ({"admin": True}, "admin"),
    ],
)
async def test_registration_refuses_bad_input_naming_the_field(
    site: Site, change: dict[str, Any], field: str
) -> None:
    body = {**RELATIVE, "code": "123456", **change}
    body = {k: v for k, v in body.items() if v is not None}
    status, reply, _ = await site.call("POST", "/auth/register", body)
    assert (status, reply["error"]["code"], reply["error"]["field"]) == (
        400,
        "invalid_request",
        field,
    )


async def test_an_id_number_in_use_locks_nobody_out(site: Site) -> None:
    """Regression: anyone who knew a relative's id number could register it first and lock
    the real relative out for good (409). Now the second account is made too, and both are
    marked for the officer deciding their link requests, who checks documents."""
    assert (await register(site, RELATIVE))[0] == 201
    same_number = {**RELATIVE, "phone": "13900000002", "id_number": "110105 19491231 002X"}
    assert (await register(site, same_number))[0] == 201
    claimants = [u for u in await accounts.users(site.store) if u.login.startswith("139")]
    assert len(claimants) == 2
    async with site.store.read() as sql:
        flagged = await sql.fetch("SELECT id FROM users WHERE id_conflict ORDER BY id")
    assert [r["id"] for r in flagged] == sorted(u.id for u in claimants)


async def test_a_wrong_password_and_an_unknown_login_look_the_same(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed = await asyncio.to_thread(passwords.hash_password, PASSWORD)
    await accounts.add_user(
        site.store, "officer", "officer.qin", "Qin", hashed, [site.world.gaoming.id]
    )
    verified: list[str] = []
    real_verify = passwords.verify

    def spy(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify", spy)
    wrong = await site.call("POST", "/auth/login", {"login": "officer.qin", "password": "nope"})
    unknown = await site.call("POST", "/auth/login", {"login": "nobody", "password": "nope"})
    assert wrong[0] == unknown[0] == 401
    assert (
        wrong[1]
        == unknown[1]
        == {"error": {"code": "invalid_credentials", "message": "wrong login or password"}}
    )
    assert verified == [hashed, passwords.DUMMY_HASH]  # the unknown login costs a verify too
    assert "Set-Cookie" not in wrong[2].headers


async def test_logins_are_throttled_per_account_and_per_address(site: Site) -> None:
    hashed = await asyncio.to_thread(passwords.hash_password, PASSWORD)
    await accounts.add_user(
        site.store, "officer", "officer.qin", "Qin", hashed, [site.world.gaoming.id]
    )
    for _ in range(5):
        status, _, _ = await site.call(
            "POST", "/auth/login", {"login": "officer.qin", "password": "guess"}
        )
        assert status == 401
    status, reply, response = await site.call(
        "POST", "/auth/login", {"login": "OFFICER.QIN ", "password": PASSWORD}
    )
    assert (status, reply["error"]["code"]) == (429, "rate_limited")  # even the right one
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60

    site.app[THROTTLE].per_address.limit = 7  # five failures so far from this address
    for login in ("ghost1", "ghost2"):
        status, _, _ = await site.call("POST", "/auth/login", {"login": login, "password": "x"})
        assert status == 401
    status, reply, response = await site.call(
        "POST", "/auth/login", {"login": "ghost3", "password": "x"}
    )
    assert status == 429 and "Retry-After" in response.headers


async def test_a_login_rehashes_a_password_hashed_with_old_parameters(site: Site) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    assert passwords.needs_rehash(old)
    user = await accounts.add_user(site.store, "admin", "admin.old", "Old", old)
    status, _, _ = await site.call(
        "POST", "/auth/login", {"login": "admin.old", "password": PASSWORD}
    )
    assert status == 200
    _, stored = await accounts.credentials(site.store, "admin.old")
    assert stored != old and not passwords.needs_rehash(stored)
    assert passwords.verify(stored, PASSWORD)
    assert (await accounts.user(site.store, user.id)).login == "admin.old"


async def test_logout_ends_the_session_and_closes_only_its_sockets(site: Site) -> None:
    w = site.world
    other_token = await sessions.issue(site.store, w.relative, days=1)
    ended = await socket(site, w.token(w.relative))
    kept = await socket(site, other_token)
    status, _, response = await site.call("POST", "/auth/logout", token=w.token(w.relative))
    assert status == 204
    assert "kinline_session=" in response.headers["Set-Cookie"]  # cookie cleared
    async with asyncio.timeout(5):
        await ended.wait_closed()
    assert ended.close_code == 4401
    status, reply, _ = await site.call("GET", "/me", token=w.token(w.relative))
    assert (status, reply["error"]["code"]) == (401, "not_authenticated")
    await kept.send('{"type": "typing", "conv": 999999}')
    async with asyncio.timeout(5):  # the other session's socket still answers
        while (frame := json.loads(await kept.recv()))["type"] != "error":
            pass
    assert frame["code"] == "not_found"
    assert (await site.call("GET", "/me", token=other_token))[0] == 200
    await kept.close()


async def test_an_expired_session_is_not_authenticated(site: Site) -> None:
    token = "expired-token"
    past = datetime.now(UTC) - timedelta(seconds=1)
    await create_session(site.store, site.world.relative.id, sessions.token_hash(token), past)
    status, reply, _ = await site.call("GET", "/me", token=token)
    assert (status, reply["error"]["code"]) == (401, "not_authenticated")


async def test_admin_revokes_every_session_of_a_user_and_its_sockets_close(site: Site) -> None:
    w = site.world
    ws = await socket(site, w.token(w.officer))
    status, reply, _ = await site.call(
        "POST",
        f"/admin/users/{w.officer.id}/revoke-sessions",
        token=w.token(site.staff.admin),
    )
    assert (status, reply) == (200, {"revoked": 1})
    async with asyncio.timeout(5):
        await ws.wait_closed()
    assert ws.close_code == 4401
    assert (await site.call("GET", "/me", token=w.token(w.officer)))[0] == 401
    [entry] = await audit_trail.audit_entries(site.store, action="user.revoke_sessions")
    assert (entry.actor_id, entry.object_id, entry.before) == (
        site.staff.admin.id,
        w.officer.id,
        {"live_sessions": 1},
    )


async def test_admin_creates_prisons_and_staff_who_can_log_in_and_it_is_audited(
    site: Site,
) -> None:
    admin = site.world.token(site.staff.admin)
    status, prison, _ = await site.call(
        "POST", "/admin/prisons", {"code": "HZ", "name": "Huizhou Prison"}, admin
    )
    assert status == 201
    duplicate = await site.call("POST", "/admin/prisons", {"code": "HZ", "name": "x"}, admin)
    assert duplicate[0] == 409
    new_officer = {
        "role": "officer",
        "login": "officer.hz",
        "name": "Officer Hu",
        "password": PASSWORD,
        "prison_ids": [prison["id"]],
    }
    status, user, _ = await site.call("POST", "/admin/users", new_officer, admin)
    assert status == 201 and user["prison_ids"] == [prison["id"]]
    status, reply, _ = await site.call(
        "POST", "/admin/users", {**new_officer, "login": "officer.two", "prison_ids": []}, admin
    )
    assert (status, reply["error"]["field"]) == (400, "prison_ids")
    status, logged, _ = await site.call(
        "POST", "/auth/login", {"login": "officer.hz", "password": PASSWORD}
    )
    assert status == 200 and logged["user"]["role"] == "officer"
    [created_prison] = await audit_trail.audit_entries(site.store, action="prison.create")
    [created_user] = await audit_trail.audit_entries(site.store, action="user.create")
    assert (created_prison.actor_id, created_prison.object_id, created_prison.after) == (
        site.staff.admin.id,
        prison["id"],
        {"code": "HZ", "name": "Huizhou Prison", "city": ""},
    )
    assert created_user.before is None
    assert created_user.after == {
        "role": "officer",
        "login": "officer.hz",
        "name": "Officer Hu",
        "prison_ids": [prison["id"]],
    }
    _, users, _ = await site.call("GET", "/admin/users?role=officer", token=admin)
    assert "officer.hz" in {u["login"] for u in users["users"]}


def test_a_throttled_client_may_try_again_once_its_failures_leave_the_window() -> None:
    now = [0.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(5):
        throttle.failed("Officer.Qin", "10.0.0.1")
    assert throttle.retry_after("officer.qin", "10.0.0.1") == 15 * 60
    now[0] = 14 * 60.0
    assert throttle.retry_after("officer.qin", "10.0.0.1") == 60
    now[0] = 15 * 60.0
    assert throttle.retry_after("officer.qin", "10.0.0.1") == 0
    assert throttle.retry_after("someone.else", "10.0.0.1") == 0  # address limit is higher


def test_a_client_that_has_not_failed_is_never_refused_for_another() -> None:
    """Regression: ten wrong passwords from anyone locked the officer out for 15 minutes
    even with the right password, from its own desk."""
    throttle = LoginThrottle(clock=lambda: 0.0)
    for _ in range(50):
        throttle.failed("officer.chen", "203.0.113.5")  # someone guessing
    assert throttle.retry_after("officer.chen", "203.0.113.5") > 0
    assert throttle.retry_after("officer.chen", "10.1.2.3") == 0  # the officer's desk
    throttle.succeeded("officer.chen", "10.1.2.3")
    assert throttle.retry_after("officer.chen", "203.0.113.5") > 0  # still refused


@pytest.mark.parametrize("action", ["prison.create", "user.create", "user.revoke_sessions"])
async def test_an_admin_change_whose_audit_entry_fails_is_not_made(site: Site, action: str) -> None:
    """Every audited change and its entry commit together or not at all: with the audit
    insert failing (the disk is full, as PostgreSQL reports it), the admin's change is not
    made and the answer is 503, never a change without its entry."""
    admin = site.world.token(site.staff.admin)
    officer = site.world.officer
    async with site.store.write() as sql:
        await sql.execute(
            "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.action = '{action}' THEN"
            " RAISE EXCEPTION 'could not extend file' USING ERRCODE = '53100'; END IF;"
            " RETURN NEW; END $$"
        )
        await sql.execute(
            "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_entries"
            " FOR EACH ROW EXECUTE FUNCTION fail_audit()"
        )
    try:
        if action == "prison.create":
            status, _, _ = await site.call(
                "POST", "/admin/prisons", {"code": "HZ", "name": "Huizhou Prison"}, admin
            )
            assert [p for p in await prisons.prisons(site.store) if p.code == "HZ"] == []
        elif action == "user.create":
            form = {
                "role": "officer",
                "login": "officer.hz",
                "name": "Officer Hu",
                "password": PASSWORD,
                "prison_ids": [site.world.gaoming.id],
            }
            status, _, _ = await site.call("POST", "/admin/users", form, admin)
            assert [u for u in await accounts.users(site.store) if u.login == "officer.hz"] == []
        else:
            status, _, _ = await site.call(
                "POST", f"/admin/users/{officer.id}/revoke-sessions", token=admin
            )
            assert (await site.call("GET", "/me", token=site.world.token(officer)))[0] == 200
        assert status == 503
        assert await audit_trail.audit_entries(site.store, action=action) == []
    finally:
        async with site.store.write() as sql:
            await sql.execute("DROP TRIGGER fail_audit ON audit_entries")
            await sql.execute("DROP FUNCTION fail_audit()")


async def test_the_code_answers_say_nothing_of_who_is_registered(site: Site) -> None:
    """Regression: registration said whether a phone was registered (whether someone is a
    prisoner's relative) and was not throttled. Now the answers are the same for a known
    and an unknown phone; only the phone itself learns, by the text it gets."""
    known = site.world.relative.login  # a relative's login is its phone
    told = await texted(site, known)
    assert "already has an account" in told and not re.search(r"\d{6}", told)
    guessed = {**RELATIVE, "phone": known, "code": "000000"}
    status, reply, _ = await site.call("POST", "/auth/register", guessed)
    unknown = {**RELATIVE, "phone": "13900000077", "code": "000000"}
    status2, reply2, _ = await site.call("POST", "/auth/register", unknown)
    assert (status, reply) == (status2, reply2)
    assert (status, reply["error"]["code"]) == (400, "invalid_code")
    before = len(site.sms.calls)
    status, reply, _ = await site.call("POST", "/auth/reset/code", {"phone": "13900000078"})
    assert (status, reply) == (202, {"sent": "if it can be used"})  # as for a known phone
    assert len(site.sms.calls) == before  # nobody to text


async def test_a_code_is_spent_once_and_gives_out_after_five_wrong_tries(site: Site) -> None:
    right = await code(site, RELATIVE["phone"])
    for _ in range(5):
        wrong = {**RELATIVE, "code": "999999" if right != "999999" else "888888"}
        status, reply, _ = await site.call("POST", "/auth/register", wrong)
        assert (status, reply["error"]["code"]) == (400, "invalid_code")
    status, reply, _ = await site.call("POST", "/auth/register", {**RELATIVE, "code": right})
    assert (status, reply["error"]["code"]) == (400, "invalid_code")  # too many tries
    assert (await register(site, RELATIVE))[0] == 201  # a new code works
    status, reply, _ = await site.call("POST", "/auth/register", {**RELATIVE, "code": right})
    assert status in (400, 409)  # nothing made twice


async def test_codes_are_throttled_per_phone(site: Site) -> None:
    for _ in range(5):
        await texted(site, "13900000055")
    status, reply, response = await site.call(
        "POST", "/auth/register/code", {"phone": "13900000055"}
    )
    assert (status, reply["error"]["code"]) == (429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0


async def test_a_password_reset_by_sms_ends_every_session(site: Site) -> None:
    assert (await register(site, RELATIVE))[0] == 201
    status, logged, _ = await site.call(
        "POST", "/auth/login", {"login": RELATIVE["phone"], "password": PASSWORD}
    )
    assert status == 200
    reset_code = await code(site, RELATIVE["phone"], "/auth/reset/code")
    fresh = "a brand new passphrase"
    form = {"phone": RELATIVE["phone"], "code": "000001", "new_password": fresh}
    status, reply, _ = await site.call("POST", "/auth/reset", form)
    assert (status, reply["error"]["code"]) == (400, "invalid_code")
    status, reply, _ = await site.call("POST", "/auth/reset", {**form, "code": reset_code})
    assert (status, reply) == (200, {"sessions_ended": 1})
    assert (await site.call("GET", "/me", token=logged["token"]))[0] == 401
    status, _, _ = await site.call(
        "POST", "/auth/login", {"login": RELATIVE["phone"], "password": fresh}
    )
    assert status == 200
    assert (await site.call("POST", "/auth/reset", {**form, "code": reset_code}))[0] == 400
    [entry] = await audit_trail.audit_entries(site.store, action="user.password_reset")
    assert entry.after == {"by": "sms", "sessions_ended": 1}


async def test_a_reset_answers_the_same_for_a_known_and_an_unknown_phone(site: Site) -> None:
    """Regression: the reset judged the new password against the account's name only when
    the phone had one, so a password holding that name told a guesser "registered" (400
    new_password) where an unknown phone got invalid_code. The answers are now the same; the
    name is judged once the code is proven, and then the code is not spent by the refusal."""
    assert (await register(site, RELATIVE))[0] == 201
    known, unknown = RELATIVE["phone"], "13900000079"
    for password in ("qwerty1234", "{phone} is mine", "zhou min forever and ever"):
        answers = []
        for phone in (known, unknown):
            mine = password.format(phone=phone)
            form = {"phone": phone, "code": "000001", "new_password": mine}
            status, reply, _ = await site.call("POST", "/auth/reset", form)
            answers.append((status, reply))
        assert answers[0] == answers[1], password
    reset_code = await code(site, known, "/auth/reset/code")
    form = {"phone": known, "code": reset_code, "new_password": "zhou min forever and ever"}
    status, reply, _ = await site.call("POST", "/auth/reset", form)
    assert (status, reply["error"]["field"]) == (400, "new_password")  # holds its name
    fresh = {**form, "new_password": "a brand new passphrase"}
    assert (await site.call("POST", "/auth/reset", fresh))[0] == 200  # the code still good


async def test_registrations_and_resets_are_throttled_per_client(site: Site) -> None:
    """Regression: 40 registrations in 4.4 s were answered, each one a question "is this
    person registered here?". Tries of both count per client, and past the limit the
    answer is 429 with the wait, whatever the phone."""
    site.app[CODES].attempts.limit = 4
    for n in range(2):
        form = {**RELATIVE, "phone": f"1390000010{n}", "code": "000000"}
        status, reply, _ = await site.call("POST", "/auth/register", form)
        assert (status, reply["error"]["code"]) == (400, "invalid_code")
        reset = {"phone": f"1390000011{n}", "code": "000000", "new_password": "x" * 12}
        assert (await site.call("POST", "/auth/reset", reset))[0] == 400
    for path, form in (("/auth/register", {**RELATIVE, "code": "000000"}),
                       ("/auth/reset", {"phone": RELATIVE["phone"], "code": "000000",
                                        "new_password": "violet harbour lamp"})):  # fmt: skip
        status, reply, response = await site.call("POST", path, form)
        assert (status, reply["error"]["code"]) == (429, "rate_limited"), path
        assert int(response.headers["Retry-After"]) > 0
