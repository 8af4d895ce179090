"""The storage contract for accounts and family links, run against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.records import LinkClaim, Prison, User
from storage import accounts, audit_trail, links, prisons, sessions
from storage.errors import Conflict, NotFound
from storage.sql import Database


async def _setup(store: Database) -> tuple[Prison, User, User]:
    prison = await prisons.add_prison(store, "GM", "Gaoming Prison", "Foshan")
    officer = await accounts.add_user(
        store, "officer", "officer.li", "Officer Li", "x", [prison.id]
    )
    relative = await accounts.add_relative(
        store, "13800000001", "Chen Mei", "h", b"\x01" * 32, "123X"
    )
    return prison, officer, relative


async def test_a_relative_logs_in_with_its_phone_and_its_id_number_is_only_a_hash(
    store: Database,
) -> None:
    _, _, relative = await _setup(store)
    user, password_hash = await accounts.credentials(store, "13800000001")
    assert (user.id, user.role, user.phone, password_hash) == (
        relative.id,
        "relative",
        "13800000001",
        "h",
    )
    assert await accounts.id_number_last4(store, relative.id) == "123X"
    await accounts.set_password_hash(store, relative.id, "h2")
    assert (await accounts.credentials(store, "13800000001"))[1] == "h2"


async def test_a_phone_registers_once_and_a_shared_id_number_is_flagged(store: Database) -> None:
    await _setup(store)
    with pytest.raises(Conflict) as same_phone:
        await accounts.add_relative(store, "13800000001", "Other", "h", b"\x02" * 32, "0000")
    assert "login" in same_phone.value.what
    second = await accounts.add_relative(  # the same id number: a claim under review
        store, "13800000009", "Other", "h", b"\x01" * 32, "123X"
    )
    async with store.read() as sql:
        rows = await sql.fetch("SELECT id, id_conflict FROM users WHERE role = 'relative'")
    assert len(rows) == 2 and second.id in {r["id"] for r in rows}
    assert all(r["id_conflict"] for r in rows)  # both, for the officer to check documents


async def test_users_list_by_role_and_sessions_revoke_per_user(store: Database) -> None:
    _, officer, relative = await _setup(store)
    assert [u.id for u in await accounts.users(store, role="officer")] == [officer.id]
    assert [u.id for u in await accounts.users(store)] == [officer.id, relative.id]
    later = datetime.now(UTC) + timedelta(days=1)
    for n in range(3):
        await sessions.create_session(store, relative.id, bytes([n]) * 32, later)
    await sessions.create_session(store, officer.id, b"\x09" * 32, later)
    for revoked in (3, 0):
        async with store.write() as sql:
            assert await sessions.revoke_user_sessions_in(sql, relative.id) == revoked
    now = datetime.now(UTC)
    assert await sessions.session_user(store, b"\x00" * 32, now) is None
    assert await sessions.session_user(store, b"\x09" * 32, now) == officer


async def test_prisons_by_id_and_inmates_by_number(store: Database) -> None:
    prison, _, _ = await _setup(store)
    other = await prisons.add_prison(store, "SS", "Sanshui Prison")
    assert await prisons.prison(store, prison.id) == prison
    assert await prisons.prisons(store) == [prison, other]
    with pytest.raises(NotFound):
        await prisons.prison(store, 999)
    inmate = await prisons.add_inmate(store, prison.id, "GM-001", "Chen Jian")
    assert await prisons.inmate_by_number(store, prison.id, "GM-001") == inmate
    assert await prisons.inmate_by_number(store, other.id, "GM-001") is None


async def test_a_claim_is_stored_as_claimed_matched_or_not(store: Database) -> None:
    prison, _, relative = await _setup(store)
    inmate = await prisons.add_inmate(store, prison.id, "GM-001", "Chen Jian")
    matched = await links.claim_link(
        store, LinkClaim(relative.id, "GM", "GM-001", "mother", "register", prison.id, inmate.id)
    )
    unmatched = await links.claim_link(
        store, LinkClaim(relative.id, "GM", "GM-404", "mother", "register", prison.id, None)
    )
    nowhere = await links.claim_link(store, LinkClaim(relative.id, "XX", "1", "son", "card"))
    assert (matched.state, matched.inmate_id, matched.prison_id) == (
        "pending",
        inmate.id,
        prison.id,
    )
    assert (unmatched.inmate_id, unmatched.inmate_number) == (None, "GM-404")
    assert (nowhere.prison_id, nowhere.prison_claim) == (None, "XX")
    assert (matched.relative_name, matched.relative_id_last4) == ("Chen Mei", "123X")
    assert await links.link(store, matched.id) == matched
    pending = await links.links(store, prison_ids=[prison.id], state="pending")
    assert [link.id for link in pending] == [matched.id, unmatched.id]
    assert [link.id for link in await links.links(store, relative_id=relative.id)] == [
        matched.id,
        unmatched.id,
        nowhere.id,
    ]
    assert await links.links(store, prison_ids=[]) == []


async def test_a_duplicate_pending_claim_conflicts_whether_or_not_the_inmate_exists(
    store: Database,
) -> None:
    prison, officer, relative = await _setup(store)
    inmate = await prisons.add_inmate(store, prison.id, "GM-001", "Chen Jian")
    real = LinkClaim(relative.id, "GM", "GM-001", "mother", "", prison.id, inmate.id)
    fake = LinkClaim(relative.id, "GM", "GM-404", "mother", "", prison.id, None)
    first = await links.claim_link(store, real)
    await links.claim_link(store, fake)
    for claim in (real, fake):
        with pytest.raises(Conflict):
            await links.claim_link(store, claim)
    await links.transition_link(store, first.id, "pending", "rejected", officer.id, "no proof")
    again = await links.claim_link(store, real)  # a rejected request may be asked again
    await links.transition_link(store, again.id, "pending", "verified", officer.id, "ok")
    assert await links.verified_inmates(store, relative.id) == frozenset({inmate.id})
    with pytest.raises(Conflict):  # already verified for this inmate
        await links.claim_link(store, real)


async def test_a_decision_is_taken_once(store: Database) -> None:
    prison, officer, relative = await _setup(store)
    link = await links.claim_link(
        store, LinkClaim(relative.id, "GM", "GM-404", "mother", "", prison.id)
    )
    decided = await links.transition_link(
        store, link.id, "pending", "rejected", officer.id, "unknown"
    )
    assert (decided.state, decided.reason, decided.decided_by) == (
        "rejected",
        "unknown",
        officer.id,
    )
    assert decided.decided_at is not None
    with pytest.raises(Conflict):
        await links.transition_link(store, link.id, "pending", "verified", officer.id, None)
    assert (await links.link(store, link.id)).state == "rejected"
    [entry] = await audit_trail.audit_entries(
        store, action="link.rejected"
    )  # one, in the same transaction
    assert (entry.actor_id, entry.object_type, entry.object_id, entry.prison_id) == (
        officer.id,
        "family_link",
        link.id,
        prison.id,
    )
    assert (entry.before, entry.after) == (
        {"state": "pending"},
        {"state": "rejected", "reason": "unknown"},
    )
    with pytest.raises(NotFound):
        await links.transition_link(store, 999, "pending", "verified", officer.id, None)


async def test_request_link_records_the_prison_and_number_of_the_inmate(store: Database) -> None:
    prison, _, relative = await _setup(store)
    inmate = await prisons.add_inmate(store, prison.id, "GM-001", "Chen Jian")
    link = await links.link(
        store, await links.request_link(store, relative.id, inmate.id, "mother", "card")
    )
    assert (link.prison_id, link.inmate_number, link.inmate_id) == (prison.id, "GM-001", inmate.id)
    with pytest.raises(NotFound):
        await links.request_link(store, relative.id, 999, "mother", "card")
