"""The duty console (/console) in a real Chromium against a real server on PostgreSQL and
Redis (tests/browser.py), next to the relative's app (/app) in another browser context.

Every test also fails on any console error or warning, uncaught page error or CSP violation
on its pages (``Pages.assert_clean``); screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from playwright.async_api import Browser, Page, Route, expect

from domain.records import NewMessage, User
from server import sessions
from server.passwords import hash_password, verify
from storage import accounts, audit_trail
from storage import sessions as stored_sessions
from storage.postgres import PostgresDatabase
from storage.sql import utcnow
from tests.browser import (  # noqa: F401 (fixtures)
    Pages,
    Site,
    browser_fixture,
    chromium_fixture,
    pages_fixture,
    restartable_fixture,
    screenshot,
    site_fixture,
)
from tests.servers import ServerProcess
from tests.world import World

SHANGHAI = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct horse battery staple"


async def api(site: Site, method: str, path: str, user: User, json: Any = None) -> Any:
    """Call the API as ``user`` (bearer token: no cookie, no Origin needed)."""
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"{site.base}/api/v1{path}",
            json=json,
            headers={"Authorization": f"Bearer {site.world.token(user)}"},
        ) as response,
    ):
        assert response.status < 300, (response.status, await response.text())
        return await response.json() if response.status != 204 else None


async def ask(site: Site, body: str, relative: User | None = None) -> None:
    """The relative (default: Chen Mei, about inmate A) asks a question over REST."""
    world = site.world
    who = relative or world.relative
    conv = world.conv if who is world.relative else world.conv_b
    await api(site, "POST", f"/conversations/{conv.id}/messages", who, {"body": body})


async def console(pages: Pages, site: Site, user: User, *, duty: bool = True) -> Page:
    """The console of ``user``, loaded, its socket connected, on duty if asked."""
    return await open_console(pages, site.world, user, duty=duty)


async def open_console(pages: Pages, world: World, user: User, *, duty: bool = True) -> Page:
    """The console of ``user`` on the server of ``pages`` (an in-process site or a process)."""
    page = await pages.open(
        "/console", token=world.token(user), size="desktop", label=f"console:{user.login}"
    )
    await expect(page.locator("body")).to_have_attribute("data-ready", "1")
    await expect(page.locator("body")).to_have_attribute("data-socket", "connected")
    if duty:
        await page.locator("#duty-toggle").check()  # a click: also unlocks the page's audio
        await expect(page.locator("#duty")).to_have_class(re.compile(r"\bon\b"))
    return page


def queue_item(page: Page, conv_id: int) -> Any:
    return page.locator(f'#queue button.item[data-conv="{conv_id}"]')


async def test_a_relative_and_an_officer_hold_a_conversation_end_to_end(
    pages: Pages, site: Site
) -> None:
    world = site.world
    officer = await console(pages, site, world.officer)
    # the officer adds a canned reply for the prison in its tab
    await officer.locator("#tab-canned").click()
    form = officer.locator("#canned-form")
    await form.locator('input[name="short_name"]').fill("visit")
    await form.locator('textarea[name="body"]').fill("会见时间为每周二、周四上午。")
    await form.locator("#canned-save").click()
    await expect(officer.locator("#canned-list li h3")).to_have_text(["/visit"])
    await officer.locator("#tab-queue").click()

    relative = await pages.open(
        f"/app#/inmate/{world.conv.inmate_id}", token=world.token(world.relative), label="app"
    )
    await expect(relative.locator("body")).to_have_attribute("data-socket", "connected")
    await relative.locator("#compose").fill("请问他最近身体好吗？")
    await relative.locator("#compose").press("Enter")

    # the question arrives live in the queue, with a wait timer that ticks, a chime, a badge
    item = queue_item(officer, world.conv.id)
    await expect(item).to_contain_text("Chen Mei · 关于 Chen Jian")
    timer = item.locator(".timer")
    await expect(timer).to_be_visible()
    started = await timer.get_attribute("data-seconds")
    await expect(timer).not_to_have_attribute("data-seconds", started or "")  # it ticks
    await expect(officer).to_have_title("(1) 值班台 · 亲情在线")
    await expect(item.locator(".unread")).to_have_text("1")
    assert int(await officer.locator("body").get_attribute("data-chimes") or 0) >= 1

    await item.click()
    await expect(officer.locator("#messages li.from-relative .bubble")).to_have_text(
        "请问他最近身体好吗？"
    )
    await expect(officer).to_have_title("值班台 · 亲情在线")  # read: no badge
    question = relative.locator("#messages li.own").filter(has_text="请问他最近身体好吗？")
    await expect(question).to_have_attribute("data-status", "read")  # the officer read it
    await expect(officer.locator("#card-body")).to_contain_text("GM-001")  # the inmate card
    await officer.locator("#act-claim").click()
    await expect(officer.locator("#chat-notice")).to_have_text("您已认领此会话。")
    await expect(officer.locator("#chat-sub")).to_contain_text("由我处理")

    # a canned reply: "/" and the start of its short name, Enter picks it, Enter sends it
    compose = officer.locator("#compose")
    await compose.press_sequentially("/vi")
    await expect(officer.locator("#canned li")).to_have_count(1)
    await expect(officer.locator("#canned li")).to_contain_text("/visit")
    await compose.press("Enter")
    await expect(compose).to_have_value("会见时间为每周二、周四上午。")
    await compose.press("Enter")
    await expect(officer.locator("#messages li.from-staff.kind-text .bubble").last).to_have_text(
        "会见时间为每周二、周四上午。"
    )
    answer = relative.locator("#messages li.bubble").filter(has_text="会见时间为每周二、周四上午。")
    await expect(answer).to_be_visible()

    # a private note: tagged, drawn unlike a reply, and never on the relative's page
    await officer.locator('input[name="kind"][value="note"]').check()
    await expect(officer.locator("#composer")).to_have_class(re.compile(r"\bnote\b"))
    await compose.fill("家属关心健康状况，已核实无异常。")
    await compose.press("Enter")
    note = officer.locator("#messages li.kind-note")
    await expect(note.locator(".note-tag")).to_have_text("内部备注 · 仅工作人员可见")
    await expect(note.locator(".bubble")).to_have_text("家属关心健康状况，已核实无异常。")
    reply_look = await officer.locator("#messages li.from-staff.kind-text .bubble").last.evaluate(
        "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).borderStyle]"
    )
    note_look = await note.locator(".bubble").evaluate(
        "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).borderStyle]"
    )
    assert reply_look[0] != note_look[0] and note_look[1] == "dashed", (reply_look, note_look)
    await screenshot(officer, "console-desktop")

    # resolve: the relative sees the state and the rating prompt
    await officer.locator("#act-resolve").click()
    await expect(officer.locator("#chat-notice")).to_have_text("会话已标记为已解决，家属可以评价。")
    await expect(relative.locator("#rate-form")).to_be_visible()
    await expect(relative.locator("#conv-state")).to_contain_text("已解答")
    await relative.reload()
    await expect(relative.locator("#messages")).to_contain_text("会见时间为每周二、周四上午。")
    assert "已核实无异常" not in await relative.locator("body").inner_text()
    await screenshot(relative, "console-relative-after-resolve-phone")

    await officer.set_viewport_size({"width": 360, "height": 740})
    await screenshot(officer, "console-phone")
    pages.assert_clean()


async def add_officer(site: Site, login: str, name: str) -> User:
    user = await accounts.add_user(site.store, "officer", login, name, "x", [site.world.gaoming.id])
    site.world.tokens[user.login] = await sessions.issue(site.store, user, days=1)
    return user


async def test_a_lost_claim_shows_who_has_it_and_a_transfer_reaches_the_colleague(
    pages: Pages, site: Site
) -> None:
    world = site.world
    wu = await add_officer(site, "officer.wu", "Officer Wu")
    await ask(site, "孩子的零用钱还有多少？")
    li = await console(pages, site, world.officer)
    other = await console(pages, site, wu)
    for page in (li, other):
        await queue_item(page, world.conv.id).click()
        await expect(page.locator("#act-claim")).to_be_enabled()

    # Officer Li's claim lands between Officer Wu's click and Wu's request reaching the server
    async def li_first(route: Route) -> None:
        await api(site, "POST", f"/conversations/{world.conv.id}/claim", world.officer)
        await route.continue_()

    await other.route(f"**/api/v1/conversations/{world.conv.id}/claim", li_first)
    pages.allowed.append("the server responded with a status of 409")  # Chromium logs it
    await other.locator("#act-claim").click()
    await expect(other.locator("#chat-notice")).to_have_text("此会话已由 Officer Li 认领。")
    await expect(other.locator("#act-claim")).to_be_disabled()
    await expect(other.locator("#chat-sub")).to_contain_text("由 Officer Li 处理")
    await expect(li.locator("#chat-sub")).to_contain_text("由我处理")  # live, on Li's page

    # Li hands it over to Wu, with a note that only staff read
    await li.locator("#act-transfer").click()
    target = li.locator("#transfer-to")
    await expect(target.locator("option", has_text="Officer Wu")).to_have_count(1)
    await target.select_option(label="Officer Wu")
    await li.locator("#transfer-note").fill("家属询问零用钱，请核对账目后答复")
    await li.locator("#transfer-form button[type=submit]").click()
    await expect(li.locator("#chat-notice")).to_have_text("已转交给 Officer Wu。")
    await expect(other.locator("#toast")).to_contain_text("家属询问零用钱，请核对账目后答复")
    await expect(other.locator("#chat-sub")).to_contain_text("由我处理")
    await expect(other.locator("#chat-sub")).to_contain_text("交接说明：家属询问零用钱")
    await expect(other.locator("#act-transfer")).to_be_enabled()
    await other.locator('input[name="queue-filter"][value="mine"]').check()
    await expect(queue_item(other, world.conv.id)).to_be_visible()
    pages.assert_clean()


async def test_the_officer_decides_link_and_visit_requests(pages: Pages, site: Site) -> None:
    world = site.world
    link = await api(
        site,
        "POST",
        "/links",
        world.stranger,
        {"prison": "GM", "inmate_number": "GM-002", "relationship": "sister", "evidence": "户口本"},
    )
    await api(
        site,
        "PUT",
        f"/prisons/{world.gaoming.id}/visit-rules",
        world.officer,
        {"days": [1, 2, 3, 4, 5, 6, 7], "hours": [{"start": "08:00", "end": "17:00"}]},
    )
    tomorrow = (datetime.now(SHANGHAI) + timedelta(days=2)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    visit = await api(
        site,
        "POST",
        "/visits",
        world.relative,
        {"inmate_id": world.conv.inmate_id, "slot_start": tomorrow.isoformat(), "visitors": 2},
    )
    # signed out: the sign-in form; a relative's account is not let in, an officer's is
    await accounts.add_user(
        site.store, "relative", "13900000009", "Lin Fang", hash_password(PASSWORD)
    )
    await accounts.add_user(
        site.store,
        "officer",
        "officer.zhou",
        "Officer Zhou",
        hash_password(PASSWORD),
        [world.gaoming.id],
    )
    officer = await pages.open("/console", size="desktop", label="console:signin")
    form = officer.locator("#signin-form")
    await form.locator('input[name="login"]').fill("officer.zhou")
    await form.locator('input[name="password"]').fill("not the password")
    await form.locator('button[type="submit"]').click()
    await expect(officer.locator("#signin-error")).to_have_text("账号或密码不正确。")
    await form.locator('input[name="login"]').fill("13900000009")
    await form.locator('input[name="password"]').fill(PASSWORD)
    await form.locator('button[type="submit"]').click()
    await expect(officer.locator("#signin-error")).to_contain_text("干警")
    await expect(officer.locator("#desk")).to_be_hidden()
    await form.locator('input[name="login"]').fill("officer.zhou")
    await form.locator('input[name="password"]').fill(PASSWORD)
    await form.locator('button[type="submit"]').click()
    await expect(officer.locator("body")).to_have_attribute("data-ready", "1")
    await expect(officer.locator("#who")).to_have_text("Officer Zhou")
    await expect(officer.locator("#count-links")).to_have_text("1")
    await expect(officer.locator("#count-visits")).to_have_text("1")

    await officer.locator("#tab-links").click()
    card = officer.locator(f'#links li[data-link="{link["id"]}"]')
    await expect(card).to_contain_text("Stranger")
    await expect(card).to_contain_text("户口本")
    await card.locator('button[data-action="verify"]').click()
    await expect(officer.locator("#links-empty")).to_be_visible()
    decided = await api(site, "GET", f"/links/{link['id']}", world.stranger)
    assert decided["state"] == "verified"

    # keyboard: the tabs move with the arrow keys
    await officer.locator("#tab-links").focus()
    await officer.keyboard.press("ArrowRight")
    await expect(officer.locator("#tab-visits")).to_have_attribute("aria-selected", "true")
    request = officer.locator(f'#visits li[data-visit="{visit["id"]}"]')
    await expect(request).to_contain_text("Chen Jian")
    await request.locator('button[data-action="decline"]').click()  # no reason: refused here
    await expect(request.locator(".error")).to_have_text("请填写理由。")
    await request.locator('button[data-action="approve"]').click()
    await expect(officer.locator("#visits-empty")).to_be_visible()
    visits = await api(site, "GET", "/visits", world.relative)
    assert [v["state"] for v in visits["visits"]] == ["approved"]
    pages.assert_clean()


async def test_the_inmate_card_is_updated_inline_and_quoted_as_a_fact(
    pages: Pages, site: Site
) -> None:
    world = site.world
    await ask(site, "零用钱还有多少？")
    officer = await console(pages, site, world.officer)
    await queue_item(officer, world.conv.id).click()
    money = officer.locator('#card-body section[data-part="money"]')
    await money.locator("button.edit").click()
    await money.locator('input[name="amount"]').fill("312.50")
    await money.locator('button[type="submit"]').click()
    await expect(money.locator("dd .money")).to_have_text("312.50 元")
    card = await api(site, "GET", f"/inmates/{world.conv.inmate_id}", world.relative)
    assert card["info"]["money"]["balance_fen"] == 31250

    # a spending above the balance: refused, and said by its code in the user's language
    pages.allowed.append("the server responded with a status of 400")  # Chromium logs it
    await money.locator("button.edit").click()
    await money.locator('select[name="kind"]').select_option("spending")
    await money.locator('input[name="amount"]').fill("400")
    await money.locator('button[type="submit"]').click()
    await expect(money.locator(".error")).to_have_text("余额不足，支出不能超过余额。")
    await money.locator('input[name="amount"]').press("Escape")

    await money.locator("button.fact").click()
    fact = officer.locator("#messages li.kind-system .bubble")
    await expect(fact).to_contain_text("零用钱余额 312.50 元")
    history = await api(site, "GET", f"/conversations/{world.conv.id}/messages", world.relative)
    assert any(m["kind"] == "system" and "312.50" in m["body"] for m in history["messages"])

    # English: the card and the money follow the language
    await officer.locator("select.locale-switch").select_option("en")
    await expect(money.locator("dd .money")).to_have_text("¥312.50")
    await expect(officer.locator("#act-claim")).to_have_text("Claim")
    await screenshot(officer, "console-card-desktop-en")
    pages.assert_clean()


async def test_a_question_waiting_past_the_target_shows_in_the_queue_marked_overdue(
    pages: Pages, site: Site
) -> None:
    """A question that already waited past the 5-minute target when the console loads: its
    row is drawn (not an empty queue), marked overdue, with a wait of 10 minutes or more."""
    world = site.world
    await ask(site, "等了很久还没有人回复")
    async with site.store.write() as sql:
        await sql.execute(
            "UPDATE conversations SET wait_started_at = wait_started_at - interval '10 minutes'"
            " WHERE id = $1",
            world.conv.id,
        )
        await sql.execute(
            "UPDATE conversation_cycles"
            " SET wait_started_at = wait_started_at - interval '10 minutes'"
            " WHERE conversation_id = $1",
            world.conv.id,
        )
    officer = await console(pages, site, world.officer, duty=False)
    item = queue_item(officer, world.conv.id)
    await expect(item).to_contain_text("Chen Mei · 关于 Chen Jian")
    await expect(item).to_have_class(re.compile(r"\boverdue\b"))
    timer = item.locator(".timer")
    await expect(timer).to_have_class(re.compile(r"\boverdue\b"))
    assert int(await timer.get_attribute("data-seconds") or 0) >= 600
    await expect(officer.locator("#queue-empty")).to_be_hidden()
    pages.assert_clean()


async def test_a_refused_decision_says_why_and_can_be_tried_again(pages: Pages, site: Site) -> None:
    """A verify the server refuses: the reason is shown and the button works again (no
    uncaught error after the await). The relationship is shown in the officer's language."""
    world = site.world
    link = await api(
        site,
        "POST",
        "/links",
        world.stranger,
        {
            "prison": "GM",
            "inmate_number": "GM-002",
            "relationship": "sibling",
            "evidence": "户口本",
        },
    )
    officer = await console(pages, site, world.officer, duty=False)
    await officer.locator("#tab-links").click()
    card = officer.locator(f'#links li[data-link="{link["id"]}"]')
    await expect(card.locator("dd", has_text="兄弟姐妹")).to_have_count(1)

    refused = 0

    async def refuse_once(route: Route) -> None:
        nonlocal refused
        refused += 1
        if refused == 1:
            error = {"error": {"code": "unavailable", "message": "try again"}}
            await route.fulfill(status=503, json=error)
        else:
            await route.continue_()

    await officer.route(f"**/api/v1/links/{link['id']}/verify", refuse_once)
    pages.allowed.append("the server responded with a status of 503")  # Chromium logs it
    verify = card.locator('button[data-action="verify"]')
    await verify.click()
    await expect(card.locator(".error")).to_have_text("服务暂时不可用，请稍后再试。")
    await expect(verify).to_be_enabled()
    await verify.click()
    await expect(officer.locator("#links-empty")).to_be_visible()
    decided = await api(site, "GET", f"/links/{link['id']}", world.stranger)
    assert decided["state"] == "verified"
    await officer.locator("select.locale-switch").select_option("en")
    await expect(officer.locator("#prison-name")).to_have_text("Gaoming Prison")
    pages.assert_clean()


