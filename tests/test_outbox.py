"""An officer's answer reaching a relative who is not on the page, through the outbox:
real HTTP to the aiohttp app on SQLite and PostgreSQL, and local fakes of the WeChat
platform, a Web Push service (which decrypts what it gets) and an SMS gateway.

What the relative notices: the answer arrives in WeChat (the text itself within the 48-hour
window, otherwise a template message without the body), or as a push or an SMS that never
carries the body; once, however the platform fails meanwhile; nothing while it is on the page
or after it opted out; nothing lost when the server restarts. What staff notice: per message,
how it reached the relative.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from domain.records import NewMessage
from server.config import Settings
from server.push import generate_key
from storage import links, messages, outbox, prisons, wechat
from storage.postgres import PostgresDatabase
from storage.sql import Database, utcnow
from tests import fake_outside as fx
from tests.realtime import Reader, client
from tests.servers import Served, free_port, inprocess
from tests.world import World, seed

VAPID = generate_key()
ANSWER = "您好，您儿子身体很好，请放心。"  # what must never leave by push or SMS


@dataclass
class Site:
    served: Served
    http: aiohttp.ClientSession
    store: Database
    world: World
    wx: fx.FakeWeChat
    push: fx.FakePushService
    sms: fx.FakeSms
    settings: Settings

    async def api(
        self, method: str, path: str, who: Any = None, json: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.world.token(who)}"} if who else {}
        async with self.http.request(
            method, f"{self.served.http_url}/api/v1{path}", json=json, headers=headers
        ) as response:
            return response.status, await response.json()

    async def bind(self, who: Any, openid: str) -> None:
        status, answer = await self.api(
            "POST", "/wechat/bind", who, {"code": self.wx.code_for(openid)}
        )
        assert status == 200, answer

    async def answer(self, body: str = ANSWER, conv: int | None = None) -> int:
        status, sent = await self.api(
            "POST",
            f"/conversations/{conv or self.world.conv.id}/messages",
            self.world.officer,
            {"body": body},
        )
        assert status == 201, sent
        return int(sent["id"])

    async def settled(self, message_id: int, timeout: float = 10.0) -> outbox.Delivery:
        """The message's notification once it is no longer pending (bounded: the relay's own
        settle is what ends the wait; each look is a storage read, no fixed sleep)."""
        async with asyncio.timeout(timeout):
            while True:
                found = await outbox.deliveries(self.store, [message_id])
                if found and found[0].state != "pending":
                    return found[0]
                await asyncio.sleep(0.02)


def settings_for(wx: str, push: str, sms: str, **more: Any) -> Settings:
    return Settings(
        port=free_port(),
        secret="outbox",
        send_rate=100,
        send_burst=100,
        wechat_appid=fx.APPID,
        wechat_secret=fx.SECRET,
        wechat_token=fx.TOKEN,
        wechat_api=wx,
        wechat_template_id="TPL-answered",
        public_url="https://kinline.example.org",
        vapid_key=VAPID,
        vapid_subject="mailto:ops@kinline.example.org",
        push_endpoints=(push + "/push/",),
        sms_url=sms + "/sms",
        outbox_poll=0.05,
        outbox_backoff=0.05,
        **more,
    )


@asynccontextmanager
async def running(store: Database, world: World, **more: Any) -> AsyncIterator[Site]:
    wx, push, sms = fx.FakeWeChat(), fx.FakePushService(), fx.FakeSms()
    async with fx.serve(wx) as wx_url, fx.serve(push) as push_url, fx.serve(sms) as sms_url:
        settings = settings_for(wx_url, push_url, sms_url, **more)
        async with inprocess(settings, store) as served, aiohttp.ClientSession() as http:
            yield Site(served, http, store, world, wx, push, sms, settings)


@pytest.fixture
async def site(store: Database) -> AsyncIterator[Site]:
    world = await seed(store)
    async with running(store, world) as site:
        yield site


async def open_window(site: Site, openid: str = "o-chen") -> None:
    """The relative wrote from WeChat: customer-service messages are allowed for 48 h."""
    await wechat.heard_from(site.store, site.world.relative.id, utcnow())


CUSTOM = "/cgi-bin/message/custom/send"
TEMPLATE = "/cgi-bin/message/template/send"


async def test_an_answer_reaches_wechat_as_a_customer_service_message(site: Site) -> None:
    w = site.world
    await site.bind(w.relative, "o-chen")
    await open_window(site)
    message_id = await site.answer()
    await site.wx.until(lambda: len(site.wx.of(CUSTOM)) == 1)
    call = site.wx.of(CUSTOM)[0]
    assert call.body == {
        "touser": "o-chen",
        "msgtype": "text",
        "text": {"content": f"Officer Li：{ANSWER}"},
    }
    assert call.query["access_token"] in site.wx.tokens
    done = await site.settled(message_id)
    assert (done.state, done.channel, done.attempts) == ("sent", "wechat", 1)
    status, shown = await site.api("GET", f"/conversations/{w.conv.id}/deliveries", w.officer)
    assert status == 200
    assert [(d["seq"], d["state"], d["channel"]) for d in shown["items"]] == [(1, "sent", "wechat")]
    status, _ = await site.api("GET", f"/conversations/{w.conv.id}/deliveries", w.relative_b)
    assert status == 404
    assert len(site.wx.of(CUSTOM)) == 1 and site.wx.of(TEMPLATE) == []


async def test_outside_the_window_a_template_without_the_body(site: Site) -> None:
    w = site.world
    await site.bind(w.relative, "o-chen")  # never wrote from WeChat: no window
    message_id = await site.answer()
    await site.wx.until(lambda: len(site.wx.of(TEMPLATE)) == 1)
    call = site.wx.of(TEMPLATE)[0]
    assert call.body["touser"] == "o-chen" and call.body["template_id"] == "TPL-answered"
    assert call.body["url"] == f"https://kinline.example.org/app#/inmate/{w.conv.inmate_id}"
    assert ANSWER not in call.raw.decode() and "Chen Jian" in call.raw.decode()
    assert (await site.settled(message_id)).channel == "template"
    assert site.wx.of(CUSTOM) == []


async def test_out_of_time_limit_falls_back_to_a_template(site: Site) -> None:
    await site.bind(site.world.relative, "o-chen")
    await open_window(site)
    site.wx.fail(CUSTOM, 1, answer={"errcode": 45015, "errmsg": "response out of time limit"})
    message_id = await site.answer()
    done = await site.settled(message_id)
    assert (done.state, done.channel) == ("sent", "template")
    assert len(site.wx.of(CUSTOM)) == 1 and len(site.wx.of(TEMPLATE)) == 1


async def test_retried_while_the_platform_fails_and_sent_once_when_it_recovers(site: Site) -> None:
    await site.bind(site.world.relative, "o-chen")
    await open_window(site)
    site.wx.fail(CUSTOM, 2, answer={"errcode": -1, "errmsg": "system error"})
    site.wx.fail(CUSTOM, 1, status=503)
    message_id = await site.answer()
    done = await site.settled(message_id)
    assert (done.state, done.channel, done.attempts) == ("sent", "wechat", 4)
    assert len(site.wx.of(CUSTOM)) == 4  # three failures, one success, nothing after it
    (row,) = await outbox.deliveries(site.store, [message_id])
    tried = await outbox.attempts(site.store, row.id)
    assert [ok for _, ok, _ in tried] == [False, False, False, True]
    assert "system error" in tried[0][2] and "503" in tried[2][2]


async def test_the_token_is_fetched_again_when_the_platform_calls_it_invalid(site: Site) -> None:
    await site.bind(site.world.relative, "o-chen")
    await open_window(site)
    first = await site.answer("first answer")
    await site.settled(first)
    site.wx.revoke_tokens()  # "invalid credential" from now on for the cached token
    second = await site.answer("second answer")
    assert (await site.settled(second)).state == "sent"
    assert len(site.wx.of("/cgi-bin/token")) == 2
    sends = site.wx.of(CUSTOM)
    assert [c.body["text"]["content"] for c in sends] == [
        "Officer Li：first answer",
        "Officer Li：second answer",  # refused once with the revoked token
        "Officer Li：second answer",
    ]


async def test_nothing_for_a_connected_relative_nor_one_that_opted_out(site: Site) -> None:
    w = site.world
    await site.bind(w.relative, "o-chen")
    await open_window(site)
    ws = site.served.ws_url
    async with Reader(client(ws, w.token(w.relative))) as relative:
        await relative.watch(w.conv.id, after=0)
        message_id = await site.answer("seen live")
        await relative.until_seq(w.conv.id, 1)
        done = await site.settled(message_id)
        assert (done.state, done.detail) == ("skipped", "connected: seen live")

    status, chosen = await site.api("PUT", "/notifications", w.relative, {"channel": "none"})
    assert (status, chosen["channel"]) == (200, "none")
    opted_out = await site.answer("after opting out")
    assert await outbox.deliveries(site.store, [opted_out]) == []  # not even stored
    assert site.wx.of(CUSTOM) == [] and site.wx.of(TEMPLATE) == []


async def test_a_push_carries_no_body_and_a_gone_device_is_removed(site: Site) -> None:
    w = site.world
    phone, tablet = site.push.device("phone"), site.push.device("tablet")
    status, key = await site.api("GET", "/push/key", w.relative)
    assert status == 200
    for device in (phone, tablet):
        status, _ = await site.api("POST", "/push/subscriptions", w.relative, device.subscription)
        assert status == 201
    refused = dict(phone.subscription, endpoint="http://10.0.0.5/push/x")
    status, error = await site.api("POST", "/push/subscriptions", w.relative, refused)
    assert (status, error["error"]["code"]) == (400, "endpoint_refused")
    site.push.gone.add("tablet")
    message_id = await site.answer()
    await site.push.until(lambda: len(site.push.received) == 1)
    name, payload = site.push.received[0]
    assert name == "phone"
    assert ANSWER not in json.dumps(payload, ensure_ascii=False)
    assert "Chen Jian" in payload["body"]
    assert payload["url"] == f"https://kinline.example.org/app#/inmate/{w.conv.inmate_id}"
    vapid = fx.FakePushService.check_vapid(site.push.of("/push/phone")[0].headers["Authorization"])
    assert vapid == key["key"]
    done = await site.settled(message_id)
    assert (done.state, done.channel) == ("sent", "push")
    status, mine = await site.api("GET", "/notifications", w.relative)
    assert [d["endpoint"] for d in mine["devices"]] == [phone.endpoint]  # the gone one removed


async def test_further_answers_coalesce_until_read(site: Site) -> None:
    w = site.world
    device = site.push.device("phone")
    await site.api("POST", "/push/subscriptions", w.relative, device.subscription)
    first = await site.answer("one")
    assert (await site.settled(first)).channel == "push"
    second = await site.answer("two")
    done = await site.settled(second)
    assert (done.state, done.detail) == ("skipped", "coalesced: told recently, not read since")
    await messages.mark_read(site.store, w.conv.id, w.relative.id, 2)  # it read them
    third = await site.answer("three")
    assert (await site.settled(third)).channel == "push"
    assert len(site.push.received) == 2


async def test_sms_for_a_relative_that_chose_it(site: Site) -> None:
    w = site.world
    async with site.store.write() as sql:
        await sql.execute("UPDATE users SET phone = $1 WHERE id = $2", "13800000001", w.relative.id)
    await site.api("PUT", "/notifications", w.relative, {"channel": "sms"})
    site.sms.fail("/sms", 1, status=502)
    message_id = await site.answer()
    done = await site.settled(message_id)
    assert (done.state, done.channel, done.attempts) == ("sent", "sms", 2)
    text = site.sms.of("/sms")[-1].body
    assert text["phone"] == "13800000001"
    assert ANSWER not in text["text"] and "Chen Jian" in text["text"]


async def test_a_link_decision_notifies_the_same_way(site: Site) -> None:
    w = site.world
    device = site.push.device("phone")
    await site.api("POST", "/push/subscriptions", w.relative, device.subscription)
    inmate = await prisons.add_inmate(site.store, w.gaoming.id, "GM-009", "Chen Hao")
    link = await links.request_link(site.store, w.relative.id, inmate.id, "mother", "register")
    await links.decide_link(site.store, link, "verified", w.officer.id, None)
    await site.push.until(lambda: len(site.push.received) == 1)
    assert site.push.received[0][1]["body"] == "您的亲属关系申请已核实通过"


async def test_nothing_is_lost_across_a_restart(store: Database) -> None:
    """An answer committed while no server runs, and one claimed by a server that died with
    it leased: both go out once a server runs again (the second once its lease is over)."""
    world = await seed(store)
    async with running(store, world) as site:
        await site.bind(world.relative, "o-chen")
        await open_window(site)
    # no server: an answer stored meanwhile (written by the database in the same transaction)
    (stored,) = await store.append_messages(
        [NewMessage(world.conv.id, world.officer.id, "officer", "c-1", "while down", "text")]
    )
    assert stored is not None
    (row,) = await outbox.deliveries(store, [stored.message.id])
    assert row.state == "pending"
    # a dead sender's claim: leased, never settled
    (stored2,) = await store.append_messages(
        [NewMessage(world.conv.id, world.officer.id, "officer", "c-2", "claimed then lost")]
    )
    assert stored2 is not None
    claimed = await outbox.claim(store, utcnow(), 0.5, 1)
    assert [c.message_id for c in claimed] == [stored.message.id]
    async with running(store, world) as site:
        first = await site.settled(stored.message.id)
        second = await site.settled(stored2.message.id)
        assert (first.state, second.state) == ("sent", "sent")
        bodies = [c.body["text"]["content"] for c in site.wx.of(CUSTOM)]
        assert sorted(bodies) == ["Officer Li：claimed then lost", "Officer Li：while down"]
        assert first.attempts == 2  # the lost claim counted, then the one that sent


async def test_two_processes_send_each_notification_once(
    pg_store: PostgresDatabase, redis_url: str, redis_prefix: str
) -> None:
    """Two servers on one PostgreSQL claim from the same outbox (FOR UPDATE SKIP LOCKED):
    every answer reaches the platform exactly once."""
    world = await seed(pg_store)
    wx, push, sms = fx.FakeWeChat(), fx.FakePushService(), fx.FakeSms()
    async with fx.serve(wx) as wx_url, fx.serve(push) as push_url, fx.serve(sms) as sms_url:
        common = {"redis_url": redis_url, "redis_prefix": redis_prefix}
        a_settings = settings_for(wx_url, push_url, sms_url, **common)
        b_settings = settings_for(wx_url, push_url, sms_url, **common)
        async with (
            inprocess(a_settings, pg_store) as a,
            inprocess(b_settings, pg_store) as b,
            aiohttp.ClientSession() as http,
        ):
            site = Site(a, http, pg_store, world, wx, push, sms, a_settings)
            await site.bind(world.relative, "o-chen")
            await open_window(site)
            count = 40
            items = [
                NewMessage(world.conv.id, world.officer.id, "officer", f"m-{n}", f"answer {n}")
                for n in range(count)
            ]
            await pg_store.append_messages(items)
            await wx.until(lambda: len(wx.of(CUSTOM)) >= count)
            ids = [
                m.id for m in await messages.messages(pg_store, world.conv.id, after=0, limit=100)
            ]
            for message_id in ids:
                assert (await site.settled(message_id)).state == "sent"
            bodies = [c.body["text"]["content"] for c in wx.of(CUSTOM)]
            assert sorted(bodies) == sorted(f"Officer Li：answer {n}" for n in range(count))
            del b  # (both served; which one sent which is theirs to decide)


async def test_visit_and_complaint_decisions_owe_a_notification_in_their_transaction(
    store: Database,
) -> None:
    """The triggers of migration 0008 on both databases: a decided visit request and an
    answered complaint each write one outbox row, for a relative with a way to be told; a
    relative without one gets none."""
    world = await seed(store)
    db = store
    now = utcnow()
    await outbox.add_device(
        db, world.relative.id, "https://push.example.org/x", "k" * 16, "a" * 16, now
    )
    async with db.write() as sql:
        for relative in (world.relative, world.relative_b):  # relative_b has no channel
            visit = await sql.fetchval(
                "INSERT INTO visit_requests (inmate_id, relative_id, slot_start, visitors,"
                " created_at) VALUES ($1, $2, $3, 1, $3) RETURNING id",
                world.conv.inmate_id if relative is world.relative else world.conv_b.inmate_id,
                relative.id,
                now,
            )
            await sql.execute("UPDATE visit_requests SET state = 'approved' WHERE id = $1", visit)
        complaint = await sql.fetchval(
            "INSERT INTO complaints (reference, prison_id, complainant_id, category, body,"
            " deadline, created_at) VALUES ('T-1', $1, $2, 'service', 'slow', $3, $3)"
            " RETURNING id",
            world.gaoming.id,
            world.relative.id,
            now,
        )
        await sql.execute("UPDATE complaints SET state = 'in_review' WHERE id = $1", complaint)
        await sql.execute("UPDATE complaints SET state = 'answered' WHERE id = $1", complaint)
    async with db.read() as sql:
        rows = await sql.fetch("SELECT relative_id, event, decision, state FROM outbox ORDER BY id")
    assert [(r["relative_id"], r["event"], r["decision"], r["state"]) for r in rows] == [
        (world.relative.id, "visit", "approved", "pending"),
        (world.relative.id, "complaint", "answered", "pending"),
    ]


async def test_one_access_token_is_fetched_for_every_process(pg_store: PostgresDatabase) -> None:
    """Several processes (here: several platform clients on one PostgreSQL) wanting a token
    at once: one fetches it, the others take the stored one."""
    from server.wechat_platform import Platform

    wx = fx.FakeWeChat()
    async with fx.serve(wx) as wx_url:
        settings = settings_for(wx_url, wx_url, wx_url)
        platforms = [Platform(settings, pg_store) for _ in range(4)]
        try:
            tokens = await asyncio.gather(*(p.token() for p in platforms))
        finally:
            for platform in platforms:
                await platform.close()
    assert len(set(tokens)) == 1
    assert len(wx.of("/cgi-bin/token")) == 1


async def test_a_relative_connected_to_one_process_counts_as_connected_on_another(
    redis_url: str, redis_prefix: str
) -> None:
    """Presence in Redis: process A holds the relative's socket; process B's relay, asked
    whether it is connected, says yes; once A's last socket for it closes, no."""
    from channels.presence import RedisPresence
    from server.online import Online

    local_a: set[int] = set()
    a = Online(
        RedisPresence(redis_url, key_prefix=f"{redis_prefix}online:"), lambda: local_a, ttl=30
    )
    b = Online(RedisPresence(redis_url, key_prefix=f"{redis_prefix}online:"), set, ttl=30)
    try:
        assert not await b.connected(7)
        local_a.add(7)
        a.joined(7)
        async with asyncio.timeout(5):
            while not await b.connected(7):  # the heartbeat is written by a task of A's
                await asyncio.sleep(0.01)
        local_a.discard(7)
        a.left(7)
        async with asyncio.timeout(5):
            while await b.connected(7):
                await asyncio.sleep(0.01)
    finally:
        await a.close()
        await b.close()


