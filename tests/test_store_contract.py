"""The storage contract, run against SQLite and PostgreSQL alike (the ``store`` fixture)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from storage.base import Conflict, Conversation, NewMessage, NotFound, Store, User


async def _world(store: Store) -> tuple[User, User, Conversation]:
    prison = await store.add_prison("GM", "Gaoming Prison", "Foshan")
    officer = await store.add_user("officer", "officer1", "Officer Li", "x", [prison.id])
    relative = await store.add_user("relative", "13800000000", "Chen Mei", "x", phone="13800000000")
    inmate = await store.add_inmate(prison.id, "GM-0001", "Chen Jian")
    conversation = await store.open_conversation(relative.id, inmate.id)
    return officer, relative, conversation


def _msg(conv: Conversation, sender: User, cid: str, body: str = "hello") -> NewMessage:
    return NewMessage(conv.id, sender.id, sender.role, cid, body, sender_name=sender.name)


async def test_migrate_twice_is_a_no_op(store: Store) -> None:
    assert await store.migrate() == []


async def test_fifty_tasks_appending_concurrently_get_seq_1_to_500(store: Store) -> None:
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
    stored = [m.seq for m in await store.messages(conv.id, after=0, limit=500)]
    assert stored == list(range(1, 501))
    assert (await store.conversation(conv.id)).last_seq == 500
    assert await store.last_seqs([conv.id]) == {conv.id: 500}


async def test_retried_cid_returns_the_original_message(store: Store) -> None:
    _, relative, conv = await _world(store)
    [first] = await store.append_messages([_msg(conv, relative, "c-1", "visit on Sunday?")])
    [other] = await store.append_messages([_msg(conv, relative, "c-2", "second")])
    [again] = await store.append_messages([_msg(conv, relative, "c-1", "visit on Sunday?")])
    assert first is not None and other is not None and again is not None
    assert again.created is False
    assert again.message.seq == first.message.seq == 1
    assert again.message.id == first.message.id
    assert again.message.sender_name == "Chen Mei"
    assert [m.seq for m in await store.messages(conv.id)] == [1, 2]


async def test_concurrent_retries_of_one_cid_store_it_once(store: Store) -> None:
    _, relative, conv = await _world(store)
    results = await asyncio.gather(
        *(store.append_messages([_msg(conv, relative, "same")]) for _ in range(20))
    )
    appended = [r[0] for r in results]
    assert all(a is not None for a in appended)
    assert sum(1 for a in appended if a and a.created) == 1
    assert {a.message.seq for a in appended if a} == {1}
    assert len(await store.messages(conv.id)) == 1


async def test_same_cid_from_another_sender_is_another_message(store: Store) -> None:
    officer, relative, conv = await _world(store)
    results = await store.append_messages([_msg(conv, relative, "c"), _msg(conv, officer, "c")])
    assert [r.message.seq for r in results if r] == [1, 2]


async def test_a_batch_is_ordered_and_dedupes_within_itself(store: Store) -> None:
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
    assert [m.body for m in await store.messages(conv.id)] == ["one", "two"]


async def test_paging_by_after_before_and_limit(store: Store) -> None:
    _, relative, conv = await _world(store)
    await store.append_messages([_msg(conv, relative, f"c{n}", f"m{n}") for n in range(1, 31)])

    def seqs(page: list) -> list[int]:  # type: ignore[type-arg]
        return [m.seq for m in page]

    assert seqs(await store.messages(conv.id, limit=5)) == [26, 27, 28, 29, 30]
    assert seqs(await store.messages(conv.id, after=10, limit=3)) == [11, 12, 13]
    assert seqs(await store.messages(conv.id, before=10, limit=3)) == [7, 8, 9]
    assert seqs(await store.messages(conv.id, after=5, before=9, limit=50)) == [6, 7, 8]
    assert seqs(await store.messages(conv.id, after=30)) == []
    assert seqs(await store.messages(conv.id, after=0, limit=100)) == list(range(1, 31))
    page = await store.messages(conv.id, after=0, limit=1)
    assert page[0].body == "m1" and page[0].sender_role == "relative"
    assert page[0].created_at.tzinfo is not None


async def test_notes_can_be_left_out_of_history(store: Store) -> None:
    officer, relative, conv = await _world(store)
    await store.append_messages(
        [
            _msg(conv, relative, "1", "question"),
            NewMessage(conv.id, officer.id, "officer", "2", "private", kind="note"),
            _msg(conv, officer, "3", "answer"),
        ]
    )
    everything = await store.messages(conv.id)
    visible = await store.messages(conv.id, include_notes=False)
    assert [m.kind for m in everything] == ["text", "note", "text"]
    assert [m.body for m in visible] == ["question", "answer"]


async def test_open_conversation_is_get_or_create(store: Store) -> None:
    _, relative, conv = await _world(store)
    again = await store.open_conversation(relative.id, conv.inmate_id)
    assert again.id == conv.id
    assert conv.state == "new" and conv.last_seq == 0
    with pytest.raises(NotFound):
        await store.open_conversation(relative.id, 424242)
    with pytest.raises(NotFound):
        await store.conversation(424242)


async def test_duplicates_are_conflicts(store: Store) -> None:
    prison = await store.add_prison("GM", "Gaoming Prison")
    with pytest.raises(Conflict):
        await store.add_prison("GM", "Again")
    await store.add_user("officer", "li", "Li", "h", [prison.id])
    with pytest.raises(Conflict):
        await store.add_user("officer", "li", "Other Li", "h", [prison.id])
    await store.add_inmate(prison.id, "7", "A")
    with pytest.raises(Conflict):
        await store.add_inmate(prison.id, "7", "B")


async def test_users_and_credentials(store: Store) -> None:
    a = await store.add_prison("GM", "Gaoming Prison")
    b = await store.add_prison("SJ", "Sanshui Prison")
    supervisor = await store.add_user("supervisor", "sup", "Wang", "hash!", [b.id, a.id])
    assert supervisor.prison_ids == (a.id, b.id)
    assert await store.user(supervisor.id) == supervisor
    user, password_hash = await store.credentials("sup")
    assert user == supervisor and password_hash == "hash!"
    with pytest.raises(NotFound):
        await store.credentials("nobody")
    assert (await store.prison_by_code("SJ")).name == "Sanshui Prison"


async def test_sessions_expire_and_revoke(store: Store) -> None:
    _, relative, _ = await _world(store)
    now = datetime.now(UTC)
    await store.create_session(relative.id, b"live", now + timedelta(hours=1))
    await store.create_session(relative.id, b"old", now - timedelta(seconds=1))
    assert await store.session_user(b"live", now) == relative
    assert await store.session_user(b"old", now) is None
    assert await store.session_user(b"unknown", now) is None
    await store.revoke_session(b"live")
    assert await store.session_user(b"live", now) is None


async def test_read_cursors_only_move_forward(store: Store) -> None:
    officer, relative, conv = await _world(store)
    assert await store.mark_read(conv.id, relative.id, 5) is True
    assert await store.mark_read(conv.id, relative.id, 3) is False
    assert await store.mark_read(conv.id, relative.id, 5) is False
    assert await store.mark_read(conv.id, officer.id, 2) is True
    assert await store.read_cursors(conv.id) == {relative.id: 5, officer.id: 2}


async def test_audit_trail_is_append_only(store: Store) -> None:
    officer, _, conv = await _world(store)
    entry = await store.audit(
        officer.id,
        "link.verify",
        "family_link",
        7,
        conv.prison_id,
        before={"state": "pending"},
        after={"state": "verified"},
    )
    assert entry.before == {"state": "pending"} and entry.after == {"state": "verified"}
    await store.audit(None, "system.start", "server", None)
    listed = await store.audit_entries(prison_id=conv.prison_id)
    assert [e.action for e in listed] == ["link.verify"]
    assert [e.action for e in await store.audit_entries(limit=10)] == [
        "system.start",
        "link.verify",
    ]
    assert not hasattr(store, "delete_audit") and not hasattr(store, "update_audit")


async def test_family_links_decide_who_is_verified(store: Store) -> None:
    officer, relative, conv = await _world(store)
    other = await store.add_inmate(conv.prison_id, "GM-0002", "Other")
    link = await store.request_link(relative.id, conv.inmate_id, "mother", "household register")
    with pytest.raises(Conflict):  # one open request per relative and inmate
        await store.request_link(relative.id, conv.inmate_id, "mother", "again")
    assert await store.verified_inmates(relative.id) == frozenset()
    await store.decide_link(link, "verified", officer.id, None)
    assert await store.verified_inmates(relative.id) == {conv.inmate_id}
    second = await store.request_link(relative.id, other.id, "sister", "")
    await store.decide_link(second, "rejected", officer.id, "no evidence")
    assert await store.verified_inmates(relative.id) == {conv.inmate_id}
    await store.decide_link(link, "revoked", officer.id, "court order")
    assert await store.verified_inmates(relative.id) == frozenset()
    with pytest.raises(NotFound):
        await store.decide_link(424242, "verified", officer.id, None)
    assert [c.id for c in await store.conversations_of(relative.id)] == [conv.id]
