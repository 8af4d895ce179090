"""Every change the bureau's staff make commits with its audit entry or not at all (issue 14:
"every change audited in its transaction"). With every insert into the audit trail failing
(the disk is full, as PostgreSQL reports it), each admin and staff action of the console
answers 503 and leaves every table as it was: no account switched off, no session ended, no
password, prison, inmate, link, thread, photo or profile changed without its entry.

tests/test_accounts.py does the same for creating prisons and staff and revoking sessions."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from PIL import Image

from server import passwords
from storage import accounts
from storage.postgres import PostgresDatabase
from tests.sites import Site, site_for

NEW_PASSWORD = "another long passphrase"
OLD_PASSWORD = "a long passphrase here"
# Every table an admin or staff change of this issue writes to.
TABLES = (
    "users",
    "user_prisons",
    "sessions",
    "prisons",
    "inmates",
    "family_links",
    "conversations",
    "conversation_cycles",
    "relative_notices",
    "photos",
    "outbox",
    "messages",
    "audit_entries",
)


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    async with site_for(pg_store, pg_url, redis_url, redis_prefix) as served:
        yield served


async def _snapshot(site: Site) -> dict[str, str]:
    found: dict[str, str] = {}
    async with site.store.read() as sql:
        for table in TABLES:
            found[table] = await sql.fetchval(
                f"SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
                f" FROM {table} t"
            )
    return found


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 60)).save(out, "JPEG")
    return out.getvalue()


async def _upload(site: Site, supervisor_id: int) -> int:
    form = aiohttp.FormData()
    form.add_field("file", _jpeg(), filename="me.jpg", content_type="image/jpeg")
    token = site.world.token(site.staff.admin)
    async with site.http.post(
        f"{site.api}/admin/supervisors/{supervisor_id}/photo",
        data=form,
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        return response.status


async def _import(site: Site) -> int:
    token = site.world.token(site.staff.admin)
    async with site.http.post(
        f"{site.api}/admin/prisons/{site.world.gaoming.id}/inmates/import?dry_run=false",
        data="罪犯编号,姓名\nGM-001,Chen Jian Renamed\nGM-030,Zhao Lei\n".encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
    ) as response:
        return response.status


Action = Callable[[Site], Awaitable[int]]


def _call(method: str, path: str, who: str, body: Any = None) -> Action:
    """``path`` may name ``{officer}``, ``{relative}``, ``{supervisor}``, ``{inmate}``,
    ``{sanshui}``; ``who`` is ``admin`` or ``officer``."""

    async def act(site: Site) -> int:
        w = site.world
        names = {
            "officer": w.officer.id,
            "relative": w.relative.id,
            "supervisor": w.supervisor.id,
            "inmate": w.conv.inmate_id,
            "sanshui": w.sanshui.id,
            "gaoming": w.gaoming.id,
        }
        actor = site.staff.admin if who == "admin" else w.officer

        def fill(value: Any) -> Any:
            if isinstance(value, list):
                return [fill(v) for v in value]
            return names.get(value, value) if isinstance(value, str) else value

        filled = {k: fill(v) for k, v in body.items()} if isinstance(body, dict) else body
        status, _ = await site.call(method, path.format(**names), actor, filled)
        return status

    return act


async def _change_password(site: Site) -> int:
    """One's own password, with the old one (the seeded officer's is set in the test)."""
    token = site.world.token(site.world.officer)
    async with site.http.post(
        site.api + "/auth/password",
        json={"old_password": OLD_PASSWORD, "new_password": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        return response.status


CASES: dict[str, Action] = {
    "user.disable": _call("POST", "/admin/users/{officer}/disable", "admin"),
    "user.enable": _call("POST", "/admin/users/{officer}/enable", "admin"),  # once disabled
    "user.password_reset by the admin": _call(
        "POST", "/admin/users/{officer}/password", "admin", {"new_password": NEW_PASSWORD}
    ),
    "user.password_reset at the visit desk": _call(
        "POST", "/admin/users/{relative}/password", "officer", {"new_password": NEW_PASSWORD}
    ),
    "user.edit: an officer's prison": _call(
        "PATCH", "/admin/users/{officer}", "admin", {"prison_ids": ["sanshui"]}
    ),
    "user.edit: a supervisor's prisons": _call(
        "PATCH", "/admin/users/{supervisor}", "admin", {"prison_ids": ["gaoming", "sanshui"]}
    ),
    "inmate.add": _call(
        "POST",
        "/admin/inmates",
        "admin",
        {"prison_id": "gaoming", "number": "GM-040", "name": "Wu Gang"},
    ),
    "inmate import": _import,
    "inmate.transfer": _call(
        "POST", "/admin/inmates/{inmate}/transfer", "admin", {"prison_id": "sanshui"}
    ),
    "inmate.released": _call("POST", "/admin/inmates/{inmate}/release", "admin", {}),
    "inmate.archived": _call("POST", "/admin/inmates/{inmate}/archive", "admin", {}),
    "supervisor.photo": lambda site: _upload(site, site.world.supervisor.id),
    "supervisor.profile": _call(
        "PUT", "/supervisors/{supervisor}/profile", "admin", {"title": "CPPCC member", "photo": ""}
    ),
    "user.password_changed": _change_password,
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_staff_change_whose_audit_entry_fails_is_not_made(site: Site, case: str) -> None:
    officer = site.world.officer
    await accounts.set_password_hash(site.store, officer.id, passwords.hash_password(OLD_PASSWORD))
    if case == "user.enable":
        async with site.store.write() as sql:
            await accounts.set_disabled(sql, officer.id, True)
    async with site.store.write() as sql:
        await sql.execute(
            "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'could not extend file' USING ERRCODE = '53100'; END $$"
        )
        await sql.execute(
            "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_entries"
            " FOR EACH ROW EXECUTE FUNCTION fail_audit()"
        )
    try:
        before = await _snapshot(site)
        assert await CASES[case](site) == 503
        after = await _snapshot(site)
        assert [t for t in TABLES if before[t] != after[t]] == []
    finally:
        async with site.store.write() as sql:
            await sql.execute("DROP TRIGGER fail_audit ON audit_entries")
            await sql.execute("DROP FUNCTION fail_audit()")
    # with the audit trail working again the same request is made: the case is a real change
    assert await CASES[case](site) in (200, 201)
