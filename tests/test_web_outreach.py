"""The installable relative app and its notification settings, in Chromium.

Chromium itself parses the manifest (no errors, icons it can load), registers the service
worker at scope ``/``, and shows the notification a push delivers to it (through the
DevTools protocol's ``ServiceWorker.deliverPushMessage``): a title and "there is an answer",
never the message; what tapping it runs takes the app to the conversation. The settings
page, as a relative on a phone sees it: the channel choice saved, the WeChat binding shown
and ended, and the return from WeChat's web authorization binding the OpenID, or signing in
the relative it is bound to.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from server import passwords
from server.wechat_platform import signed_in_url
from storage import messages, outbox, wechat
from storage.accounts import write_password_hash
from storage.postgres import PostgresDatabase
from storage.sql import utcnow
from tests import fake_outside as fx
from tests.browser import (  # noqa: F401 (fixtures)
    Pages,
    Site,
    browser_fixture,
    chromium_fixture,
    screenshot,
    web_settings,
)
from tests.servers import inprocess
from tests.world import seed


@pytest.fixture
async def outreach(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[Site, fx.FakeWeChat]]:
    world = await seed(pg_store)
    fake = fx.FakeWeChat()
    async with fx.serve(fake) as api:
        settings = web_settings(
            pg_url,
            redis_url,
            redis_prefix,
            wechat_appid=fx.APPID,
            wechat_secret=fx.SECRET,
            wechat_token=fx.TOKEN,
            wechat_api=api,
            wechat_oauth=api + "/connect/oauth2/authorize",
        )
        async with inprocess(settings, pg_store) as served:
            yield Site(served.http_url, world, pg_store, settings), fake


@pytest.fixture
async def pages(browser: Browser, outreach: tuple[Site, fx.FakeWeChat]) -> AsyncIterator[Pages]:
    opened = Pages(browser, outreach[0].base)
    try:
        yield opened
    finally:
        await opened.close()


async def ready(page: Page) -> None:
    await expect(page.locator("body")).to_have_attribute("data-socket", "connected")


async def test_the_manifest_and_service_worker_as_chromium_sees_them(
    outreach: tuple[Site, fx.FakeWeChat], pages: Pages
) -> None:
    site, _ = outreach
    w = site.world
    context = await pages.context(w.token(w.relative))
    await context.grant_permissions(["notifications"], origin=site.base)
    page = await pages.open("/app", context=context, label="app")
    await ready(page)
    scope = await page.evaluate(
        "navigator.serviceWorker.ready.then((r) => [r.scope, r.active && r.active.scriptURL])"
    )
    assert scope == [site.base + "/", site.base + "/sw.js"]

    cdp = await context.new_cdp_session(page)
    manifest = await cdp.send("Page.getAppManifest")
    assert manifest["url"] == site.base + "/manifest.webmanifest"
    assert manifest["errors"] == [], manifest["errors"]
    parsed = json.loads(manifest["data"])
    assert (parsed["start_url"], parsed["display"]) == ("/app", "standalone")
    sizes = await page.evaluate(
        """(icons) => Promise.all(icons.map((icon) => new Promise((done, fail) => {
             const img = new Image();
             img.onload = () => done([icon.sizes, img.naturalWidth, img.naturalHeight]);
             img.onerror = () => fail(icon.src);
             img.src = icon.src;
           })))""",
        parsed["icons"],
    )
    assert sizes == [["192x192", 192, 192], ["512x512", 512, 512]]

    # a push delivered to the worker becomes a notification with no message in it
    registrations: list[dict[str, str]] = []
    versions: list[dict[str, str]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    cdp.on("ServiceWorker.workerVersionUpdated", lambda e: versions.extend(e["versions"]))
    await cdp.send("ServiceWorker.enable")
    async with asyncio.timeout(10):
        # the registration and its versions arrive as events once enabled; a push is sent only
        # to a worker Chromium reports activated, since one sent earlier may be dropped
        while not registrations or not any(v["status"] == "activated" for v in versions):
            await asyncio.sleep(0.02)
    payload = {
        "title": "亲情在线",
        "body": "您关于Chen Jian的咨询有了新回复",
        "url": f"/app#/inmate/{w.conv.inmate_id}",
    }
    push = {
        "origin": site.base,
        "registrationId": registrations[0]["registrationId"],
        "data": json.dumps(payload, ensure_ascii=False),
    }
    shown: list[list[str]] = []
    async with asyncio.timeout(20):
        # CDP's delivery is fire-and-forget: on a loaded machine a push can be lost before the
        # worker runs, so it is sent again until one shows (one tag: a repeat replaces, never adds)
        while not shown:
            await cdp.send("ServiceWorker.deliverPushMessage", push)
            for _ in range(50):  # each look is one round trip into the page, no fixed wait
                shown = await page.evaluate(
                    """navigator.serviceWorker.ready.then((r) => r.getNotifications())
                         .then((n) => n.map((x) => [x.title, x.body, x.data.url]))"""
                )
                if shown:
                    break
    assert shown == [[payload["title"], payload["body"], payload["url"]]]

    # tapping it (the worker's notificationclick handler, run in the worker) takes the open
    # app to the conversation
    workers = context.service_workers
    worker = workers[0] if workers else await context.wait_for_event("serviceworker")
    await worker.evaluate("(url) => openConversation(url).then(() => true)", payload["url"])
    await expect(page).to_have_url(site.base + payload["url"])
    await expect(page.locator("#compose")).to_be_visible()
    pages.assert_clean()


async def test_the_notification_settings_on_a_phone(
    outreach: tuple[Site, fx.FakeWeChat], pages: Pages
) -> None:
    site, fake = outreach
    w = site.world
    page = await pages.open("/app#/notifications", token=w.token(w.relative), label="settings")
    await ready(page)
    auto = page.locator("#notify-channel input[value=auto]")
    await auto.wait_for()
    assert await auto.is_checked()
    await page.locator("#notify-channel input[value=none]").check()
    await expect(page.locator("#notify-channel input[value=none]")).to_be_checked()
    async with asyncio.timeout(5):
        while await outbox.channel_of(site.store, w.relative.id) != "none":
            await asyncio.sleep(0.02)
    assert await page.locator("#wechat-hint").is_visible()  # not inside WeChat: how to bind
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await screenshot(page, "notification-settings-phone")

    # back from WeChat's web authorization: the code binds, and leaves the address bar
    code = fake.code_for("o-chen-web-7788")
    await page.goto(f"{site.base}/app?code={code}&state=bind#/notifications")
    await page.locator("#wechat-bound").wait_for()
    assert "…7788" in (await page.locator("#wechat-bound").text_content() or "")
    assert "code=" not in page.url
    binding = await wechat.binding_of(site.store, w.relative.id)
    assert binding is not None and binding.openid == "o-chen-web-7788"
    await page.locator("#wechat-unbind").click()
    await page.locator("#wechat-hint").wait_for()
    assert await wechat.binding_of(site.store, w.relative.id) is None
    pages.assert_clean()


async def test_the_console_shows_how_an_answer_reached_the_relative(
    outreach: tuple[Site, fx.FakeWeChat], pages: Pages
) -> None:
    from tests.test_web_console import open_console, queue_item

    site, fake = outreach
    w = site.world
    await wechat.bind(site.store, w.relative.id, "o-chen", utcnow())
    await wechat.heard_from(site.store, w.relative.id, utcnow())  # the 48 h window
    base = f"{site.base}/api/v1/conversations/{w.conv.id}/messages"
    async with aiohttp.ClientSession() as http:
        for who, body in ((w.relative, "他最近好吗？"), (w.officer, "他很好，请放心。")):
            headers = {"Authorization": f"Bearer {w.token(who)}"}
            async with http.post(base, json={"body": body}, headers=headers) as response:
                assert response.status == 201
    await fake.until(lambda: len(fake.of("/cgi-bin/message/custom/send")) == 1)
    async with asyncio.timeout(10):  # the relay settles the row right after the platform answered
        answers = [m.id for m in await messages.messages(site.store, w.conv.id, after=1, limit=5)]
        while [d.state for d in await outbox.deliveries(site.store, answers)] != ["sent"]:
            await asyncio.sleep(0.02)
    officer = await open_console(pages, w, w.officer)
    await queue_item(officer, w.conv.id).click()
    mark = officer.locator('#messages li[data-seq="2"] .delivery')
    await expect(mark).to_have_text("已通过微信送达")
    await expect(mark).to_have_attribute("data-channel", "wechat")
    assert await officer.locator('#messages li[data-seq="1"] .delivery').count() == 0
    await screenshot(officer, "console-delivery-mark")
    pages.assert_clean()


async def test_from_the_wechat_menu_a_relative_is_signed_in_or_binds_after_signing_in(
    outreach: tuple[Site, fx.FakeWeChat], pages: Pages
) -> None:
    """The menu's chat button goes through the web authorization (snsapi_base) into /app.
    A bound relative is signed in by it, no password asked; one not bound yet signs in with
    its password and the app goes through the (silent) authorization again to bind."""
    site, fake = outreach
    w = site.world
    await wechat.bind(site.store, w.relative.id, "o-chen-menu", utcnow())
    fake.browser_openid = "o-chen-menu"
    page = await pages.open("/app", label="from-wechat-menu")  # signed out
    settings = site.settings
    await page.goto(signed_in_url(settings, "/app"))
    await expect(page.locator("header .who")).to_have_text(w.relative.name)
    await ready(page)
    assert "code=" not in page.url

    hashed = await asyncio.to_thread(passwords.hash_password, "a long passphrase 2")
    async with site.store.write() as sql:
        await write_password_hash(sql, w.relative_b.id, hashed)
    fake.browser_openid = "o-huang-new"
    # the browser logs the answer it provokes: this OpenID is bound to nobody (yet)
    pages.allowed.append("the server responded with a status of 404 (Not Found)")
    fresh = await pages.open("/app", label="bind-after-sign-in")  # another browser, signed out
    await fresh.goto(signed_in_url(settings, "/app"))
    signin = fresh.locator("#signin")
    await signin.locator("[name=login]").fill(w.relative_b.login)
    await signin.locator("[name=password]").fill("a long passphrase 2")
    await signin.locator("button[type=submit]").click()
    await expect(fresh.locator("header .who")).to_have_text(w.relative_b.name)
    async with asyncio.timeout(10):  # the second authorization's code binds
        while (bound := await wechat.binding_of(site.store, w.relative_b.id)) is None:
            await asyncio.sleep(0.02)
    assert bound.openid == "o-huang-new"
    assert len(fake.of("/connect/oauth2/authorize")) == 3  # once, then once and again to bind
    pages.assert_clean()