async def test_without_the_wechat_settings_binding_is_404_and_push_still_works(
    store: Database,
) -> None:
    world = await seed(store)
    settings = Settings(port=free_port(), secret="off", vapid_key=VAPID)
    async with inprocess(settings, store) as served, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {world.token(world.relative)}"}
        async with http.get(f"{served.http_url}/api/v1/wechat/bind", headers=headers) as response:
            assert response.status == 404
        async with http.get(f"{served.http_url}/api/v1/notifications", headers=headers) as response:
            shown = await response.json()
        assert shown == {
            "channel": "auto",
            "devices": [],
            "wechat_bound": False,
            "wechat_available": False,
        }
        async with http.get(f"{served.http_url}/api/v1/push/key", headers=headers) as response:
            assert response.status == 200 and len((await response.json())["key"]) == 87


async def test_decisions_reach_wechat_as_templates_that_open_their_page(site: Site) -> None:
    """A link, visit or complaint decision carries no message: a template message, its
    link the page where the relative reads the decision (a visit: its inmate's visits)."""
    w = site.world
    await site.bind(w.relative, "o-chen")
    await open_window(site)  # even in the window: a decision has no text to carry
    inmate = await prisons.add_inmate(site.store, w.gaoming.id, "GM-010", "Chen Hao")
    link = await links.request_link(site.store, w.relative.id, inmate.id, "mother", "register")
    await links.decide_link(site.store, link, "verified", w.officer.id, None)
    now = utcnow()
    async with site.store.write() as sql:
        visit = await sql.fetchval(
            "INSERT INTO visit_requests (inmate_id, relative_id, slot_start, visitors,"
            " created_at) VALUES ($1, $2, $3, 1, $3) RETURNING id",
            w.conv.inmate_id,
            w.relative.id,
            now,
        )
        await sql.execute("UPDATE visit_requests SET state = 'declined' WHERE id = $1", visit)
        complaint = await sql.fetchval(
            "INSERT INTO complaints (reference, prison_id, complainant_id, category, body,"
            " deadline, created_at) VALUES ('T-2', $1, $2, 'service', 'slow', $3, $3)"
            " RETURNING id",
            w.gaoming.id,
            w.relative.id,
            now,
        )
        await sql.execute("UPDATE complaints SET state = 'in_review' WHERE id = $1", complaint)
        await sql.execute("UPDATE complaints SET state = 'answered' WHERE id = $1", complaint)
    await site.wx.until(lambda: len(site.wx.of(TEMPLATE)) == 3)
    sent = sorted((c.body["url"], c.body["data"]["first"]["value"]) for c in site.wx.of(TEMPLATE))
    base = "https://kinline.example.org/app"
    assert sent == sorted(
        [
            (f"{base}#/links", "您的亲属关系申请已核实通过"),
            (f"{base}#/inmate/{w.conv.inmate_id}/visits", "您的会见申请未获批准"),
            (f"{base}#/complaints", "您的投诉已有答复"),
        ]
    )
    assert site.wx.of(CUSTOM) == []
    async with site.store.read() as sql:
        rows = await sql.fetch("SELECT event, state, channel FROM outbox ORDER BY id")
    async with asyncio.timeout(10):
        while any(r["state"] == "pending" for r in rows):
            await asyncio.sleep(0.02)
            async with site.store.read() as sql:
                rows = await sql.fetch("SELECT event, state, channel FROM outbox ORDER BY id")
    assert [(r["event"], r["state"], r["channel"]) for r in rows] == [
        ("link", "sent", "template"),
        ("visit", "sent", "template"),
        ("complaint", "sent", "template"),
    ]