async def test_a_new_question_is_announced_and_the_focus_stays_on_its_row(
    pages: Pages, site: Site
) -> None:
    """The queue is rebuilt on every change, so it is no live region: a small announcer says
    each new question once, and the row that had the keyboard focus keeps it."""
    world = site.world
    officer = await console(pages, site, world.officer, duty=False)
    assert await officer.locator("#queue").get_attribute("aria-live") is None
    announcer = officer.locator("#announcer")
    await expect(announcer).to_have_attribute("aria-live", "polite")
    await ask(site, "请问这个月的会见安排？")
    await expect(announcer).to_have_text("新问题：Chen Mei 询问 Chen Jian")
    await queue_item(officer, world.conv.id).focus()
    await ask(site, "请问零用钱到账了吗？", relative=world.relative_b)
    await expect(announcer).to_have_text("新问题：Huang Lan 询问 Huang Bo")
    await expect(queue_item(officer, world.conv_b.id)).to_be_visible()
    await expect(queue_item(officer, world.conv.id)).to_be_focused()
    pages.assert_clean()


async def test_the_queue_is_loaded_again_after_the_socket_reconnects(
    browser: Browser, pg_store: PostgresDatabase, restartable: tuple[ServerProcess, World]
) -> None:
    """A question stored while the console's socket was down (its event published to no
    one): the queue shows it once the socket is back."""
    server, world = restartable
    pages = Pages(browser, server.http_url)
    try:
        officer = await open_console(pages, world, world.officer, duty=False)
        await expect(officer.locator("#queue-empty")).to_be_visible()
        await server.stop()
        await expect(officer.locator("body")).to_have_attribute("data-socket", "reconnecting")
        question = NewMessage(world.conv.id, world.relative.id, "relative", "offline-q", "在吗？")
        await pg_store.append_messages([question])
        await server.start()  # the same port
        await expect(officer.locator("body")).to_have_attribute(
            "data-socket", "connected", timeout=30_000
        )
        item = queue_item(officer, world.conv.id)
        await expect(item).to_contain_text("Chen Mei · 关于 Chen Jian")
        await expect(item.locator(".timer")).to_be_visible()
        await expect(officer.locator("#count-queue")).to_have_text("1")
        pages.assert_clean()
    finally:
        await pages.close()


