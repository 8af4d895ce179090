"""The relative app (/app), the landing page and the shared web library, in a real Chromium
against a real server on PostgreSQL and Redis (tests/browser.py).

Every test also fails on any console error or warning, uncaught page error or CSP violation
on its pages (``Pages.assert_clean``), and the screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
from playwright.async_api import Browser, Page, Route, expect

from channels.protocol import TypingEvent
from domain.records import User
from server import passwords, sessions
from storage import accounts, conversations, links, messages
from storage import sessions as stored_sessions
from storage.postgres import PostgresDatabase
from storage.sql import utcnow
from tests.browser import (  # noqa: F401 (fixtures)
    Pages,
    Site,
    browser_fixture,
    chromium_fixture,
    instrument,
    pages_fixture,
    restartable_fixture,
    screenshot,
    site_fixture,
)
from tests.idnumbers import valid_id
from tests.realtime import Reader, client
from tests.record_checker import holds
from tests.servers import ROOT, ServerProcess
from tests.world import World, seed_staff

WS = "/ws"


def chat_path(world: World) -> str:
    return f"/app#/inmate/{world.conv.inmate_id}"


async def api(site: Site, method: str, path: str, token: str, json: Any = None) -> Any:
    """Call the API as another user (bearer token: no cookie, no Origin needed)."""
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"{site.base}/api/v1{path}",
            json=json,
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status < 300, (response.status, await response.text())
        return await response.json() if response.status != 204 else None


async def connected(page: Page) -> None:
    await expect(page.locator("body")).to_have_attribute("data-socket", "connected")


async def stored_outbox(page: Page, user: int | str) -> list[dict[str, Any]]:
    """The outbox entries stored for ``user`` (one localStorage key each), oldest first."""
    entries: list[dict[str, Any]] = await page.evaluate(
        """(prefix) => Object.keys(localStorage)
            .filter((key) => key.startsWith(prefix))
            .map((key) => JSON.parse(localStorage.getItem(key)))
            .sort((a, b) => a.n - b.n)""",
        f"kinline.outbox.{user}.",
    )
    return entries


async def test_the_landing_page_leads_to_the_three_pages(pages: Pages) -> None:
    page = await pages.open("/")
    links = page.locator(".doors a")
    await expect(links).to_have_count(3)
    assert [await a.get_attribute("href") for a in await links.all()] == [
        "/app",
        "/console",
        "/monitor",
    ]
    await expect(page.locator("#door-app strong")).to_have_text("家属端")
    await screenshot(page, "landing-phone")
    desktop = await pages.open("/", size="desktop")
    await expect(desktop.locator("#door-console strong")).to_have_text("值班台")
    await screenshot(desktop, "landing-desktop")
    for path in ("/app", "/console", "/monitor"):  # each page loads cleanly, signed out
        other = await pages.open(path, size="desktop")
        await other.wait_for_load_state("networkidle")
    pages.assert_clean()


async def test_the_language_switch_changes_the_strings_and_is_remembered(
    pages: Pages, site: Site
) -> None:
    page = await pages.open("/app", token=site.world.token(site.world.relative))
    nav = page.locator("nav.tabs a").first
    await expect(nav).to_have_text("首页")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await page.locator("select.locale-switch").select_option("en")
    await expect(nav).to_have_text("Home")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("h1")).to_have_text("My relatives")
    await screenshot(page, "app-home-phone-en")
    await page.reload()
    await expect(page.locator("nav.tabs a").first).to_have_text("Home")
    await expect(page.locator("select.locale-switch")).to_have_value("en")
    # the landing page shares the choice (same origin, same stored preference)
    await page.goto(site.base + "/")
    await expect(page.locator("#door-app strong")).to_have_text("Family app")
    await page.locator("select.locale-switch").select_option("zh-CN")
    await expect(page.locator("#door-app strong")).to_have_text("家属端")
    pages.assert_clean()


async def test_money_and_dates_are_formatted_for_the_locale_and_catalogs_agree(
    pages: Pages,
) -> None:
    page = await pages.open("/")
    await expect(page.locator("#door-app strong")).to_have_text("家属端")
    # only the language on screen is loaded: one catalog, not both
    loaded = await page.evaluate(
        "performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)"
    )
    catalogs = sorted(p.rsplit("/", 1)[1] for p in loaded if "/i18n/" in p)
    assert catalogs == ["zh-CN.js"], loaded
    result = await page.evaluate(
        """async () => {
        const i18n = await import("/static/lib/i18n.js");
        const zh = (await import("/static/i18n/zh-CN.js")).default;
        const en = (await import("/static/i18n/en.js")).default;
        const out = {};
        await i18n.setLocale("zh-CN");
        out.zhMoney = i18n.formatMoney(31250);
        out.zhDate = i18n.formatDate("2026-03-04");
        out.zhError = i18n.errorText({ code: "rate_limited" });
        out.zhUnknown = i18n.errorText({ code: "no_such_code" });
        await i18n.setLocale("en");
        out.enMoney = i18n.formatMoney(31250);
        out.enDate = i18n.formatDate("2026-03-04");
        out.enError = i18n.errorText({ code: "rate_limited" });
        out.enPlural = [i18n.t("chat.onDuty", { n: 1 }), i18n.t("chat.onDuty", { n: 3 })];
        await i18n.setLocale("zh-CN");
        out.onlyZh = Object.keys(zh).filter((k) => !(k in en));
        out.onlyEn = Object.keys(en).filter((k) => !(k in zh));
        return out;
    }"""
    )
    assert result["zhMoney"] == "312.50 元"
    assert result["enMoney"] == "¥312.50"
    assert result["zhDate"] == "2026年3月4日"
    assert result["enDate"] == "Mar 4, 2026"
    assert result["zhError"] == "操作过于频繁，请稍后再试。"
    assert result["enError"] == "Too many attempts; please wait a moment."
    assert "no_such_code" in result["zhUnknown"] and "{" not in result["zhUnknown"]
    assert result["enPlural"] == ["1 officer on duty now", "3 officers on duty now"]
    assert result["onlyZh"] == [] and result["onlyEn"] == []
    pages.assert_clean()


async def test_a_relative_downloads_all_its_data_from_the_app(pages: Pages, site: Site) -> None:
    w = site.world
    page = await pages.open("/app#/notifications", token=w.token(w.relative))
    link = page.locator("#download-my-data")
    await expect(link).to_be_visible()
    href = await link.get_attribute("href")
    data = await page.evaluate("(u) => fetch(u).then((r) => r.json())", href)
    assert data["account"]["login"] == w.relative.login
    assert [c["id"] for c in data["conversations"]] == [w.conv.id]  # its own, nobody else's
    pages.assert_clean()


async def test_a_relative_changes_its_password_and_its_other_sessions_end(
    pages: Pages, site: Site
) -> None:
    """Signed in, with the old password: a weak new one is refused with the reason, a good
    one is set, this page goes on and the account's other session (another phone) ends."""
    w = site.world
    old, fresh = "a long passphrase here", "violet harbour lamp"
    await accounts.set_password_hash(site.store, w.relative.id, passwords.hash_password(old))
    elsewhere = await sessions.issue(site.store, w.relative, days=1)
    pages.allowed.append("the server responded with a status of 400")  # Chromium logs it
    page = await pages.open("/app#/notifications", token=w.token(w.relative))
    form = page.locator("#password-change")
    await expect(form).to_be_visible()
    await form.locator('input[name="old_password"]').fill(old)
    await form.locator('input[name="new_password"]').fill("qwerty1234")
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".notice-error")).to_be_visible()
    await form.locator('input[name="old_password"]').fill(old)
    await form.locator('input[name="new_password"]').fill(fresh)
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".notice-ok")).to_contain_text("1")
    _, stored = await accounts.credentials(site.store, w.relative.login)
    assert passwords.verify(stored, fresh)
    digest = sessions.token_hash(elsewhere)
    assert await stored_sessions.session_user(site.store, digest, utcnow()) is None
    mine = sessions.token_hash(w.token(w.relative))
    assert await stored_sessions.session_user(site.store, mine, utcnow()) is not None
    pages.assert_clean()