async def test_a_refusal_that_will_not_pass_fails_at_once_and_staff_see_why(site: Site) -> None:
    """The platform refuses the template for good (43004: the user no longer follows the
    account): no retry, ``failed`` with the platform's reason, shown to staff per message."""
    w = site.world
    await site.bind(w.relative, "o-chen")  # no window: a template message
    site.wx.fail(TEMPLATE, 1, answer={"errcode": 43004, "errmsg": "require subscribe"})
    message_id = await site.answer()
    done = await site.settled(message_id)
    assert (done.state, done.channel, done.attempts) == ("failed", "template", 1)
    assert done.detail is not None and "43004" in done.detail
    assert len(site.wx.of(TEMPLATE)) == 1
    status, shown = await site.api("GET", f"/conversations/{w.conv.id}/deliveries", w.officer)
    assert status == 200
    [item] = shown["items"]
    assert (item["seq"], item["state"], item["channel"], item["attempts"]) == (
        1,
        "failed",
        "template",
        1,
    )
    assert "require subscribe" in item["detail"]


async def test_a_platform_failing_past_the_last_attempt_is_failed_not_sent_late(
    store: Database,
) -> None:
    world = await seed(store)
    async with running(store, world, outbox_max_attempts=3) as site:
        await site.bind(world.relative, "o-chen")
        await open_window(site)
        site.wx.fail(CUSTOM, 10, answer={"errcode": -1, "errmsg": "system error"})
        message_id = await site.answer()
        done = await site.settled(message_id)
        assert (done.state, done.channel, done.attempts) == ("failed", "wechat", 3)
        assert done.detail is not None and done.detail.startswith("gave up: ")
        assert len(site.wx.of(CUSTOM)) == 3
        (row,) = await outbox.deliveries(site.store, [message_id])
        assert [ok for _, ok, _ in await outbox.attempts(site.store, row.id)] == [False] * 3