async def test_an_officer_sets_a_new_password_for_a_relative_at_the_visit_desk(
    pages: Pages, site: Site
) -> None:
    """The staff-assisted reset: a relative at the desk with no phone at hand gets a new
    password from the officer; every session of the relative ends, and it is audited."""
    world = site.world
    tomorrow = (datetime.now(SHANGHAI) + timedelta(days=2)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    visit = await api(
        site,
        "POST",
        "/visits",
        world.relative,
        {"inmate_id": world.conv.inmate_id, "slot_start": tomorrow.isoformat(), "visitors": 1},
    )
    officer = await pages.open("/console", token=world.token(world.officer), size="desktop")
    await expect(officer.locator("body")).to_have_attribute("data-ready", "1")
    await officer.locator("#tab-visits").click()
    request = officer.locator(f'#visits li[data-visit="{visit["id"]}"]')
    box = request.locator("details.desk-reset-box")
    await box.locator("summary").click()
    await expect(box).to_contain_text(world.relative.name)
    await box.locator('input[name="new_password"]').fill("violet harbour lamp")
    await box.locator('button[type="submit"]').click()
    await expect(officer.locator("#toast")).to_contain_text(world.relative.name)
    _, stored = await accounts.credentials(site.store, world.relative.login)
    assert verify(stored, "violet harbour lamp")
    token = sessions.token_hash(world.token(world.relative))
    assert await stored_sessions.session_user(site.store, token, utcnow()) is None
    [entry] = await audit_trail.audit_entries(site.store, action="user.password_reset")
    assert (entry.actor_id, entry.object_id) == (world.officer.id, world.relative.id)
    pages.assert_clean()