async def test_the_chat_offers_the_verifiable_record_and_it_checks(
    pages: Pages, site: Site
) -> None:
    world = site.world
    page = await pages.open(chat_path(world), token=world.token(world.relative))
    await connected(page)
    await page.locator("#compose").fill("他还好吗？")
    await page.locator("#compose").press("Enter")
    await expect(page.locator("#messages .bubble.own")).to_have_attribute("data-status", "sent")
    link = page.locator("#conv-record")
    await expect(link).to_be_visible()
    href = await link.get_attribute("href")
    assert href == f"/api/v1/conversations/{world.conv.id}/export"
    record = await page.evaluate("(u) => fetch(u).then((r) => r.json())", href)
    assert [m["body"] for m in record["messages"]] == ["他还好吗？"] and holds(record)
    pages.assert_clean()


async def test_a_relative_who_forgot_its_password_sets_a_new_one_by_sms(
    pages: Pages, site: Site
) -> None:
    phone = site.world.relative.login
    page = await pages.open("/app")
    await page.locator("#to-reset").click()
    reset = page.locator("#reset")
    await reset.locator("[name=phone]").fill(phone)
    await reset.locator("[name=send_code]").click()
    await reset.locator("[name=code]").fill(await site.texted_code(phone))
    await reset.locator("[name=new_password]").fill("a brand new passphrase")
    await reset.locator("button[type=submit]").click()
    await expect(reset.locator(".notice-ok")).to_contain_text("密码已修改")
    signin = page.locator("#signin")
    await signin.locator("[name=login]").fill(phone)
    await signin.locator("[name=password]").fill("a brand new passphrase")
    await signin.locator("button[type=submit]").click()
    await expect(page.locator("header .who")).to_have_text(site.world.relative.name)
    pages.assert_clean()