async def test_an_expired_token_is_fetched_again(site: Site) -> None:
    """42001 "access_token expired" is a refresh like 40001: a new token, the same call
    once more, sent once."""
    await site.bind(site.world.relative, "o-chen")
    await open_window(site)
    site.wx.fail(CUSTOM, 1, answer={"errcode": 42001, "errmsg": "access_token expired"})
    message_id = await site.answer()
    done = await site.settled(message_id)
    assert (done.state, done.channel, done.attempts) == ("sent", "wechat", 1)
    assert len(site.wx.of("/cgi-bin/token")) == 2 and len(site.wx.of(CUSTOM)) == 2
    first, second = (c.query["access_token"] for c in site.wx.of(CUSTOM))
    assert first != second


async def test_the_shared_token_is_kept_until_a_minute_before_it_expires(store: Database) -> None:
    """The stored token is taken while good for another minute; past that, one fetch."""
    from datetime import timedelta

    fetched: list[int] = []

    async def fetch() -> tuple[str, int]:
        fetched.append(1)
        return f"token-{len(fetched)}", 7200

    now = utcnow()
    first = await wechat.refresh_token(store, fx.APPID, now, fetch)
    assert first == "token-1" and await wechat.cached_token(store, fx.APPID, now) == first
    # kept 5 minutes less than the platform's 7200 s, and not taken in its last minute
    assert await wechat.cached_token(store, fx.APPID, now + timedelta(seconds=6800)) == first
    late = now + timedelta(seconds=6850)
    assert await wechat.cached_token(store, fx.APPID, late) is None
    assert await wechat.refresh_token(store, fx.APPID, late, fetch) == "token-2"
    # a refresher that finds a good token other than the one refused takes it, no fetch
    assert await wechat.refresh_token(store, fx.APPID, late, fetch, stale="token-1") == "token-2"
    assert len(fetched) == 2


