"""The WeChat Official Account channel, end to end over real HTTP: the platform's requests
built and signed as it builds them (plaintext and safe mode), a local fake of its API, and
both stores (SQLite and PostgreSQL).

What a relative in WeChat notices: the account answers URL verification; following it tells
how to bind; binding from the app; a text that arrives in its conversation once, however
often the platform retries; an officer's socket on another server process getting it; and
every refusal (signature, replay, malformed XML, unknown or unverified sender) storing
nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from channels.protocol import Subscribed
from server.config import Settings
from server.keys import OBJECTS
from server.wechat import BIND_HINT, CHOSEN, IMAGE_FAILED, NOT_VERIFIED, ONLY_TEXT
from storage import audit_trail, conversations, figures, links, messages, prisons, wechat
from storage.postgres import PostgresDatabase
from storage.sql import Database, utcnow
from tests import fake_outside as fx
from tests.realtime import Reader, client
from tests.servers import ServerProcess, free_port, inprocess
from tests.world import World, seed


def settings_for(store: Database, api: str, **more: Any) -> Settings:
    return Settings(
        port=free_port(),
        secret="wechat",
        send_rate=100,
        send_burst=100,
        wechat_appid=fx.APPID,
        wechat_secret=fx.SECRET,
        wechat_token=fx.TOKEN,
        wechat_api=api,
        outbox_poll=0.05,
        **more,
    )


@dataclass
class Site:
    base: str
    http: aiohttp.ClientSession
    store: Database
    world: World
    fake: fx.FakeWeChat
    app: web.Application | None = None  # in-process servers only

    async def api(
        self, method: str, path: str, who: Any = None, json: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.world.token(who)}"} if who else {}
        async with self.http.request(
            method, f"{self.base}/api/v1{path}", json=json, headers=headers
        ) as response:
            return response.status, await response.json()

    async def post(self, query: dict[str, str], body: str) -> tuple[int, str]:
        async with self.http.post(fx.wechat_url(self.base, query), data=body.encode()) as response:
            return response.status, await response.text()

    async def bind(self, who: Any, openid: str) -> None:
        status, answer = await self.api(
            "POST", "/wechat/bind", who, {"code": self.fake.code_for(openid)}
        )
        assert status == 200, answer

    async def messages(self, conv: int) -> list[Any]:
        return await messages.messages(self.store, conv, after=0, limit=100)


def reply_text(xml: str) -> str:
    """The Content of a passive text reply."""
    node = ElementTree.fromstring(xml).find("Content")
    assert node is not None and node.text is not None, xml
    return node.text


@pytest.fixture
async def site(store: Database, tmp_path: Path) -> AsyncIterator[Site]:
    world = await seed(store)
    fake = fx.FakeWeChat()
    async with fx.serve(fake) as api:
        settings = settings_for(store, api, files=str(tmp_path / "files"))
        async with inprocess(settings, store) as served, aiohttp.ClientSession() as http:
            yield Site(served.http_url, http, store, world, fake, served.app)


async def test_url_verification_answers_echostr_only_to_a_signed_request(site: Site) -> None:
    query = fx.signed_query(echostr="4713901275921718245")
    async with site.http.get(fx.wechat_url(site.base, query)) as response:
        assert (response.status, await response.text()) == (200, "4713901275921718245")
    query["signature"] = fx.sign("not-the-token", query["timestamp"], query["nonce"])
    async with site.http.get(fx.wechat_url(site.base, query)) as response:
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "bad_signature"


async def test_without_the_wechat_settings_the_channel_is_404(store: Database) -> None:
    await seed(store)
    settings = Settings(port=free_port(), secret="off")
    async with inprocess(settings, store) as served, aiohttp.ClientSession() as http:
        query = fx.signed_query(echostr="x")
        async with http.get(fx.wechat_url(served.http_url, query)) as response:
            assert response.status == 404
        async with http.post(fx.wechat_url(served.http_url, query), data=b"<xml/>") as response:
            assert response.status == 404
        signin = f"{served.http_url}/api/v1/wechat/signin"
        async with http.post(signin, json={"code": "abc"}) as response:
            assert response.status == 404


async def test_followers_are_counted_and_an_unbound_one_is_told_how_to_bind(site: Site) -> None:
    status, answer = await site.post(fx.signed_query(), fx.event_xml("o-follower-1", "subscribe"))
    assert status == 200 and reply_text(answer) == BIND_HINT
    await site.post(fx.signed_query(), fx.event_xml("o-follower-2", "subscribe"))
    assert await wechat.followers(site.store) == 2
    status, answer = await site.post(fx.signed_query(), fx.event_xml("o-follower-2", "unsubscribe"))
    assert (status, answer) == (200, "success")
    assert await wechat.followers(site.store) == 1
    zone = ZoneInfo("Asia/Shanghai")
    today = utcnow().astimezone(zone).date()
    (figured,) = await figures.bureau_figures(site.store, today, today, zone, utcnow())
    assert figured.wechat_followers == 1  # the bureau figures count them

    # an unbound follower's text: the same hint, nothing stored anywhere
    status, answer = await site.post(fx.signed_query(), fx.text_xml("o-follower-1", "hello", 1))
    assert reply_text(answer) == BIND_HINT
    assert await site.messages(site.world.conv.id) == []


async def test_refusals_store_nothing(site: Site) -> None:
    w = site.world
    await site.bind(w.relative, "o-chen")
    conv = w.conv.id
    text = fx.text_xml("o-chen", "a question", 9001)

    forged = fx.signed_query("not-the-token")
    status, answer = await site.post(forged, text)
    assert status == 403 and '"bad_signature"' in answer

    old = fx.signed_query(timestamp=int(time.time()) - 3600)  # an hour ago
    status, answer = await site.post(old, text)
    assert status == 403 and '"stale_request"' in answer

    status, answer = await site.post(fx.signed_query(), "<xml><FromUserName>o-chen")
    assert status == 400 and '"invalid_request"' in answer
    status, answer = await site.post(fx.signed_query(), "not xml at all")
    assert status == 400

    status, answer = await site.post(fx.signed_query(), fx.event_xml("o-forged", "subscribe"))
    assert status == 200  # (a genuine request, for the count below)
    forged = fx.signed_query("not-the-token")
    await site.post(forged, fx.event_xml("o-forged-2", "subscribe"))
    assert await wechat.followers(site.store) == 1
    assert await site.messages(conv) == []


async def test_binding_is_audited_shown_and_ended_by_the_relative(site: Site) -> None:
    w = site.world
    status, shown = await site.api("GET", "/wechat/bind", w.relative)
    assert status == 200 and shown["bound"] is False
    assert shown["authorize_url"].startswith("https://open.weixin.qq.com/connect/oauth2/")
    assert "scope=snsapi_base" in shown["authorize_url"]

    status, bad = await site.api("POST", "/wechat/bind", w.relative, {"code": "nonsense"})
    assert (status, bad["error"]["code"]) == (400, "invalid_code")
    status, bad = await site.api("POST", "/wechat/bind", w.officer, {"code": "x"})
    assert status == 403

    await site.bind(w.relative, "o-chen-mei-0042")
    status, shown = await site.api("GET", "/wechat/bind", w.relative)
    assert (shown["bound"], shown["openid"]) == (True, "…0042")
    status, taken = await site.api(
        "POST", "/wechat/bind", w.relative_b, {"code": site.fake.code_for("o-chen-mei-0042")}
    )
    assert (status, taken["error"]["code"]) == (409, "conflict")

    status, shown = await site.api("DELETE", "/wechat/bind", w.relative)
    assert (status, shown["bound"]) == (200, False)
    entries = await audit_trail.audit_entries(site.store, actor_id=w.relative.id)
    assert [e.action for e in reversed(entries)] == ["wechat.bound", "wechat.unbound"]
    assert entries[-1].after == {"openid": "…0042"}
    status, answer = await site.post(fx.signed_query(), fx.text_xml("o-chen-mei-0042", "hi", 5))
    assert reply_text(answer) == BIND_HINT  # unbound: its texts go nowhere
    assert await site.messages(w.conv.id) == []


async def test_a_text_enters_the_conversation_once_however_often_it_is_retried(
    site: Site,
) -> None:
    w = site.world
    await site.bind(w.relative, "o-chen")
    async with Reader(
        client(site.base.replace("http", "ws") + "/ws", w.token(w.officer))
    ) as officer:
        await officer.watch(w.conv.id, after=0)
        await officer.until(lambda: any(isinstance(f, Subscribed) for f in officer.frames))
        text = fx.text_xml("o-chen", "我儿子最近身体好吗？", 6120003741802)
        first, second = await asyncio.gather(
            site.post(fx.signed_query(), text), site.post(fx.signed_query(), text)
        )
        assert first == second == (200, "success")
        assert await site.post(fx.signed_query(), text) == (200, "success")  # a late retry
        later = fx.text_xml("o-chen", "还有一个问题", 6120003741803)
        assert await site.post(fx.signed_query(), later) == (200, "success")
        await officer.until_seq(w.conv.id, 2)
        assert [m.body for m in officer.messages] == ["我儿子最近身体好吗？", "还有一个问题"]
    stored = await site.messages(w.conv.id)
    assert [(m.seq, m.cid, m.sender_id) for m in stored] == [
        (1, "6120003741802", w.relative.id),
        (2, "6120003741803", w.relative.id),
    ]
    binding = await wechat.binding_of(site.store, w.relative.id)
    assert binding is not None and binding.last_inbound_at is not None  # the 48 h window


async def test_voice_and_unverified_relatives_get_a_reply_and_store_nothing(site: Site) -> None:
    w = site.world
    await site.bind(w.relative, "o-chen")
    _, answer = await site.post(fx.signed_query(), fx.voice_xml("o-chen", 77))
    assert reply_text(answer) == ONLY_TEXT
    await site.bind(w.stranger, "o-stranger")
    _, answer = await site.post(fx.signed_query(), fx.text_xml("o-stranger", "hello", 78))
    assert reply_text(answer) == NOT_VERIFIED
    assert await site.messages(w.conv.id) == []
    assert [c.id for c in await conversations.conversations_of(site.store, w.stranger.id)] == []


def phone_jpeg() -> bytes:
    """A photo with EXIF: a GPS position and a camera serial."""
    exif = Image.Exif()
    exif[0xA431] = "SERIAL-WX-1"
    exif[0x8825] = {1: "N", 2: (23.0, 2.0, 0.0), 3: "E", 4: (113.0, 7.0, 0.0)}
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 100, 50)).save(out, "JPEG", exif=exif)
    return out.getvalue()


async def test_an_image_from_wechat_is_stored_as_an_attachment(site: Site) -> None:
    w = site.world
    await site.bind(w.relative, "o-chen")
    site.fake.media["m-1"] = (phone_jpeg(), "image/jpeg")
    site.fake.media["m-html"] = (b"<html><script>alert(1)</script></html>", "image/jpeg")
    assert await site.post(fx.signed_query(), fx.image_xml("o-chen", 90, "m-1")) == (
        200,
        "success",
    )
    # the platform retries the same MsgId: nothing new, the file not fetched again
    assert await site.post(fx.signed_query(), fx.image_xml("o-chen", 90, "m-1")) == (
        200,
        "success",
    )
    assert len(site.fake.of("/cgi-bin/media/get")) == 1
    [message] = await site.messages(w.conv.id)
    assert (message.cid, message.body, message.sender_id) == ("90", "", w.relative.id)
    [file] = message.attachments
    assert file.content_type == "image/jpeg" and file.thumb_key is not None
    assert site.app is not None
    stored = await site.app[OBJECTS].get(file.object_key)
    assert b"SERIAL-WX-1" not in stored
    with Image.open(io.BytesIO(stored)) as shown:
        assert len(shown.getexif()) == 0
    # the officer sees it like any other: in history, and can open it
    _, page = await site.api("GET", f"/conversations/{w.conv.id}/messages", w.officer)
    [shown_file] = page["messages"][0]["attachments"]
    assert shown_file["id"] == file.id and shown_file["thumbnail"] is True
    async with site.http.get(
        f"{site.base}/api/v1/attachments/{file.id}",
        headers={"Authorization": f"Bearer {w.token(w.officer)}"},
    ) as response:
        assert response.status == 200 and await response.read() == stored
    # a file that is no image, and a media id the platform does not know: a reply, nothing stored
    for msg_id, media in ((91, "m-html"), (92, "m-unknown")):
        _, answer = await site.post(fx.signed_query(), fx.image_xml("o-chen", msg_id, media))
        assert reply_text(answer) == IMAGE_FAILED
    assert len(await site.messages(w.conv.id)) == 1


async def test_a_relative_of_two_inmates_chooses_with_a_number(site: Site) -> None:
    w = site.world
    store = site.store
    inmate = await prisons.add_inmate(store, w.gaoming.id, "GM-003", "Chen Hao")
    link = await links.request_link(store, w.relative.id, inmate.id, "mother", "register")
    await links.decide_link(store, link, "verified", w.officer.id, None)
    await site.bind(w.relative, "o-chen")
    _, answer = await site.post(fx.signed_query(), fx.text_xml("o-chen", "hello", 1))
    menu = reply_text(answer)
    assert "1. Chen Jian" in menu and "2. Chen Hao" in menu
    assert await site.messages(w.conv.id) == []  # not stored: it was not known where
    _, answer = await site.post(fx.signed_query(), fx.text_xml("o-chen", "2", 2))
    assert reply_text(answer) == CHOSEN.format(name="Chen Hao")
    assert await site.post(fx.signed_query(), fx.text_xml("o-chen", "about Hao", 3)) == (
        200,
        "success",
    )
    conv = await conversations.open_conversation(store, w.relative.id, inmate.id)
    assert [m.body for m in await site.messages(conv.id)] == ["about Hao"]


@pytest.fixture
async def safe_site(store: Database) -> AsyncIterator[Site]:
    world = await seed(store)
    fake = fx.FakeWeChat()
    async with fx.serve(fake) as api:
        settings = settings_for(store, api, wechat_aes_key=fx.AES_KEY)
        async with inprocess(settings, store) as served, aiohttp.ClientSession() as http:
            yield Site(served.http_url, http, store, world, fake, served.app)


async def test_safe_mode_decrypts_checks_msg_signature_and_encrypts_the_reply(
    safe_site: Site,
) -> None:
    site = safe_site
    w = site.world
    query, body = fx.safe_request(fx.event_xml("o-new", "subscribe"))
    status, answer = await site.post(query, body)
    assert status == 200
    envelope = ElementTree.fromstring(answer)
    encrypted = envelope.findtext("Encrypt") or ""
    stamp, nonce = envelope.findtext("TimeStamp") or "", envelope.findtext("Nonce") or ""
    assert envelope.findtext("MsgSignature") == fx.sign(fx.TOKEN, stamp, nonce, encrypted)
    xml, appid = fx.decrypt(encrypted)
    assert appid == fx.APPID and reply_text(xml) == BIND_HINT

    await site.bind(w.relative, "o-chen")
    query, body = fx.safe_request(fx.text_xml("o-chen", "encrypted question", 42))
    tampered = dict(query, msg_signature=fx.sign("x", "y", "z"))
    assert (await site.post(tampered, body))[0] == 403
    other_app = fx.safe_request(fx.text_xml("o-chen", "for another app", 43), appid="wxother")
    assert (await site.post(*other_app))[0] == 403
    plaintext = await site.post(fx.signed_query(), fx.text_xml("o-chen", "in clear", 44))
    assert plaintext[0] == 400  # safe mode: nothing in clear
    assert await site.messages(w.conv.id) == []
    assert await site.post(query, body) == (200, "success")
    assert [m.body for m in await site.messages(w.conv.id)] == ["encrypted question"]


async def test_a_text_from_wechat_reaches_an_officer_on_another_server_process(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    world = await seed(pg_store)
    fake = fx.FakeWeChat()
    async with fx.serve(fake) as api, aiohttp.ClientSession() as http:
        env = {
            "KINLINE_REDIS_PREFIX": redis_prefix,
            "KINLINE_WECHAT_APPID": fx.APPID,
            "KINLINE_WECHAT_SECRET": fx.SECRET,
            "KINLINE_WECHAT_TOKEN": fx.TOKEN,
            "KINLINE_WECHAT_API": api,
        }
        a = ServerProcess(pg_url, redis_url, env=env)
        b = ServerProcess(pg_url, redis_url, env=env)
        await asyncio.gather(a.start(), b.start())
        try:
            site = Site(a.http_url, http, pg_store, world, fake)
            await site.bind(world.relative, "o-chen")
            async with Reader(client(b.ws_url, world.token(world.officer))) as officer:
                await officer.watch(world.conv.id, after=0)
                await officer.until(lambda: any(isinstance(f, Subscribed) for f in officer.frames))
                text = fx.text_xml("o-chen", "from WeChat, via process A", 7001)
                assert await site.post(fx.signed_query(), text) == (200, "success")
                await officer.until_seq(world.conv.id, 1)
                message = officer.messages[0]
                assert (message.body, message.sender.id) == (
                    "from WeChat, via process A",
                    world.relative.id,
                )
                assert await site.post(fx.signed_query(), text) == (200, "success")  # retried
            assert len(await messages.messages(pg_store, world.conv.id, after=0, limit=10)) == 1
        finally:
            for server in (a, b):
                assert await server.stop() == 0, server.logs()[-3000:]


def test_settings_refuse_a_bad_aes_key() -> None:
    from server.config import ConfigError, load

    with pytest.raises(ConfigError, match="KINLINE_WECHAT_AES_KEY"):
        load({"KINLINE_WECHAT_AES_KEY": "short"})
    assert load({"KINLINE_WECHAT_AES_KEY": fx.AES_KEY}).wechat_aes_key == fx.AES_KEY
    assert not dataclasses.replace(Settings(), wechat_appid="x").wechat_enabled


async def test_a_slow_commit_is_never_answered_success_before_it_commits(
    pg_store: PostgresDatabase, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conversation's row is locked by another transaction, so the text cannot commit:
    the platform gets a 503 (no ``success``), and retries; once the lock goes, the first
    attempt's commit lands and the retry is answered ``success`` with no second message."""
    import asyncpg

    from server import wechat as wechat_server

    monkeypatch.setattr(wechat_server, "REPLY_WITHIN", 0.3)
    world = await seed(pg_store)
    fake = fx.FakeWeChat()
    async with fx.serve(fake) as api:
        settings = settings_for(pg_store, api)
        async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
            site = Site(served.http_url, http, pg_store, world, fake, served.app)
            await site.bind(world.relative, "o-chen")
            text = fx.text_xml("o-chen", "held up by a lock", 8800)
            locker = await asyncpg.connect(pg_url)
            try:
                lock = locker.transaction()
                await lock.start()
                await locker.execute(
                    "SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", world.conv.id
                )
                status, answer = await site.post(fx.signed_query(), text)
                assert status == 503 and "success" not in answer
                assert await site.messages(world.conv.id) == []
                await lock.rollback()
            finally:
                await locker.close()
            async with asyncio.timeout(10):  # the retry after the lock: answered success
                while (reply := await site.post(fx.signed_query(), text)) != (200, "success"):
                    assert reply[0] == 503
            assert [m.cid for m in await site.messages(world.conv.id)] == ["8800"]


