"""The duty desk's storage on both stores: the life cycle the triggers keep inside the append
transaction, claim/transfer/resolve/rate with their audit entries, duty, canned replies."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain.records import Appended, Message, MessageKind, NewMessage
from storage import audit_trail, desk, prisons
from storage.errors import Conflict
from storage.sql import Database, utcnow
from tests.world import World, seed

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
async def world(store: Database) -> World:
    return await seed(store, extra_officers=1)


async def say(
    store: Database, world: World, who: str, body: str, kind: MessageKind = "text"
) -> Appended:
    users = {"relative": world.relative, "officer": world.officer}
    user = users[who]
    item = NewMessage(
        world.conv.id,
        user.id,
        user.role,
        f"{who}-{body}",
        body,
        kind,
        user.name,
    )
    [appended] = await store.append_messages([item])
    assert appended is not None and appended.created
    return appended


def at(message: Message) -> datetime:
    return message.created_at


async def test_a_scripted_exchange_gives_cycles_and_first_replies(
    store: Database, world: World
) -> None:
    db = store
    fresh = await desk.thread(db, world.conv.id)
    assert (fresh.state, fresh.cycle, fresh.wait_started_at) == ("new", 0, None)

    q1 = await say(store, world, "relative", "is he well?")
    assert (q1.effect, q1.cycle) == ("opened", 1)
    t = await desk.thread(db, world.conv.id)
    assert (t.state, t.cycle, t.wait_started_at, t.first_reply_at) == (
        "waiting",
        1,
        at(q1.message),
        None,
    )
    q1b = await say(store, world, "relative", "and his work?")  # still the same question
    assert (q1b.effect, q1b.cycle) == (None, 1)
    note = await say(store, world, "officer", "ask the clinic", kind="note")
    fact = await say(store, world, "officer", "balance 12.00", kind="system")
    assert (note.effect, fact.effect, note.cycle) == (None, None, 1)
    assert (await desk.thread(db, world.conv.id)).first_reply_at is None  # neither counts
    a1 = await say(store, world, "officer", "he is well")
    assert a1.effect == "claimed"  # the answer took the question
    a1b = await say(store, world, "officer", "and works in the kitchen")
    assert (a1b.effect, a1b.cycle) == (None, 1)
    t = await desk.thread(db, world.conv.id)
    assert (t.state, t.cycle, t.first_reply_at, t.assigned_officer_id) == (
        "active",
        1,
        at(a1.message),
        world.officer.id,
    )
    claimed, changed = await desk.claim(db, world.conv.id, world.officer.id, utcnow())
    assert not changed and claimed.assigned_officer_id == world.officer.id  # already its own
    resolved = await desk.resolve(db, world.conv.id, world.officer.id, utcnow())
    assert resolved.state == "resolved"

    q2 = await say(store, world, "relative", "when can I visit?")
    assert (q2.effect, q2.cycle) == ("opened", 2)
    t = await desk.thread(db, world.conv.id)
    assert (t.state, t.cycle, t.wait_started_at, t.first_reply_at, t.assigned_officer_id) == (
        "waiting",
        2,
        at(q2.message),
        None,
        None,
    )
    await desk.resolve(db, world.conv.id, world.officer.id, utcnow())  # closed unanswered
    q3 = await say(store, world, "relative", "hello again")
    assert (q3.effect, q3.cycle) == ("opened", 3)
    a3 = await say(store, world, "officer", "hello")

    cycles = await desk.cycles(db, world.conv.id)
    assert [(c.cycle, c.wait_started_at, c.first_reply_at) for c in cycles] == [
        (1, at(q1.message), at(a1.message)),
        (2, at(q2.message), None),
        (3, at(q3.message), at(a3.message)),
    ]
    assert [c.resolved_by for c in cycles] == [world.officer.id, world.officer.id, None]
    assert all(c.prison_id == world.gaoming.id for c in cycles)


async def test_a_batch_with_a_question_and_its_answer_starts_and_answers_one_cycle(
    store: Database, world: World
) -> None:
    """Regression guard: the life-cycle trigger runs per row of the one ``kinline_append``
    statement; rows must reach it in seq order, or the answer would be seen before the
    question and the cycle would have no first reply."""
    r, o = world.relative, world.officer
    batch = [
        NewMessage(world.conv.id, r.id, "relative", "b1", "question", "text", r.name),
        NewMessage(world.conv.id, r.id, "relative", "b2", "more", "text", r.name),
        NewMessage(world.conv.id, o.id, "officer", "b3", "answer", "text", o.name),
        NewMessage(world.conv.id, r.id, "relative", "b1", "question", "text", r.name),  # repeat
        NewMessage(world.conv_b.id, o.id, "officer", "b4", "unasked", "text", o.name),
    ]
    results = await store.append_messages(batch)
    assert [(x.effect, x.cycle, x.created) for x in results if x] == [
        ("opened", 1, True),
        (None, 1, True),
        ("claimed", 1, True),
        (None, None, False),
        (None, 0, True),
    ]
    [question, _, answer, _, _] = [x.message for x in results if x]
    [cycle] = await desk.cycles(store, world.conv.id)
    assert (cycle.cycle, cycle.wait_started_at, cycle.first_reply_at) == (
        1,
        question.created_at,
        answer.created_at,
    )
    untouched = await desk.thread(store, world.conv_b.id)  # an officer cannot open a cycle
    assert (untouched.state, untouched.cycle, untouched.first_reply_at) == ("new", 0, None)
    assert await desk.cycles(store, world.conv_b.id) == []


async def test_two_officers_claiming_at_once_one_wins_the_other_is_told_who(
    store: Database, world: World
) -> None:
    await say(store, world, "relative", "anyone?")
    rival = world.extra_officers[0]
    outcomes = await asyncio.gather(
        desk.claim(store, world.conv.id, world.officer.id, utcnow()),
        desk.claim(store, world.conv.id, rival.id, utcnow()),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, tuple)]
    lost = [o for o in outcomes if isinstance(o, desk.Held)]
    assert len(won) == 1 and len(lost) == 1
    winner = won[0][0].assigned_officer_id
    assert winner in (world.officer.id, rival.id)
    assert lost[0].holder_id == winner
    assert lost[0].holder_name == ("Officer Li" if winner == world.officer.id else "Officer 0")
    entries = await audit_trail.audit_entries(store, action="conversation.claimed")
    assert [(e.actor_id, e.before, e.after) for e in entries] == [
        (
            winner,
            {"state": "waiting", "officer_id": None, "cycle": 1},
            {"state": "active", "officer_id": winner, "cycle": 1},
        )
    ]
    again, changed = await desk.claim(store, world.conv.id, winner, utcnow())
    assert not changed and again.assigned_officer_id == winner  # the holder re-claims: no-op


async def test_claim_transfer_resolve_follow_the_rules_and_are_audited(
    store: Database, world: World
) -> None:
    db, conv = store, world.conv.id
    with pytest.raises(desk.WrongState):  # no question yet
        await desk.claim(db, conv, world.officer.id, utcnow())
    await say(store, world, "relative", "question")
    with pytest.raises(desk.WrongState):
        await desk.transfer(db, conv, world.officer.id, world.extra_officers[0].id, "x", utcnow())
    await desk.claim(db, conv, world.officer.id, utcnow())
    colleague = world.extra_officers[0]
    with pytest.raises(desk.NotAnOfficer):  # an officer of Sanshui
        await desk.transfer(db, conv, world.officer.id, world.other_officer.id, "x", utcnow())
    with pytest.raises(desk.NotAnOfficer):  # a supervisor of Gaoming
        await desk.transfer(db, conv, world.officer.id, world.supervisor.id, "x", utcnow())
    with pytest.raises(desk.Held):  # only the holder hands over
        await desk.transfer(db, conv, colleague.id, colleague.id, "mine", utcnow())
    moved = await desk.transfer(db, conv, world.officer.id, colleague.id, "asks about visits", T0)
    assert (moved.state, moved.assigned_officer_id, moved.assigned_officer_name) == (
        "active",
        colleague.id,
        "Officer 0",
    )
    assert moved.handover_note == "asks about visits"
    with pytest.raises(desk.Held) as held:  # the former holder may no longer resolve it
        await desk.resolve(db, conv, world.officer.id, utcnow())
    assert held.value.holder_name == "Officer 0"
    done = await desk.resolve(db, conv, colleague.id, T0 + timedelta(minutes=5))
    assert done.state == "resolved"
    with pytest.raises(desk.WrongState):
        await desk.resolve(db, conv, colleague.id, utcnow())
    [transferred] = await audit_trail.audit_entries(store, action="conversation.transferred")
    assert (transferred.actor_id, transferred.at, transferred.prison_id) == (
        world.officer.id,
        T0,
        world.gaoming.id,
    )
    assert transferred.before == {"state": "active", "officer_id": world.officer.id, "cycle": 1}
    assert transferred.after == {
        "state": "active",
        "officer_id": colleague.id,
        "cycle": 1,
        "note": "asks about visits",
    }
    [resolved] = await audit_trail.audit_entries(store, action="conversation.resolved")
    assert resolved.before is not None and resolved.after is not None
    assert (resolved.actor_id, resolved.before["state"], resolved.after["state"]) == (
        colleague.id,
        "active",
        "resolved",
    )
    [cycle] = await desk.cycles(db, conv)
    assert (cycle.resolved_at, cycle.resolved_by) == (T0 + timedelta(minutes=5), colleague.id)


async def test_a_relative_rates_once_per_cycle_and_only_after_resolve(
    store: Database, world: World
) -> None:
    db, conv, me = store, world.conv.id, world.relative.id
    await say(store, world, "relative", "question")
    with pytest.raises(desk.WrongState):
        await desk.rate(db, conv, me, 5, "", utcnow())
    await desk.resolve(db, conv, world.officer.id, utcnow())
    rated = await desk.rate(db, conv, me, 4, "quick answer", utcnow())
    assert rated.rating == 4
    with pytest.raises(desk.WrongState):
        await desk.rate(db, conv, me, 1, "changed my mind", utcnow())
    await say(store, world, "relative", "another question")  # cycle 2
    assert (await desk.thread(db, conv)).rating is None
    await desk.resolve(db, conv, world.officer.id, utcnow())
    await desk.rate(db, conv, me, 2, "", utcnow())
    assert [(c.rating, c.rating_comment) for c in await desk.cycles(db, conv)] == [
        (4, "quick answer"),
        (2, ""),
    ]
    entries = await audit_trail.audit_entries(store, action="conversation.rated")
    assert [e.after for e in entries] == [
        {"cycle": 2, "rating": 2, "comment": ""},
        {"cycle": 1, "rating": 4, "comment": "quick answer"},
    ]


async def test_the_queue_lists_waiting_then_active_oldest_wait_first(
    store: Database, world: World
) -> None:
    db = store
    third = await prisons.add_inmate(store, world.gaoming.id, "GM-003", "Third")
    conv_c, created = await desk.open_thread(db, world.relative.id, third.id, utcnow())
    assert created and conv_c.state == "new"
    again, created = await desk.open_thread(db, world.relative.id, third.id, utcnow())
    assert (again.id, created) == (conv_c.id, False)
    r = world.relative
    for conv, cid in ((world.conv_b.id, "1"), (world.conv.id, "2"), (conv_c.id, "3")):
        sender = world.relative_b if conv == world.conv_b.id else r
        await store.append_messages(
            [NewMessage(conv, sender.id, "relative", cid, "q", "text", sender.name)]
        )
    await desk.claim(db, world.conv_b.id, world.officer.id, utcnow())  # oldest, but active
    queue = await desk.threads(db, prison_ids=[world.gaoming.id], states=["waiting", "active"])
    assert [(t.id, t.state) for t in queue] == [
        (world.conv.id, "waiting"),
        (conv_c.id, "waiting"),
        (world.conv_b.id, "active"),
    ]
    assert queue[0].inmate_name == "Chen Jian" and queue[0].relative_name == "Chen Mei"
    assert queue[2].assigned_officer_name == "Officer Li"
    assert await desk.threads(db, prison_ids=[world.sanshui.id]) == []
    mine = await desk.threads(db, relative_id=r.id)
    assert {t.id for t in mine} == {world.conv.id, conv_c.id}


async def test_duty_is_recorded_and_audited_when_it_changes(store: Database, world: World) -> None:
    db, me = store, world.officer.id
    assert not await desk.said_on_duty(db, me)
    assert (await desk.change_duty(db, me, [world.gaoming.id], True, T0)).changed
    assert await desk.said_on_duty(db, me)
    other = world.relative.id  # never said anything: off
    assert await desk.on_duty_of(db, [me, other]) == {me}
    assert await desk.on_duty_of(db, []) == frozenset()
    assert not (await desk.change_duty(db, me, [world.gaoming.id], True, T0)).changed  # no change
    later = T0 + timedelta(hours=8)
    assert (await desk.change_duty(db, me, [world.gaoming.id], False, later)).changed
    assert not await desk.said_on_duty(db, me)
    entries = await audit_trail.audit_entries(store, action="duty.changed")
    assert [(e.at, e.before, e.after, e.prison_id) for e in entries] == [
        (T0 + timedelta(hours=8), {"on_duty": True}, {"on_duty": False}, world.gaoming.id),
        (T0, {"on_duty": False}, {"on_duty": True}, world.gaoming.id),
    ]


async def test_canned_short_names_are_unique_per_prison(store: Database, world: World) -> None:
    db, gm, ss = store, world.gaoming.id, world.sanshui.id
    hello = await desk.add_canned(db, gm, "hello", "Hello, how can I help?", world.officer.id, T0)
    with pytest.raises(Conflict):
        await desk.add_canned(db, gm, "hello", "Hi", world.officer.id, T0)
    await desk.add_canned(db, ss, "hello", "Hello from Sanshui", world.other_officer.id, T0)
    bye = await desk.add_canned(db, gm, "bye", "Goodbye", world.officer.id, T0)
    with pytest.raises(Conflict):
        await desk.update_canned(db, bye.id, "hello", "Goodbye", world.officer.id, T0)
    await desk.update_canned(db, bye.id, "bye", "Goodbye, take care", world.officer.id, T0)
    assert (await desk.canned_by_name(db, gm, "bye")).body == "Goodbye, take care"
    assert [c.short_name for c in await desk.canned_replies(db, [gm])] == ["bye", "hello"]
    await desk.delete_canned(db, hello.id, world.officer.id, T0)
    assert [c.short_name for c in await desk.canned_replies(db, [gm])] == ["bye"]
    actions = [e.action for e in await audit_trail.audit_entries(store, prison_id=gm)]
    assert actions == ["canned.deleted", "canned.updated", "canned.created", "canned.created"]


async def test_a_text_after_an_unanswered_resolve_is_no_first_response(
    store: Database, world: World
) -> None:
    """Regression: the first-reply trigger checked only that a cycle had started, so an
    officer's text days after a question was resolved without one (answered by phone, say)
    became that cycle's first response and inflated the response times."""
    db = store
    q = await say(store, world, "relative", "is he well?")
    await desk.resolve(db, world.conv.id, world.officer.id, utcnow())
    later = await say(store, world, "officer", "a message after the question was closed")
    assert (later.effect, later.cycle) == (None, 1)
    [cycle] = await desk.cycles(db, world.conv.id)
    assert (cycle.wait_started_at, cycle.first_reply_at) == (at(q.message), None)
    assert (await desk.thread(db, world.conv.id)).first_reply_at is None