async def test_a_relative_registers_asks_for_a_link_and_sees_it_verified_live(
    pages: Pages, site: Site
) -> None:
    page = await pages.open("/app")
    register = page.locator("#register")
    await register.locator("[name=phone]").fill("13900000009")
    await register.locator("[name=send_code]").click()
    await expect(register.locator(".notice-ok")).to_be_visible()
    await register.locator("[name=code]").fill(await site.texted_code("13900000009"))
    await register.locator("[name=name]").fill("Li Na")
    await register.locator("[name=id_number]").fill(valid_id(9))
    await register.locator("[name=password]").fill("a long passphrase 1")
    await register.locator("button[type=submit]").click()
    await expect(page.locator("header .who")).to_have_text("Li Na")
    await expect(page.locator("main .notice-warn")).to_contain_text("还没有已核实的亲属关系")
    await connected(page)

    await page.locator("nav.tabs a[href='#/links']").click()
    form = page.locator("#link-form")
    await form.locator("[name=prison]").select_option("GM")
    await form.locator("[name=inmate_number]").fill("GM-002")
    await form.locator("[name=relationship]").select_option("parent")
    await form.locator("[name=evidence]").fill("household register <b>page 2</b>")
    await form.locator("button[type=submit]").click()
    item = page.locator("#links li[data-link]")
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("data-state", "pending")
    await expect(item.locator(".badge")).to_have_text("审核中")
    await screenshot(page, "app-links-phone")

    link_id = int(await item.get_attribute("data-link") or 0)
    officer = site.world.token(site.world.officer)
    await api(site, "POST", f"/links/{link_id}/verify", officer, {})
    await expect(item).to_have_attribute("data-state", "verified")  # live, no reload
    await expect(item.locator(".badge")).to_have_text("已核实")
    await page.locator("nav.tabs a[href='#/']").click()
    await expect(page.locator("#inmates li")).to_have_count(1)
    await expect(page.locator("#inmates li strong").first).to_have_text("Huang Bo")
    # the first message opens the conversation, which the page then follows live
    await page.locator("#inmates a.primary").click()
    empty = page.locator("#messages .empty")
    await expect(empty).to_have_text("还没有对话，发送第一条消息即开始。")
    await page.locator("#compose").fill("你好，我是他的母亲。")
    await page.locator("#send").click()
    await expect(page.locator("#messages .bubble.own")).to_have_attribute("data-status", "sent")
    threads = await api(site, "GET", "/conversations", officer)
    conv = next(t for t in threads["conversations"] if t["relative"]["name"] == "Li Na")
    reply = {"body": "您好，已收到。", "cid": "o-1"}
    await api(site, "POST", f"/conversations/{conv['id']}/messages", officer, reply)
    await expect(page.locator("#messages .bubble:not(.own) .body")).to_have_text("您好，已收到。")
    pages.assert_clean()


async def test_markup_in_a_message_is_shown_as_text(pages: Pages, site: Site) -> None:
    world = site.world
    hostile = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    page = await pages.open(chat_path(world), token=world.token(world.relative))
    await connected(page)
    await page.locator("#compose").fill(hostile)
    await page.locator("#compose").press("Enter")
    own = page.locator("#messages .bubble.own")
    await expect(own).to_have_attribute("data-status", "sent")
    officer = await api(
        site,
        "POST",
        f"/conversations/{world.conv.id}/messages",
        world.token(world.officer),
        {"body": f"officer says {hostile}", "cid": "officer-1"},
    )
    assert officer
    theirs = page.locator("#messages .bubble:not(.own)")
    await expect(theirs).to_have_count(1)
    await expect(own.locator(".body")).to_have_text(hostile)
    await expect(theirs.locator(".body")).to_have_text(f"officer says {hostile}")
    created = await page.evaluate(
        """() => ({
        elements: document.querySelectorAll("#messages script, #messages img").length,
        pwned: window.__pwned ?? null,
    })"""
    )
    assert created == {"elements": 0, "pwned": None}
    pages.assert_clean()