async def test_kinline_wechat_menu_publishes_the_menu(
    pg_store: PostgresDatabase, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server import cli

    fake = fx.FakeWeChat()
    async with fx.serve(fake) as api:
        for name, value in {
            "KINLINE_WECHAT_APPID": fx.APPID,
            "KINLINE_WECHAT_SECRET": fx.SECRET,
            "KINLINE_WECHAT_TOKEN": fx.TOKEN,
            "KINLINE_WECHAT_API": api,
            "KINLINE_PUBLIC_URL": "https://kinline.example.org",
        }.items():
            monkeypatch.setenv(name, value)
        code = await asyncio.to_thread(cli.main, ["--database-url", pg_url, "wechat", "menu"])
        assert code == 0
        (call,) = fake.of("/cgi-bin/menu/create")
        buttons = call.body["button"]
        assert [b["name"] for b in buttons] == ["在线咨询", "服刑人员信息", "会见预约", "监狱信息"]
        assert "scope=snsapi_base" in buttons[0]["url"]
        assert buttons[0]["url"].startswith("https://open.weixin.qq.com/connect/oauth2/authorize?")
        assert buttons[3]["url"] == "https://kinline.example.org/app#/prisons"
        monkeypatch.delenv("KINLINE_WECHAT_TOKEN")
        assert await asyncio.to_thread(cli.main, ["--database-url", pg_url, "wechat", "menu"]) == 2


async def test_inside_wechat_a_bound_relative_signs_in_with_the_code(site: Site) -> None:
    """``/app`` opened from the account's menu comes back from the web authorization with a
    code: the relative bound to its OpenID is signed in (token and cookie, as a password sign
    in); a code used twice, a code of an OpenID bound to nobody, a disabled account: refused."""
    w = site.world
    await site.bind(w.relative, "o-chen")
    code = site.fake.code_for("o-chen")
    async with site.http.post(f"{site.base}/api/v1/wechat/signin", json={"code": code}) as r:
        assert r.status == 200
        signed = await r.json()
        assert r.cookies["kinline_session"].value  # the app's own session cookie
    assert signed["user"]["id"] == w.relative.id and signed["expires_in"] > 0
    headers = {"Authorization": f"Bearer {signed['token']}"}
    async with site.http.get(f"{site.base}/api/v1/me", headers=headers) as r:
        assert r.status == 200 and (await r.json())["user"]["id"] == w.relative.id

    status, again = await site.api("POST", "/wechat/signin", json={"code": code})
    assert (status, again["error"]["code"]) == (400, "invalid_code")  # one use only
    status, nobody = await site.api(
        "POST", "/wechat/signin", json={"code": site.fake.code_for("o-nobody")}
    )
    assert (status, nobody["error"]["code"]) == (404, "not_bound")
    status, bad = await site.api("POST", "/wechat/signin", json={"code": "a b"})
    assert (status, bad["error"]["code"]) == (400, "invalid_request")

    async with site.store.write() as sql:
        await sql.execute("UPDATE users SET disabled = $1 WHERE id = $2", True, w.relative.id)
    status, off = await site.api(
        "POST", "/wechat/signin", json={"code": site.fake.code_for("o-chen")}
    )
    assert (status, off["error"]["code"]) == (403, "account_disabled")
    # and what it sends from WeChat is not stored
    _, answer = await site.post(fx.signed_query(), fx.text_xml("o-chen", "disabled", 31))
    assert reply_text(answer) == BIND_HINT
    assert await site.messages(w.conv.id) == []