async def test_a_family_case_member_writes_from_wechat_into_the_shared_thread_and_is_told(
    site: Site,
) -> None:
    """A family case (one thread for the inmate's verified relatives): a second relative's
    WeChat text lands in the shared thread, and the officer's answer there reaches both
    relatives by WeChat, each once."""
    from storage import consent

    w = site.world
    second = await links.request_link(
        site.store, w.stranger.id, w.conv.inmate_id, "sister", "household register"
    )
    await links.decide_link(site.store, second, "verified", w.officer.id, None)
    now = utcnow()
    await consent.set_family_case(
        site.store,
        inmate_id=w.conv.inmate_id,
        enabled=True,
        decided_on=now.date(),
        witness="Officer Li",
        note="",
        actor_id=w.officer.id,
        now=now,
    )
    await site.bind(w.relative, "o-chen")
    await site.bind(w.stranger, "o-stranger")
    query = fx.signed_query()
    async with site.http.post(
        fx.wechat_url(site.served.http_url, query),
        data=fx.text_xml("o-stranger", "我是他姐姐，想问问他的情况", 5501).encode(),
    ) as response:
        assert (response.status, await response.text()) == (200, "success")
    [asked] = await messages.messages(site.store, w.conv.id, after=0, limit=10)
    assert (asked.sender_id, asked.cid) == (w.stranger.id, "5501")
    await open_window(site)  # the first relative wrote from WeChat too: both in the window
    message_id = await site.answer("他很好，请两位放心。")
    await site.wx.until(lambda: len(site.wx.of(CUSTOM)) == 2)
    assert sorted(c.body["touser"] for c in site.wx.of(CUSTOM)) == ["o-chen", "o-stranger"]
    rows = await outbox.deliveries(site.store, [message_id])
    assert len(rows) == 2
    async with asyncio.timeout(10):  # each settled by the relay right after the platform's answer
        while any(d.state == "pending" for d in await outbox.deliveries(site.store, [message_id])):
            await asyncio.sleep(0.02)
    assert [(d.state, d.channel) for d in await outbox.deliveries(site.store, [message_id])] == [
        ("sent", "wechat"),
        ("sent", "wechat"),
    ]