async def test_the_chat_shows_sent_read_typing_and_officers_on_duty(
    pages: Pages, site: Site
) -> None:
    world = site.world
    officer_token = world.token(world.officer)
    await api(site, "PUT", "/duty", officer_token, {"on_duty": True})
    page = await pages.open(chat_path(world), token=world.token(world.relative))
    await connected(page)
    async with Reader(client(site.base.replace("http", "ws") + WS, officer_token)) as officer:
        await officer.watch(world.conv.id)
        await expect(page.locator("#on-duty")).to_have_text("当前有 1 名干警值班")
        await page.locator("#compose").fill("我想问一下会见的时间")
        await page.locator("#send").click()
        bubble = page.locator("#messages .bubble.own")
        await expect(bubble).to_have_attribute("data-status", "sent")
        await expect(bubble.locator(".status")).to_have_text("已送达")
        await officer.until(lambda: any(m.conv == world.conv.id for m in officer.messages))
        seq = next(m.seq for m in officer.messages if m.conv == world.conv.id)
        await officer.client.typing(world.conv.id)
        await expect(page.locator("#typing")).to_have_text("Officer Li正在输入…")
        await officer.client.read(world.conv.id, seq)
        await expect(bubble).to_have_attribute("data-status", "read")
        await expect(bubble.locator(".status")).to_have_text("已读")
        # the relative's typing reaches the officer
        await page.locator("#compose").press_sequentially("还有")
        await officer.until(
            lambda: any(
                isinstance(f, TypingEvent) and f.conv == world.conv.id for f in officer.frames
            )
        )
        await screenshot(page, "app-chat-live-phone")
    await expect(page.locator("#on-duty")).to_have_text(
        "当前没有干警值班，您的留言会在上班后答复。"
    )
    pages.assert_clean()


async def test_rating_visits_announcements_and_the_card_arrive_live(
    pages: Pages, site: Site
) -> None:
    world = site.world
    officer, relative = world.token(world.officer), world.token(world.relative)
    page = await pages.open(chat_path(world), token=relative)
    await connected(page)
    await page.locator("#compose").fill("请问他最近身体怎么样？")
    await page.locator("#compose").press("Enter")
    await expect(page.locator("#messages .bubble.own")).to_have_attribute("data-status", "sent")
    await expect(page.locator("#conv-state")).to_have_text("等待回复")
    await api(site, "PUT", "/duty", officer, {"on_duty": True})  # off duty: 409
    await api(site, "POST", f"/conversations/{world.conv.id}/claim", officer, {})
    await expect(page.locator("#conv-state")).to_have_text("处理中")
    await api(site, "POST", f"/conversations/{world.conv.id}/resolve", officer, {})
    rating = page.locator("#rate-form")
    await expect(rating).to_be_visible()
    await rating.get_by_label("4 星").check()
    await rating.locator("textarea").fill("答复及时")
    await rating.locator("button[type=submit]").click()
    await expect(page.locator("#rating")).to_have_text("感谢您的评价！")
    threads = await api(site, "GET", "/conversations", relative)
    assert [t["rating"] for t in threads["conversations"]] == [4]

    # the information card follows the officer's change at once
    await page.locator("a[href$='/info']").first.click()
    await expect(page.locator("#balance")).to_have_text("0.00 元")
    movement = {"kind": "deposit", "amount_fen": 31250, "note": "汇款"}
    await api(site, "PATCH", f"/inmates/{world.conv.inmate_id}", officer, {"movement": movement})
    await expect(page.locator("#balance")).to_have_text("312.50 元")

    # a visit request, decided by the officer, changes state live
    await page.locator("a[href$='/visits']").first.click()
    form = page.locator("#visit-form")
    await form.locator("[name=day]").select_option(index=1)  # the first day offered
    await form.locator("[name=time]").select_option("09:30")
    await form.locator("[name=visitor_names]").fill("Chen Mei, Chen Hua")
    await form.locator("button[type=submit]").click()
    item = page.locator("#visits li[data-visit]")
    await expect(item).to_have_attribute("data-state", "pending")
    visit_id = await item.get_attribute("data-visit")
    await api(site, "POST", f"/visits/{visit_id}/approve", officer, {})
    await expect(item).to_have_attribute("data-state", "approved")
    await expect(item.locator(".badge")).to_have_text("已批准")

    # an announcement of the prison appears in the news without a reload
    await page.locator("nav.tabs a[href='#/announcements']").click()
    await expect(page.locator("#announcements .empty")).to_be_visible()
    notice = {
        "title": "春节会见安排",
        "body": "春节期间会见时间调整。",
        "prison_id": world.gaoming.id,
    }
    await api(site, "POST", "/announcements", officer, notice)
    await expect(page.locator("#announcements li h2")).to_have_text("春节会见安排")
    pages.assert_clean()


