"""Consent scopes and the family case in storage, on both databases: decisions recorded with
their audit entries in one transaction, the shared thread and its members' join seqs (the
trigger on ``family_links`` joins a relative verified later from that moment), and what a
relative's principal and thread list see of it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.records import NewMessage, User
from server import sessions
from server.policy import history_floor, sees_conversation
from storage import (
    accounts,
    audit_trail,
    consent,
    conversations,
    desk,
    family,
    links,
    messages,
    outbox,
    thread_list,
)
from storage.errors import Conflict, NotFound
from storage.sql import Database
from tests.world import World, seed

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DAY = date(2026, 3, 1)


@pytest.fixture
async def world(store: Database) -> World:
    return await seed(store)


async def sibling(store: Database, world: World, phone: str, name: str) -> User:
    """Another verified relative of inmate A."""
    user = await accounts.add_user(store, "relative", phone, name, "x")
    link = await links.request_link(store, user.id, world.conv.inmate_id, "brother", "card")
    await links.decide_link(store, link, "verified", world.officer.id, None)
    return user


async def say(store: Database, conv: int, user: User, body: str) -> int:
    [done] = await store.append_messages(
        [NewMessage(conv, user.id, user.role, f"c-{body}", body, "text", user.name)]
    )
    assert done is not None
    return done.message.seq


async def test_a_consent_is_recorded_with_its_audit_entry(store: Database, world: World) -> None:
    inmate = world.conv.inmate_id
    assert await consent.consent_of(store, inmate, world.relative.id) is None
    first = await consent.record_consent(
        store,
        inmate_id=inmate,
        relative_id=world.relative.id,
        categories=["money", "activity", "money"],
        decided_on=DAY,
        witness="Officer Li",
        note="asked in the visiting room",
        actor_id=world.officer.id,
        now=T0,
    )
    assert first.categories == ("activity", "money")  # card order, once each
    await consent.record_consent(
        store,
        inmate_id=inmate,
        relative_id=world.relative.id,
        categories=[],
        decided_on=DAY,
        witness="Guard Wu",
        note="",
        actor_id=world.officer.id,
        now=T0,
    )
    stored = await consent.consent_of(store, inmate, world.relative.id)
    assert stored is not None
    assert (stored.categories, stored.witness, stored.decided_on) == ((), "Guard Wu", DAY)
    entries = await audit_trail.audit_entries(store, action="consent.recorded")
    assert [(e.before, (e.after or {})["categories"]) for e in reversed(entries)] == [
        (None, ["activity", "money"]),
        ({"relative_id": world.relative.id, "categories": ["activity", "money"]}, []),
    ]
    assert (await consent.consents(store, inmate)).keys() == {world.relative.id}


async def test_consent_only_for_a_verified_relative(store: Database, world: World) -> None:
    with pytest.raises(Conflict):
        await consent.record_consent(
            store,
            inmate_id=world.conv.inmate_id,
            relative_id=world.relative_b.id,  # verified for inmate B, not A
            categories=["money"],
            decided_on=DAY,
            witness="x",
            note="",
            actor_id=world.officer.id,
            now=T0,
        )
    with pytest.raises(NotFound):
        await consent.record_consent(
            store,
            inmate_id=999999,
            relative_id=world.relative.id,
            categories=[],
            decided_on=DAY,
            witness="x",
            note="",
            actor_id=world.officer.id,
            now=T0,
        )
    assert await audit_trail.audit_entries(store, action="consent.recorded") == []


async def case(store: Database, world: World, enabled: bool = True) -> int:
    made = await consent.set_family_case(
        store,
        inmate_id=world.conv.inmate_id,
        enabled=enabled,
        decided_on=DAY,
        witness="Officer Li",
        note="",
        actor_id=world.officer.id,
        now=T0,
    )
    return made.conversation_id


async def test_the_family_shares_one_thread_from_each_join(store: Database, world: World) -> None:
    """Two relatives, one thread; a third verified later sees nothing before it joined; one
    revoked sees nothing at all."""
    before = await say(store, world.conv.id, world.relative, "private before the case")
    brother = await sibling(store, world, "13800000011", "Chen Gang")
    shared = await case(store, world)
    assert shared == world.conv.id  # the thread relative A already had
    again = await conversations.open_conversation(store, brother.id, world.conv.inmate_id)
    assert again.id == shared
    thread, created = await desk.open_thread(store, brother.id, world.conv.inmate_id, T0)
    assert (thread.id, created) == (shared, False)

    await say(store, shared, brother, "from the brother")
    late = await sibling(store, world, "13800000012", "Chen Li")  # verified now: joins now
    seq_after_join = await say(store, shared, world.relative, "after the third joined")

    people = {}
    for user in (world.relative, brother, late):
        people[user.id] = await sessions.principal_for(store, user)
        assert sees_conversation(people[user.id], again)
    assert history_floor(people[world.relative.id], again) == 0
    assert history_floor(people[brother.id], again) == before  # joined at the case's start
    assert history_floor(people[late.id], again) == seq_after_join - 1
    page = await messages.messages(store, shared, floor=history_floor(people[late.id], again))
    assert [m.body for m in page] == ["after the third joined"]
    listed = await desk.threads(store, relative_id=late.id)
    assert [t.id for t in listed] == [shared]
    paged, _ = await thread_list.page(store, thread_list.Filters(relative_id=late.id))
    assert [t.id for t in paged] == [shared]
    assert [c.id for c in await conversations.family_threads_of(store, late.id)] == [shared]
    assert await consent.thread_readers(store, shared) == tuple(
        sorted([world.relative.id, brother.id, late.id])
    )

    [link] = await links.links(store, relative_id=brother.id)
    await links.transition_link(store, link.id, "verified", "revoked", world.officer.id, "ended")
    gone = await sessions.principal_for(store, brother)
    assert not sees_conversation(gone, again)
    assert brother.id not in await consent.thread_readers(store, shared)

    [entry] = await audit_trail.audit_entries(store, action="inmate.family_case_set")
    assert entry.after is not None and entry.after["enabled"] is True


async def test_a_case_turned_off_returns_members_to_their_threads(
    store: Database, world: World
) -> None:
    brother = await sibling(store, world, "13800000011", "Chen Gang")
    shared = await case(store, world)
    inmates, joins = await family.access(store, brother.id)
    assert inmates == {world.conv.inmate_id: world.gaoming.id} and shared in joins
    # many relatives in one read (handshakes at once); one without links is left out
    both = await family.access_of(store, [brother.id, world.relative.id, world.stranger.id])
    assert both[brother.id] == (inmates, joins)
    assert both[world.relative.id] == await family.access(store, world.relative.id)
    assert world.stranger.id not in both
    readers = [brother.id, world.relative.id, world.stranger.id]
    threads = await conversations.threads_of(store, readers)
    for reader in (brother.id, world.relative.id):
        alone = [
            *await conversations.conversations_of(store, reader),
            *await conversations.family_threads_of(store, reader),
        ]
        assert threads[reader] == alone
    assert [c.id for c in threads[brother.id]] == [shared]
    assert world.stranger.id not in threads
    await case(store, world, enabled=False)
    assert (await family.access(store, brother.id))[1] == {}
    own = await conversations.open_conversation(store, brother.id, world.conv.inmate_id)
    assert own.id != shared and own.relative_id == brother.id
    assert not sees_conversation(await sessions.principal_for(store, brother), world.conv)
    await case(store, world)  # on again: the same thread, the same join
    assert (await family.access(store, brother.id))[1] == joins


async def test_a_case_needs_a_verified_relative_and_an_agreement(store: Database) -> None:
    world = await seed(store)
    with pytest.raises(Conflict, match="no_family_case"):
        await case(store, world, enabled=False)
    [link] = await links.links(store, relative_id=world.relative.id)
    await links.transition_link(store, link.id, "verified", "revoked", world.officer.id, "x")
    with pytest.raises(Conflict, match="no_verified_relative"):
        await case(store, world)
    assert await consent.family_case(store, world.conv.inmate_id) is None


async def test_an_answer_in_the_family_thread_is_owed_to_every_verified_member(
    store: Database, world: World
) -> None:
    brother = await sibling(store, world, "13800000011", "Chen Gang")
    cousin = await sibling(store, world, "13800000012", "Chen Yu")
    for who in (world.relative, brother, cousin):
        await outbox.choose_channel(store, who.id, "sms", T0)
    shared = await case(store, world)
    [link] = await links.links(store, relative_id=cousin.id)
    await links.transition_link(store, link.id, "verified", "revoked", world.officer.id, "x")
    await say(store, shared, world.officer, "he is well")
    async with store.read() as sql:
        rows = await sql.fetch(
            "SELECT relative_id FROM outbox WHERE event = 'answer' AND conversation_id = $1",
            shared,
        )
    assert sorted(r["relative_id"] for r in rows) == sorted([world.relative.id, brother.id])
