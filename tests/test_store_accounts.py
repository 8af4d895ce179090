"""The storage contract for accounts and family links, run against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.base import Conflict, LinkClaim, NotFound, Prison, Store, User


async def _setup(store: Store) -> tuple[Prison, User, User]:
    prison = await store.add_prison("GM", "Gaoming Prison", "Foshan")
    officer = await store.add_user("officer", "officer.li", "Officer Li", "x", [prison.id])
    relative = await store.add_relative("13800000001", "Chen Mei", "h", b"\x01" * 32, "123X")
    return prison, officer, relative


async def test_a_relative_logs_in_with_its_phone_and_its_id_number_is_only_a_hash(
    store: Store,
) -> None:
    _, _, relative = await _setup(store)
    user, password_hash = await store.credentials("13800000001")
    assert (user.id, user.role, user.phone, password_hash) == (
        relative.id,
        "relative",
        "13800000001",
        "h",
    )
    assert await store.id_number_last4(relative.id) == "123X"
    await store.set_password_hash(relative.id, "h2")
    assert (await store.credentials("13800000001"))[1] == "h2"


async def test_a_phone_or_an_id_number_registers_once(store: Store) -> None:
    await _setup(store)
    with pytest.raises(Conflict) as same_phone:
        await store.add_relative("13800000001", "Other", "h", b"\x02" * 32, "0000")
    assert "login" in same_phone.value.what
    with pytest.raises(Conflict) as same_id:
        await store.add_relative("13800000009", "Other", "h", b"\x01" * 32, "123X")
    assert "id_number_hash" in same_id.value.what


async def test_users_list_by_role_and_sessions_revoke_per_user(store: Store) -> None:
    _, officer, relative = await _setup(store)
    assert [u.id for u in await store.users(role="officer")] == [officer.id]
    assert [u.id for u in await store.users()] == [officer.id, relative.id]
    later = datetime.now(UTC) + timedelta(days=1)
    for n in range(3):
        await store.create_session(relative.id, bytes([n]) * 32, later)
    await store.create_session(officer.id, b"\x09" * 32, later)
    assert await store.revoke_user_sessions(relative.id) == 3
    assert await store.revoke_user_sessions(relative.id) == 0
    now = datetime.now(UTC)
    assert await store.session_user(b"\x00" * 32, now) is None
    assert await store.session_user(b"\x09" * 32, now) == officer


async def test_prisons_by_id_and_inmates_by_number(store: Store) -> None:
    prison, _, _ = await _setup(store)
    other = await store.add_prison("SS", "Sanshui Prison")
    assert await store.prison(prison.id) == prison
    assert await store.prisons() == [prison, other]
    with pytest.raises(NotFound):
        await store.prison(999)
    inmate = await store.add_inmate(prison.id, "GM-001", "Chen Jian")
    assert await store.inmate_by_number(prison.id, "GM-001") == inmate
    assert await store.inmate_by_number(other.id, "GM-001") is None


async def test_a_claim_is_stored_as_claimed_matched_or_not(store: Store) -> None:
    prison, _, relative = await _setup(store)
    inmate = await store.add_inmate(prison.id, "GM-001", "Chen Jian")
    matched = await store.claim_link(
        LinkClaim(relative.id, "GM", "GM-001", "mother", "register", prison.id, inmate.id)
    )
    unmatched = await store.claim_link(
        LinkClaim(relative.id, "GM", "GM-404", "mother", "register", prison.id, None)
    )
    nowhere = await store.claim_link(LinkClaim(relative.id, "XX", "1", "son", "card"))
    assert (matched.state, matched.inmate_id, matched.prison_id) == (
        "pending",
        inmate.id,
        prison.id,
    )
    assert (unmatched.inmate_id, unmatched.inmate_number) == (None, "GM-404")
    assert (nowhere.prison_id, nowhere.prison_claim) == (None, "XX")
    assert (matched.relative_name, matched.relative_id_last4) == ("Chen Mei", "123X")
    assert await store.link(matched.id) == matched
    pending = await store.links(prison_ids=[prison.id], state="pending")
    assert [link.id for link in pending] == [matched.id, unmatched.id]
    assert [link.id for link in await store.links(relative_id=relative.id)] == [
        matched.id,
        unmatched.id,
        nowhere.id,
    ]
    assert await store.links(prison_ids=[]) == []


async def test_a_duplicate_pending_claim_conflicts_whether_or_not_the_inmate_exists(
    store: Store,
) -> None:
    prison, officer, relative = await _setup(store)
    inmate = await store.add_inmate(prison.id, "GM-001", "Chen Jian")
    real = LinkClaim(relative.id, "GM", "GM-001", "mother", "", prison.id, inmate.id)
    fake = LinkClaim(relative.id, "GM", "GM-404", "mother", "", prison.id, None)
    first = await store.claim_link(real)
    await store.claim_link(fake)
    for claim in (real, fake):
        with pytest.raises(Conflict):
            await store.claim_link(claim)
    await store.transition_link(first.id, "pending", "rejected", officer.id, "no proof")
    again = await store.claim_link(real)  # a rejected request may be asked again
    await store.transition_link(again.id, "pending", "verified", officer.id, "ok")
    assert await store.verified_inmates(relative.id) == frozenset({inmate.id})
    with pytest.raises(Conflict):  # already verified for this inmate
        await store.claim_link(real)


async def test_a_decision_is_taken_once(store: Store) -> None:
    prison, officer, relative = await _setup(store)
    link = await store.claim_link(LinkClaim(relative.id, "GM", "GM-404", "mother", "", prison.id))
    decided = await store.transition_link(link.id, "pending", "rejected", officer.id, "unknown")
    assert (decided.state, decided.reason, decided.decided_by) == (
        "rejected",
        "unknown",
        officer.id,
    )
    assert decided.decided_at is not None
    with pytest.raises(Conflict):
        await store.transition_link(link.id, "pending", "verified", officer.id, None)
    assert (await store.link(link.id)).state == "rejected"
    [entry] = await store.audit_entries(action="link.rejected")  # one, in the same transaction
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
        await store.transition_link(999, "pending", "verified", officer.id, None)


async def test_request_link_records_the_prison_and_number_of_the_inmate(store: Store) -> None:
    prison, _, relative = await _setup(store)
    inmate = await store.add_inmate(prison.id, "GM-001", "Chen Jian")
    link = await store.link(await store.request_link(relative.id, inmate.id, "mother", "card"))
    assert (link.prison_id, link.inmate_number, link.inmate_id) == (prison.id, "GM-001", inmate.id)
    with pytest.raises(NotFound):
        await store.request_link(relative.id, 999, "mother", "card")