async def test_a_complaint_is_filed_and_its_state_followed(pages: Pages, site: Site) -> None:
    world = site.world
    page = await pages.open("/app#/complaints", token=world.token(world.relative))
    await connected(page)
    form = page.locator("#complaint-form")
    await form.locator("[name=category]").select_option("visits")
    await form.locator("[name=body]").fill("会见申请一直没有答复。")
    await form.locator("button[type=submit]").click()
    item = page.locator("#complaints li[data-complaint]")
    await expect(item).to_have_attribute("data-state", "received")
    complaint_id = await item.get_attribute("data-complaint")
    # the supervisor of Gaoming answers it; the relative sees it live
    await api(
        site,
        "POST",
        f"/complaints/{complaint_id}/answer",
        world.token(world.supervisor),
        {"message": "已督促监狱在三日内答复。"},
    )
    await expect(item).to_have_attribute("data-state", "answered")
    await item.locator("button.link-button").click()  # the history (escalate is another)
    await expect(item.locator(".history li").last).to_contain_text("已督促监狱在三日内答复。")
    pages.assert_clean()


async def furnish(site: Site) -> None:
    """Fill the seeded world through the API as staff would: visit rules, the inmate's card,
    a supervisor's public profile, an announcement, a few messages."""
    world = site.world
    staff = await seed_staff(site.store, world)
    officer, admin = world.token(world.officer), world.token(staff.admin)
    relative = world.token(world.relative)
    rules = {
        "days": [2, 4, 6],
        "hours": [{"start": "09:00", "end": "11:30"}, {"start": "14:00", "end": "16:30"}],
        "min_days_between": 30,
        "max_visitors": 3,
        "allowed_items": ["换季衣物", "书籍"],
        "forbidden_items": ["现金", "手机"],
        "notes": "请携带本人身份证原件，提前 30 分钟到达。",
    }
    await api(site, "PUT", f"/prisons/{world.gaoming.id}/visit-rules", officer, rules)
    inmate = f"/inmates/{world.conv.inmate_id}"
    await api(
        site,
        "PATCH",
        inmate,
        officer,
        {
            "activity": "上午参加文化课学习，下午在车间劳动，晚上观看新闻联播。",
            "work": "服装车间缝纫组",
            "health": {"status": "good", "note": "体检正常"},
            "term": {"original": "有期徒刑五年", "start": "2023-05-01"},
            "next_visit_date": "2026-01-10",
        },
    )
    await api(
        site,
        "PATCH",
        inmate,
        officer,
        {
            "term_change": {
                "decided_on": "2025-06-01",
                "kind": "commutation",
                "decision": "(2025) 粤06刑更123号",
                "new_release": "2027-12-31",
            }
        },
    )
    for kind, fen, note in (("deposit", 50000, "家属汇款"), ("spending", 18750, "购买日用品")):
        movement = {"kind": kind, "amount_fen": fen, "note": note}
        await api(site, "PATCH", inmate, officer, {"movement": movement})
    await api(
        site,
        "PUT",
        f"/supervisors/{world.supervisor.id}/profile",
        admin,
        {
            "title": "人大代表",
            "photo": "/static/photos/supervisor-1.svg",
            "address": "佛山市高明区荷城街道",
            "phone": "0757-88881234",
        },
    )
    await api(
        site,
        "POST",
        "/announcements",
        officer,
        {
            "title": "开放日通知",
            "body": "六月一日为监狱开放日，欢迎家属报名参加。",
            "prison_id": world.gaoming.id,
            "open_day": "2026-06-01",
        },
    )
    messages = f"/conversations/{world.conv.id}/messages"
    await api(
        site, "POST", messages, relative, {"body": "您好，请问这个月可以会见吗？", "cid": "r1"}
    )
    await api(
        site,
        "POST",
        messages,
        officer,
        {"body": "您好，本月周二、周四、周六上午均可会见，请提前申请。", "cid": "o1"},
    )


