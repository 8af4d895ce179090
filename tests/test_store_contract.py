"""The storage contract, run against SQLite and PostgreSQL alike (the ``store`` fixture)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain.records import Conversation, NewMessage, User
from storage import accounts, audit_trail, conversations, links, messages, prisons, sessions
from storage.errors import Conflict, NotFound
from storage.sql import Database, utcnow
from tests.world import read_cursors


async def _world(store: Database) -> tuple[User, User, Conversation]:
    prison = await prisons.add_prison(store, "GM", "Gaoming Prison", "Foshan")
    officer = await accounts.add_user(store, "officer", "officer1", "Officer Li", "x", [prison.id])
    relative = await accounts.add_user(
        store, "relative", "13800000000", "Chen Mei", "x", phone="13800000000"
    )
    inmate = await prisons.add_inmate(store, prison.id, "GM-0001", "Chen Jian")
    conversation = await conversations.open_conversation(store, relative.id, inmate.id)
    return officer, relative, conversation


def _msg(conv: Conversation, sender: User, cid: str, body: str = "hello") -> NewMessage:
    return NewMessage(conv.id, sender.id, sender.role, cid, body, sender_name=sender.name)


async def test_migrate_twice_is_a_no_op(store: Database) -> None:
    assert await store.migrate() == []


async def test_fifty_tasks_appending_concurrently_get_seq_1_to_500(store: Database) -> None:
    officer, relative, conv = await _world(store)

    async def writer(task: int) -> list[int]:
        sender = officer if task % 2 else relative
        seqs = []
        for n in range(10):
            [done] = await store.append_messages([_msg(conv, sender, f"t{task}-{n}")])
            assert done is not None and done.created
            seqs.append(done.message.seq)
        assert seqs == sorted(seqs)  # one writer's messages keep their order
        return seqs

    results = await asyncio.gather(*(writer(t) for t in range(50)))
    assert sorted(s for seqs in results for s in seqs) == list(range(1, 501))
    stored = [m.seq for m in await messages.messages(store, conv.id, after=0, limit=500)]
    assert stored == list(range(1, 501))
    assert (await conversations.conversation(store, conv.id)).last_seq == 500
    assert await conversations.last_seqs(store, [conv.id]) == {conv.id: 500}


async def test_retried_cid_returns_the_original_message(store: Database) -> None:
    _, relative, conv = await _world(store)
    [first] = await store.append_messages([_msg(conv, relative, "c-1", "visit on Sunday?")])
    [other] = await store.append_messages([_msg(conv, relative, "c-2", "second")])
    [again] = await store.append_messages([_msg(conv, relative, "c-1", "visit on Sunday?")])
    assert first is not None and other is not None and again is not None
    assert again.created is False
    assert again.message.seq == first.message.seq == 1
    assert again.message.id == first.message.id
    assert again.message.sender_name == "Chen Mei"
    assert [m.seq for m in await messages.messages(store, conv.id)] == [1, 2]


async def test_concurrent_retries_of_one_cid_store_it_once(store: Database) -> None:
    _, relative, conv = await _world(store)
    results = await asyncio.gather(
        *(store.append_messages([_msg(conv, relative, "same")]) for _ in range(20))
    )
    appended = [r[0] for r in results]
    assert all(a is not None for a in appended)
    assert sum(1 for a in appended if a and a.created) == 1
    assert {a.message.seq for a in appended if a} == {1}
    assert len(await messages.messages(store, conv.id)) == 1


async def test_same_cid_from_another_sender_is_another_message(store: Database) -> None:
    officer, relative, conv = await _world(store)
    results = await store.append_messages([_msg(conv, relative, "c"), _msg(conv, officer, "c")])
    assert [r.message.seq for r in results if r] == [1, 2]


async def test_a_batch_is_ordered_and_dedupes_within_itself(store: Database) -> None:
    officer, relative, conv = await _world(store)
    results = await store.append_messages(
        [
            _msg(conv, relative, "a", "one"),
            _msg(conv, officer, "b", "two"),
            _msg(conv, relative, "a", "one"),
            NewMessage(999_999, relative.id, "relative", "z", "nowhere"),
        ]
    )
    assert [(r.message.seq, r.created) if r else None for r in results] == [
        (1, True),
        (2, True),
        (1, False),
        None,
    ]
    assert [m.body for m in await messages.messages(store, conv.id)] == ["one", "two"]


async def test_paging_by_after_before_and_limit(store: Database) -> None:
    _, relative, conv = await _world(store)
    await store.append_messages([_msg(conv, relative, f"c{n}", f"m{n}") for n in range(1, 31)])

    def seqs(page: list) -> list[int]:  # type: ignore[type-arg]
        return [m.seq for m in page]

    assert seqs(await messages.messages(store, conv.id, limit=5)) == [26, 27, 28, 29, 30]
    assert seqs(await messages.messages(store, conv.id, after=10, limit=3)) == [11, 12, 13]
    assert seqs(await messages.messages(store, conv.id, before=10, limit=3)) == [7, 8, 9]
    assert seqs(await messages.messages(store, conv.id, after=5, before=9, limit=50)) == [6, 7, 8]
    assert seqs(await messages.messages(store, conv.id, after=30)) == []
    assert seqs(await messages.messages(store, conv.id, after=0, limit=100)) == list(range(1, 31))
    page = await messages.messages(store, conv.id, after=0, limit=1)
    assert page[0].body == "m1" and page[0].sender_role == "relative"
    assert page[0].created_at.tzinfo is not None


async def test_notes_can_be_left_out_of_history(store: Database) -> None:
    officer, relative, conv = await _world(store)
    await store.append_messages(
        [
            _msg(conv, relative, "1", "question"),
            NewMessage(conv.id, officer.id, "officer", "2", "private", kind="note"),
            _msg(conv, officer, "3", "answer"),
        ]
    )
    everything = await messages.messages(store, conv.id)
    visible = await messages.messages(store, conv.id, include_notes=False)
    assert [m.kind for m in everything] == ["text", "note", "text"]
    assert [m.body for m in visible] == ["question", "answer"]


async def test_open_conversation_is_get_or_create(store: Database) -> None:
    _, relative, conv = await _world(store)
    again = await conversations.open_conversation(store, relative.id, conv.inmate_id)
    assert again.id == conv.id
    assert conv.state == "new" and conv.last_seq == 0
    with pytest.raises(NotFound):
        await conversations.open_conversation(store, relative.id, 424242)
    with pytest.raises(NotFound):
        await conversations.conversation(store, 424242)


async def test_duplicates_are_conflicts(store: Database) -> None:
    prison = await prisons.add_prison(store, "GM", "Gaoming Prison")
    with pytest.raises(Conflict):
        await prisons.add_prison(store, "GM", "Again")
    await accounts.add_user(store, "officer", "li", "Li", "h", [prison.id])
    with pytest.raises(Conflict):
        await accounts.add_user(store, "officer", "li", "Other Li", "h", [prison.id])
    await prisons.add_inmate(store, prison.id, "7", "A")
    with pytest.raises(Conflict):
        await prisons.add_inmate(store, prison.id, "7", "B")


async def test_users_and_credentials(store: Database) -> None:
    a = await prisons.add_prison(store, "GM", "Gaoming Prison")
    b = await prisons.add_prison(store, "SJ", "Sanshui Prison")
    supervisor = await accounts.add_user(store, "supervisor", "sup", "Wang", "hash!", [b.id, a.id])
    assert supervisor.prison_ids == (a.id, b.id)
    assert await accounts.user(store, supervisor.id) == supervisor
    user, password_hash = await accounts.credentials(store, "sup")
    assert user == supervisor and password_hash == "hash!"
    with pytest.raises(NotFound):
        await accounts.credentials(store, "nobody")
    assert (await prisons.prison_by_code(store, "SJ")).name == "Sanshui Prison"


async def test_conversations_read_by_id_together(store: Database) -> None:
    _, relative, conv = await _world(store)
    await store.append_messages([_msg(conv, relative, "c")])
    found = await conversations.conversations_by_id(store, [conv.id, conv.id + 999])
    assert found == {conv.id: await conversations.conversation(store, conv.id)}
    assert found[conv.id].last_seq == 1  # as stored now
    assert await conversations.conversations_by_id(store, []) == {}


async def test_sessions_expire_and_revoke(store: Database) -> None:
    _, relative, _ = await _world(store)
    now = datetime.now(UTC)
    await sessions.create_session(store, relative.id, b"live", now + timedelta(hours=1))
    await sessions.create_session(store, relative.id, b"old", now - timedelta(seconds=1))
    assert await sessions.session_user(store, b"live", now) == relative
    assert await sessions.session_user(store, b"old", now) is None
    assert await sessions.session_user(store, b"unknown", now) is None
    await sessions.create_session(store, relative.id, b"also", now + timedelta(hours=1))
    # many tokens in one read (a reconnect storm's handshakes): only the live ones answer
    wanted = [b"live", b"old", b"unknown", b"also"]
    live = {b"live": relative, b"also": relative}
    assert await sessions.session_users(store, wanted, now) == live
    assert await sessions.session_users(store, [], now) == {}
    await sessions.revoke_session(store, b"live")
    assert await sessions.session_user(store, b"live", now) is None
    assert await sessions.session_users(store, wanted, now) == {b"also": relative}


async def test_read_cursors_only_move_forward(store: Database) -> None:
    officer, relative, conv = await _world(store)
    assert await messages.mark_read(store, conv.id, relative.id, 5) is True
    assert await messages.mark_read(store, conv.id, relative.id, 3) is False
    assert await messages.mark_read(store, conv.id, relative.id, 5) is False
    assert await messages.mark_read(store, conv.id, officer.id, 2) is True
    assert await read_cursors(store, conv.id) == {relative.id: 5, officer.id: 2}


async def test_audit_trail_is_append_only(store: Database) -> None:
    officer, _, conv = await _world(store)
    await audit_trail.append(
        store,
        at=utcnow(),
        actor_id=officer.id,
        action="link.verify",
        object_type="family_link",
        object_id=7,
        prison_id=conv.prison_id,
        before={"state": "pending"},
        after={"state": "verified"},
    )
    await audit_trail.append(
        store,
        at=utcnow(),
        actor_id=None,
        action="system.start",
        object_type="server",
        object_id=None,
        prison_id=None,
    )
    listed = await audit_trail.audit_entries(store, prison_id=conv.prison_id)
    assert [e.action for e in listed] == ["link.verify"]
    [entry] = listed
    assert entry.before == {"state": "pending"} and entry.after == {"state": "verified"}
    assert [e.action for e in await audit_trail.audit_entries(store, limit=10)] == [
        "system.start",
        "link.verify",
    ]
    assert not hasattr(store, "delete_audit") and not hasattr(store, "update_audit")


async def test_family_links_decide_who_is_verified(store: Database) -> None:
    officer, relative, conv = await _world(store)
    other = await prisons.add_inmate(store, conv.prison_id, "GM-0002", "Other")
    link = await links.request_link(
        store, relative.id, conv.inmate_id, "mother", "household register"
    )
    with pytest.raises(Conflict):  # one open request per relative and inmate
        await links.request_link(store, relative.id, conv.inmate_id, "mother", "again")
    assert await links.verified_inmates(store, relative.id) == frozenset()
    await links.decide_link(store, link, "verified", officer.id, None)
    assert await links.verified_inmates(store, relative.id) == {conv.inmate_id}
    second = await links.request_link(store, relative.id, other.id, "sister", "")
    await links.decide_link(store, second, "rejected", officer.id, "no evidence")
    assert await links.verified_inmates(store, relative.id) == {conv.inmate_id}
    await links.decide_link(store, link, "revoked", officer.id, "court order")
    assert await links.verified_inmates(store, relative.id) == frozenset()
    with pytest.raises(NotFound):
        await links.decide_link(store, 424242, "verified", officer.id, None)
    assert [c.id for c in await conversations.conversations_of(store, relative.id)] == [conv.id]
