"""A thread held by an officer who went off duty (issue 16, bug 1), end to end over real HTTP
and sockets on PostgreSQL and Redis (the ``site`` of tests/test_desk.py).

It was stuck: still ``active``, a new question in it in no queue and no late figure, its
colleagues refused 409 on claim, transfer and resolve, the admin 404; and an officer off duty
could still claim and resolve.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp

from channels.protocol import ConversationEvent
from domain.records import User
from server.config import Settings
from storage import audit_trail, desk
from storage.postgres import PostgresDatabase
from tests.realtime import Reader, client
from tests.servers import free_port, inprocess
from tests.test_desk import Site, events, site  # noqa: F401 (the fixture)
from tests.world import seed, seed_staff


async def duty(site: Site, officer: User, on: bool) -> None:  # noqa: F811
    status, _ = await site.call("PUT", "/duty", officer, {"on_duty": on})
    assert status == 200


async def ask(site: Site, body: str) -> None:  # noqa: F811
    w = site.world
    status, _ = await site.call(
        "POST", f"/conversations/{w.conv.id}/messages", w.relative, {"body": body}
    )
    assert status == 201


async def thread_of(site: Site, who: User) -> dict[str, Any]:  # noqa: F811
    status, got = await site.call("GET", f"/conversations/{site.world.conv.id}", who)
    assert status == 200, got
    return dict(got)


async def test_going_off_duty_returns_held_threads_to_the_queue(site: Site) -> None:  # noqa: F811
    """Officer Li holds Chen Mei's question and goes off duty: the thread is back in the
    queue (waiting, held by nobody, its wait start kept, so it is as late as it was), a
    colleague is told live and claims it, and the trail says why it moved."""
    w = site.world
    colleague = w.extra_officers[0]
    await duty(site, w.officer, True)
    await duty(site, colleague, True)
    await ask(site, "他的病好些了吗？")
    asked = await thread_of(site, w.officer)
    status, _ = await site.call("POST", f"/conversations/{w.conv.id}/claim", w.officer)
    assert status == 200
    async with Reader(client(site.ws, w.token(colleague))) as other:
        await other.watch(w.conv.id)
        await duty(site, w.officer, False)
        await other.until(lambda: any(e.event == "released" for e in events(other)))
        [released] = [e for e in events(other) if e.event == "released"]
        assert released == ConversationEvent(
            event="released",
            conv=w.conv.id,
            state="waiting",
            officer=None,
            by=w.officer.id,
            inmate=w.conv.inmate_id,
            relative=w.relative.id,
            cycle=1,
            waiting_since=datetime.fromisoformat(asked["waiting_since"]),
        )
    back = await thread_of(site, colleague)
    assert (back["state"], back["assigned_officer"]) == ("waiting", None)
    assert back["waiting_since"] == asked["waiting_since"]
    status, queue = await site.call("GET", "/conversations?state=waiting", colleague)
    assert [t["id"] for t in queue["conversations"]] == [w.conv.id]
    status, mine = await site.call("POST", f"/conversations/{w.conv.id}/claim", colleague)
    assert status == 200 and mine["assigned_officer"]["id"] == colleague.id  # not 409
    staff = await seed_staff(site.store, w)
    status, trail = await site.call(
        "GET", f"/audit?action=conversation.released&object_id={w.conv.id}", staff.admin
    )
    assert status == 200
    [entry] = trail["entries"]
    assert entry["actor"]["id"] == w.officer.id
    assert entry["before"]["officer_id"] == w.officer.id
    assert (entry["after"]["state"], entry["after"]["via"]) == ("waiting", "off_duty")


async def test_an_officer_off_duty_neither_claims_resolves_nor_is_handed_a_thread(
    site: Site,  # noqa: F811
) -> None:
    w = site.world
    colleague = w.extra_officers[0]
    await ask(site, "请问会见时间？")
    for action in ("claim", "resolve"):
        status, got = await site.call("POST", f"/conversations/{w.conv.id}/{action}", w.officer)
        assert (status, got["error"]["code"]) == (409, "off_duty"), (action, got)
    assert (await thread_of(site, w.officer))["state"] == "waiting"  # nothing changed
    await duty(site, w.officer, True)
    status, _ = await site.call("POST", f"/conversations/{w.conv.id}/claim", w.officer)
    assert status == 200
    handover = {"officer_id": colleague.id, "note": "请核对会见安排"}
    status, got = await site.call(
        "POST", f"/conversations/{w.conv.id}/transfer", w.officer, handover
    )
    assert (status, got["error"]["code"]) == (409, "off_duty")  # the colleague is off duty
    await duty(site, colleague, True)
    status, got = await site.call(
        "POST", f"/conversations/{w.conv.id}/transfer", w.officer, handover
    )
    assert status == 200 and got["assigned_officer"]["id"] == colleague.id


async def test_the_admin_unsticks_a_thread_whoever_holds_it(site: Site) -> None:  # noqa: F811
    """A thread held by an officer who is no longer on duty (said off without the release:
    stuck as before this fix): the admin finds it (it used to get 404) and hands it to an
    officer on duty, returns it to the queue with a note, and resolves it; each is audited
    with the admin as actor. It still reads no message."""
    w = site.world
    colleague = w.extra_officers[0]
    staff = await seed_staff(site.store, w)
    admin = staff.admin
    await ask(site, "零用钱什么时候到账？")
    now = datetime.now(UTC)
    await desk.change_duty(site.store, w.officer.id, [w.gaoming.id], True, now)
    await desk.claim(site.store, w.conv.id, w.officer.id, now)
    async with site.store.write() as sql:  # off duty, the thread still held
        await sql.execute("UPDATE duty SET on_duty = false WHERE user_id = $1", w.officer.id)
    await duty(site, colleague, True)

    status, listed = await site.call("GET", "/conversations?state=active", admin)
    assert status == 200 and [t["id"] for t in listed["conversations"]] == [w.conv.id]
    status, _ = await site.call("GET", f"/conversations/{w.conv.id}/messages", admin)
    assert status == 404  # the admin reads no conversation
    status, moved = await site.call(
        "POST",
        f"/conversations/{w.conv.id}/transfer",
        admin,
        {"officer_id": colleague.id, "note": "李警官已下班，请接手"},
    )
    assert status == 200 and moved["assigned_officer"]["id"] == colleague.id, moved
    status, back = await site.call(
        "POST", f"/conversations/{w.conv.id}/release", admin, {"note": "请值班干警接手"}
    )
    assert status == 200 and (back["state"], back["assigned_officer"]) == ("waiting", None)
    assert back["handover_note"] == "请值班干警接手"
    status, done = await site.call("POST", f"/conversations/{w.conv.id}/resolve", admin)
    assert status == 200 and done["state"] == "resolved"
    status, trail = await site.call("GET", f"/audit?object_id={w.conv.id}&actor={admin.id}", admin)
    assert sorted(e["action"] for e in trail["entries"]) == [
        "conversation.released",
        "conversation.resolved",
        "conversation.transferred",
    ]


async def test_going_off_duty_hands_held_threads_to_a_chosen_colleague_with_a_note(
    site: Site,  # noqa: F811
) -> None:
    """Hand-over (issue 16): going off duty hands every thread I hold to a colleague on duty,
    with a note, in one change; a colleague off duty (or of another prison) refuses the whole
    change, and I stay on duty holding them. Without a colleague, the note goes to the queue."""
    w = site.world
    colleague = w.extra_officers[0]
    await duty(site, w.officer, True)
    await ask(site, "请问会见要带什么？")
    status, _ = await site.call("POST", f"/conversations/{w.conv.id}/claim", w.officer)
    assert status == 200
    handover = {"on_duty": False, "hand_to": colleague.id, "note": "已告知规则，待家属回复日期"}
    status, refused = await site.call("PUT", "/duty", w.officer, handover)
    assert (status, refused["error"]["code"]) == (409, "off_duty")  # the colleague is off
    status, got = await site.call("GET", "/duty", w.officer)
    assert got["on_duty"] is True  # nothing changed
    assert (await thread_of(site, w.officer))["assigned_officer"]["id"] == w.officer.id
    status, refused = await site.call(
        "PUT", "/duty", w.officer, {**handover, "hand_to": w.other_officer.id}
    )
    assert (status, refused["error"]["field"]) == (400, "hand_to")  # not of this prison

    await duty(site, colleague, True)
    async with Reader(client(site.ws, w.token(colleague))) as other:
        await other.watch(w.conv.id)
        status, _ = await site.call("PUT", "/duty", w.officer, handover)
        assert status == 200
        await other.until(lambda: any(e.event == "transferred" for e in events(other)))
        [moved] = [e for e in events(other) if e.event == "transferred"]
        assert (moved.officer, moved.by, moved.note) == (
            colleague.id,
            w.officer.id,
            "已告知规则，待家属回复日期",
        )
    mine = await thread_of(site, colleague)
    assert (mine["state"], mine["assigned_officer"]["id"]) == ("active", colleague.id)
    assert mine["handover_note"] == "已告知规则，待家属回复日期"

    # the colleague leaves with no one to hand to: the thread and the note go to the queue
    await duty(site, w.officer, True)
    status, _ = await site.call("PUT", "/duty", colleague, {"on_duty": False, "note": "请跟进"})
    assert status == 200
    back = await thread_of(site, w.officer)
    assert (back["state"], back["assigned_officer"], back["handover_note"]) == (
        "waiting",
        None,
        "请跟进",
    )


async def test_a_holder_disconnected_past_the_grace_loses_its_threads(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Routing (issue 16): an officer whose console lost its connection still said it is on
    duty, so its threads stayed held by someone not there. Disconnected longer than
    ``KINLINE_HOLD_GRACE`` (here 0.5 s), its threads go back to the queue, told live to its
    colleagues and audited as done by the system (``via: disconnected``); a holder still
    connected keeps its own."""
    world = await seed(pg_store, extra_officers=1)
    colleague = world.extra_officers[0]
    settings = Settings(
        database_url=pg_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        port=free_port(),
        secret="holds",
        hold_grace=0.5,
    )
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        here = Site(served.http_url + "/api/v1", served.ws_url, http, pg_store, world)
        for officer in (world.officer, colleague):
            await duty(here, officer, True)
        await ask(here, "他最近怎么样？")
        status, _ = await here.call(
            "POST", f"/conversations/{world.conv_b.id}/messages", world.relative_b, {"body": "?"}
        )
        async with Reader(client(here.ws, world.token(colleague))) as other:
            await other.watch(world.conv.id)
            async with Reader(client(here.ws, world.token(world.officer))):
                status, _ = await here.call(
                    "POST", f"/conversations/{world.conv.id}/claim", world.officer
                )
                assert status == 200
                status, _ = await here.call(
                    "POST", f"/conversations/{world.conv_b.id}/claim", colleague
                )
                assert status == 200
            # Officer Li's only socket closed: after the grace its thread is released
            await other.until(lambda: any(e.event == "released" for e in events(other)))
            [released] = [e for e in events(other) if e.event == "released"]
            assert (released.conv, released.state, released.by) == (world.conv.id, "waiting", None)
        back = await thread_of(here, colleague)
        assert (back["state"], back["assigned_officer"]) == ("waiting", None)
        status, kept = await here.call("GET", f"/conversations/{world.conv_b.id}", colleague)
        assert kept["assigned_officer"]["id"] == colleague.id  # was connected: kept
        entries = await audit_trail.audit_entries(pg_store, action="conversation.released")
        assert [(e.actor_id, (e.after or {})["via"]) for e in entries] == [(None, "disconnected")]