async def test_screenshots_of_the_relative_app(pages: Pages, site: Site) -> None:
    world = site.world
    await furnish(site)
    token = world.token(world.relative)
    for size in ("phone", "desktop"):
        page = await pages.open("/app", token=token, size=size)
        await expect(page.locator("#inmates li")).to_have_count(1)
        await screenshot(page, f"app-home-{size}")
        await page.goto(site.base + chat_path(world))
        await expect(page.locator("#messages .bubble")).to_have_count(2)
        await screenshot(page, f"app-chat-{size}")
        await page.goto(f"{site.base}{chat_path(world)}/info")
        await expect(page.locator("#balance")).to_have_text("312.50 元")
        await expect(page.locator("#movements li")).to_have_count(2)
        await screenshot(page, f"app-info-{size}")
        await page.goto(f"{site.base}{chat_path(world)}/visits")
        await expect(page.locator("#visit-rules li").first).to_be_visible()
        await screenshot(page, f"app-visits-{size}")
        for route, ready in (
            ("#/announcements", "#announcements li"),
            ("#/complaints", "#complaint-form"),
            ("#/links", "#links li"),
            ("#/prisons", "#prisons li"),
            (f"#/prison/{world.gaoming.id}", "#supervisors img"),
        ):
            await page.goto(f"{site.base}/app{route}")
            await expect(page.locator(ready).first).to_be_visible()
            await screenshot(page, f"app-{route.strip('#/').split('/')[0]}-{size}")
        signed_out = await pages.open("/app", size=size)
        await expect(signed_out.locator("#register")).to_be_visible()
        await screenshot(signed_out, f"app-signin-{size}")
    pages.assert_clean()


async def test_the_relative_page_survives_a_server_restart(
    browser: Browser, pg_store: PostgresDatabase, restartable: tuple[ServerProcess, World]
) -> None:
    """Stop the server, type and send, start it again on the same port: the message is
    delivered once, with the cid the page gave it, and shows as sent."""
    server, world = restartable
    pages = Pages(browser, server.http_url)
    try:
        page = await pages.open(chat_path(world), token=world.token(world.relative))
        await connected(page)
        banner = page.locator("[data-testid=connection]")
        await expect(banner).to_be_hidden()

        await server.stop()
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("正在重新连接")
        text = "服务器重启期间输入的消息"
        await page.locator("#compose").fill(text)
        await page.locator("#compose").press("Enter")
        bubble = page.locator("#messages .bubble.own", has_text=text)
        await expect(bubble).to_have_attribute("data-status", "sending")
        cid = await bubble.get_attribute("data-cid")
        assert cid
        outbox = await stored_outbox(page, world.relative.id)
        assert [(e["cid"], e["body"]) for e in outbox] == [(cid, text)]

        await server.start()  # the same port
        await expect(bubble).to_have_attribute("data-status", "sent", timeout=30_000)
        await expect(banner).to_be_hidden()
        stored = [
            m for m in await messages.messages(pg_store, world.conv.id, limit=500) if m.body == text
        ]
        assert [(m.cid, m.sender_id) for m in stored] == [(cid, world.relative.id)]
        await expect(page.locator("#messages .bubble", has_text=text)).to_have_count(1)
        assert await stored_outbox(page, world.relative.id) == []
        pages.assert_clean()
    finally:
        await pages.close()


async def newcomer(site: Site) -> tuple[User, int]:
    """A relative just verified for inmate B (Huang Bo), with no conversation yet."""
    store, world = site.store, site.world
    user = await accounts.add_user(store, "relative", "13900000077", "Li Na", "x")
    inmate = world.conv_b.inmate_id
    link = await links.request_link(store, user.id, inmate, "sibling", "household register")
    await links.decide_link(store, link, "verified", world.officer.id, None)
    world.tokens[user.login] = await sessions.issue(store, user, days=1)
    return user, inmate


async def test_a_double_enter_on_the_first_message_sends_it_once(pages: Pages, site: Site) -> None:
    """Enter, and Enter again while the first message's conversation is being opened
    (POST /conversations held): one conversation request, one message stored."""
    user, inmate = await newcomer(site)
    page = await pages.open(f"/app#/inmate/{inmate}", token=site.world.token(user))
    await connected(page)
    await expect(page.locator("#messages .empty")).to_have_text(
        "还没有对话，发送第一条消息即开始。"
    )
    await instrument(page)
    asked, release = asyncio.Event(), asyncio.Event()

    async def hold(route: Route) -> None:
        if route.request.method == "POST":
            asked.set()
            await release.wait()
        await route.continue_()

    await page.route("**/api/v1/conversations", hold)
    compose = page.locator("#compose")
    await compose.fill("你好，我是他的姐姐。")
    await compose.press("Enter")
    await asked.wait()
    await compose.press("Enter")  # the conversation is still being opened
    release.set()
    bubble = page.locator("#messages .bubble.own")
    await expect(bubble).to_have_attribute("data-status", "sent")
    opened = await page.evaluate(
        """() => window.__fetched.filter(
            (f) => f.method === "POST" && f.url.endsWith("/api/v1/conversations")).length"""
    )
    assert opened == 1
    [conv] = await conversations.conversations_of(site.store, user.id)
    stored = await messages.messages(site.store, conv.id, limit=50)
    assert [m.body for m in stored] == ["你好，我是他的姐姐。"]
    await expect(bubble).to_have_count(1)
    pages.assert_clean()


async def test_a_first_message_typed_offline_is_kept_and_sent_once_back_online(
    pages: Pages, site: Site
) -> None:
    """No conversation yet and no network: the first message is kept (shown as sending, not
    refused), and sent, once, when the page is back online."""
    user, inmate = await newcomer(site)
    context = await pages.context(site.world.token(user))
    page = await pages.open(f"/app#/inmate/{inmate}", context=context)
    await connected(page)
    await expect(page.locator("#messages .empty")).to_be_visible()
    pages.allowed.append("net::ERR_INTERNET_DISCONNECTED")  # Chromium logs the failed fetch
    await context.set_offline(True)
    text = "断网时写的第一条消息"
    await page.locator("#compose").fill(text)
    await page.locator("#compose").press("Enter")
    bubble = page.locator("#messages .bubble.own", has_text=text)
    await expect(bubble).to_have_attribute("data-status", "sending")
    await expect(page.locator("#chat-error")).to_be_hidden()
    await expect(page.locator("#compose")).to_have_value("")
    await context.set_offline(False)
    await expect(bubble).to_have_attribute("data-status", "sent", timeout=30_000)
    [conv] = await conversations.conversations_of(site.store, user.id)
    stored = await messages.messages(site.store, conv.id, limit=50)
    assert [m.body for m in stored] == [text]
    await expect(page.locator("#messages .bubble.own")).to_have_count(1)
    pages.assert_clean()


async def test_a_send_refused_while_the_chat_is_closed_is_told_and_kept_for_the_chat(
    pages: Pages, site: Site
) -> None:
    """An unsent message from an earlier visit is refused for good (too long) while the home
    page is shown: a notice says so, and the chat shows it as failed when opened."""
    world = site.world
    context = await pages.context(world.token(world.relative))
    page = await pages.open("/", context=context)  # same origin, no socket yet
    cid = "refused-while-away"
    entry = {
        "conv": world.conv.id,
        "cid": cid,
        "body": "太长了" * 1000,
        "kind": "text",
        "queuedAt": "2026-01-01T00:00:00.000Z",
        "n": 1,
    }
    await page.evaluate(
        "([key, entry]) => localStorage.setItem(key, JSON.stringify(entry))",
        [f"kinline.outbox.{world.relative.id}.{cid}", entry],
    )
    await page.goto(site.base + "/app#/")
    await connected(page)
    await expect(page.locator(".toast")).to_have_text("有一条消息未能发送：消息过长。")
    assert await stored_outbox(page, world.relative.id) == []
    await page.locator("#inmates a.primary").click()  # the chat, in the same page
    failed = page.locator(f'#messages .bubble.own[data-cid="{cid}"]')
    await expect(failed).to_have_attribute("data-status", "failed")
    await expect(failed.locator(".status")).to_have_text("发送失败：消息过长。")
    pages.assert_clean()


async def test_two_tabs_keep_each_others_unsent_messages(pages: Pages) -> None:
    """Two tabs of one user, each with a message not sent yet: both are kept (neither tab
    overwrites the other's), and an ack in one tab removes that entry only."""
    context = await pages.context()
    one = await pages.open("/", context=context)
    two = await pages.open("/", context=context)
    make = """async (user) => {
        const { KinlineSocket } = await import("/static/lib/socket.js");
        window.sock = new KinlineSocket({ user });  // not started: nothing is sent
    }"""
    stored = """async (user) => {  // what a page loaded now would find unsent
        const { KinlineSocket } = await import("/static/lib/socket.js");
        return new KinlineSocket({ user }).pending().map((e) => e.body);
    }"""
    await one.evaluate(make, 4242)
    await two.evaluate(make, 4242)  # both loaded the (empty) outbox first
    send = "(body) => window.sock.send(7, body).cid"
    await one.evaluate(send, "from tab one")
    second = await two.evaluate(send, "from tab two")
    assert await one.evaluate(stored, 4242) == ["from tab one", "from tab two"]
    assert len(await stored_outbox(one, 4242)) == 2  # one key each
    # tab two is told its message was stored: that entry, and only it, leaves the outbox
    ack = {"type": "ack", "cid": second, "conv": 7, "seq": 1, "id": 1, "at": "2026-01-01T00:00:00Z"}
    await two.evaluate("(frame) => window.sock._handle(JSON.stringify(frame))", ack)
    assert await two.evaluate(stored, 4242) == ["from tab one"]
    pages.assert_clean()


async def test_a_cursor_the_server_could_not_recover_drops_to_its_seq(pages: Pages) -> None:
    """A cursor beyond the conversation's last seq is not recovered: the server follows it
    from its own last seq (``subscribed``). The client kept its stale cursor and dropped
    every later message up to it as a duplicate: a silent loss."""
    page = await pages.open("/")
    await page.evaluate(
        """async () => {
            const { KinlineSocket } = await import("/static/lib/socket.js");
            window.sock = new KinlineSocket({ user: 4243 });  // not started: nothing is sent
            window.sock.cursors.set(7, 50);
            window.sock.cursors.set(8, 3);
            window.got = [];
            window.sock.on("message", (m) => window.got.push([m.conv, m.seq]));
        }"""
    )
    feed = "(frame) => window.sock._handle(JSON.stringify(frame))"
    await page.evaluate(feed, {"type": "subscribed", "convs": {"7": 1, "8": 5}})
    message = {"sender": {"id": 1, "role": "officer", "name": "o"}, "kind": "text", "id": 1}
    for conv, seq in ((7, 2), (8, 3), (8, 4)):
        at = "2026-01-01T00:00:00Z"
        await page.evaluate(
            feed, {"type": "message", "conv": conv, "seq": seq, "body": "b", "at": at} | message
        )
    assert await page.evaluate("() => window.got") == [[7, 2], [8, 4]]
    pages.assert_clean()


async def test_the_chat_only_gains_nodes_and_its_labels_follow_the_language(
    pages: Pages, site: Site
) -> None:
    """A new message is added to the chat's live region, the bubbles already there are not
    removed and put back (a screen reader would read them all again); the sub-tab and main
    navigation labels are translated, and again after a language switch."""
    world = site.world
    page = await pages.open(chat_path(world), token=world.token(world.relative))
    await connected(page)
    await page.locator("#compose").fill("请问他最近好吗？")
    await page.locator("#compose").press("Enter")
    await expect(page.locator("#messages .bubble.own")).to_have_attribute("data-status", "sent")
    await page.evaluate(
        """() => {
        window.__removed = 0;
        new MutationObserver((records) => {
            for (const r of records) window.__removed += r.removedNodes.length;
        }).observe(document.getElementById("messages"), { childList: true });
    }"""
    )
    reply = {"body": "他很好，请放心。", "cid": "o-9"}
    await api(
        site, "POST", f"/conversations/{world.conv.id}/messages", world.token(world.officer), reply
    )
    await expect(page.locator("#messages .bubble:not(.own) .body")).to_have_text("他很好，请放心。")
    await expect(page.locator("#messages .bubble")).to_have_count(2)
    assert await page.evaluate("() => window.__removed") == 0
    subtabs = page.locator("nav.subtabs")
    await expect(subtabs).to_have_attribute("aria-label", "亲属页面")
    await expect(page.locator("nav.tabs")).to_have_attribute("aria-label", "主导航")
    await page.locator("select.locale-switch").select_option("en")
    await expect(subtabs).to_have_attribute("aria-label", "About this relative")
    await expect(page.locator("nav.tabs")).to_have_attribute("aria-label", "Main")
    await expect(page.locator("#messages")).to_have_attribute("aria-label", "Chat")
    pages.assert_clean()


def test_each_catalog_holds_each_key_once() -> None:
    """A key written twice in a catalog silently keeps the last value: none is."""
    for name in ("en.js", "zh-CN.js"):
        source = (ROOT / "web" / "i18n" / name).read_text(encoding="utf-8")
        keys = re.findall(r'^\s*"([^"]+)"\s*:', source, flags=re.MULTILINE)
        twice = sorted({k for k in keys if keys.count(k) > 1})
        assert twice == [], (name, twice)
