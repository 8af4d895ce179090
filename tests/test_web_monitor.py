"""The supervisor monitor (/monitor) in a real Chromium against a real server on PostgreSQL
and Redis (tests/browser.py), with the officer's console beside it.

Every test also fails on any console error or warning, uncaught page error or CSP violation
on its pages (``Pages.assert_clean``); screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from playwright.async_api import Browser, Page, Route, WebSocket, expect

from domain.records import NewMessage
from storage.postgres import PostgresDatabase
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
from tests.record_checker import holds
from tests.servers import ServerProcess
from tests.test_web_console import api, ask, console, queue_item
from tests.world import World, seed_staff

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def monitor(pages: Pages, site: Site, *, sent: list[dict[str, Any]] | None = None) -> Page:
    """The supervisor's monitor, loaded and live; every frame its socket sends goes to ``sent``."""
    return await open_monitor(pages, site.world, sent=sent)


async def open_monitor(
    pages: Pages, world: World, *, sent: list[dict[str, Any]] | None = None
) -> Page:
    """The monitor on the server of ``pages`` (an in-process site or a server process)."""
    context = await pages.context(world.token(world.supervisor), "desktop")
    page = pages.watch(await context.new_page(), "monitor")
    if sent is not None:

        def on_socket(ws: WebSocket) -> None:
            ws.on("framesent", lambda data: sent.append(json.loads(data)))

        page.on("websocket", on_socket)
    await page.goto(pages.base + "/monitor")
    await expect(page.locator("body")).to_have_attribute("data-ready", "1")
    await expect(page.locator("body")).to_have_attribute("data-socket", "connected")
    return page


def state_count(page: Page, state: str) -> Any:
    return page.locator(f'#states li[data-state="{state}"] .n')


async def test_a_supervisor_watches_a_conversation_live_and_cannot_type(
    pages: Pages, site: Site
) -> None:
    world = site.world
    sent: list[dict[str, Any]] = []
    await ask(site, "请问下个月可以会见吗？")
    board = await monitor(pages, site, sent=sent)
    await expect(state_count(board, "waiting")).to_have_text("1")
    waiting = board.locator(f'#waiting button.item[data-conv="{world.conv.id}"]')
    await expect(waiting).to_contain_text("Chen Mei · 关于 Chen Jian")
    await expect(waiting.locator(".timer")).to_be_visible()

    officer = await console(pages, site, world.officer)
    await expect(board.locator("#on-duty")).to_contain_text("Officer Li")  # presence, live
    await queue_item(officer, world.conv.id).click()
    await officer.locator("#act-claim").click()
    await expect(state_count(board, "active")).to_have_text("1")  # the overview follows
    await expect(state_count(board, "waiting")).to_have_text("0")
    await expect(board.locator("#waiting-empty")).to_be_visible()

    await board.locator(f'#conversations button.item[data-conv="{world.conv.id}"]').click()
    watch = board.locator("#watch")
    await expect(watch.locator("#watch-messages li.from-relative .bubble")).to_have_text(
        "请问下个月可以会见吗？"
    )
    await expect(watch.locator("#watch-sub")).to_contain_text("由 Officer Li 处理")
    await expect(board.locator("body")).to_have_attribute("data-watching", str(world.conv.id))
    # no way to type: nothing editable anywhere on the page but the audit/figure filters
    await expect(
        watch.locator("textarea, input, [contenteditable], button[type=submit]")
    ).to_have_count(0)
    await expect(board.locator("textarea")).to_have_count(0)

    # the officer's reply and note appear live on the monitor, the note drawn as a note
    compose = officer.locator("#compose")
    await compose.fill("下个月的会见日期请在会见页面申请。")
    await compose.press("Enter")
    await expect(watch.locator("#watch-messages li.from-staff.kind-text .bubble")).to_have_text(
        "下个月的会见日期请在会见页面申请。"
    )
    await officer.locator('input[name="kind"][value="note"]').check()
    await compose.fill("已告知会见流程")
    await compose.press("Enter")
    await expect(watch.locator("#watch-messages li.kind-note .note-tag")).to_be_visible()
    await screenshot(board, "monitor-desktop")

    # the supervisor's socket only ever said hello and watch: no send, typing or read
    kinds = {frame["type"] for frame in sent}
    assert kinds <= {"hello", "watch", "unwatch"}, kinds
    assert {"hello", "watch"} <= kinds

    # ... and the audit trail shows the supervisor opening it (history and watch)
    await board.locator("#tab-audit").click()
    await board.locator('#audit-form select[name="action"]').select_option("conversation.opened")
    await board.locator('#audit-form button[type="submit"]').click()
    rows = board.locator("#audit-table tbody tr[data-action='conversation.opened']")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("Wang Fang")
    await expect(rows.first).to_contain_text(f"会话 #{world.conv.id}")
    await board.locator("#tab-overview").click()
    await board.set_viewport_size({"width": 360, "height": 740})
    await screenshot(board, "monitor-phone")
    await officer.set_viewport_size({"width": 360, "height": 740})
    pages.assert_clean()


async def test_figures_complaints_and_the_english_monitor(pages: Pages, site: Site) -> None:
    world = site.world
    # one answered and resolved cycle today
    await ask(site, "他的工作岗位是什么？")
    await api(site, "PUT", "/duty", world.officer, {"on_duty": True})  # off duty: 409
    await api(site, "POST", f"/conversations/{world.conv.id}/claim", world.officer)
    await api(
        site,
        "POST",
        f"/conversations/{world.conv.id}/messages",
        world.officer,
        {"body": "木工车间。"},
    )
    await api(site, "POST", f"/conversations/{world.conv.id}/resolve", world.officer)
    filed = await api(
        site,
        "POST",
        "/complaints",
        world.relative,
        {
            "prison_id": world.gaoming.id,
            "category": "会见",
            "body": "排队两个小时<script>x</script>",
        },
    )
    board = await monitor(pages, site)
    await expect(board.locator("#count-complaints")).to_have_text("1")

    # figures: two SVG charts and a table whose today row has the cycle
    await board.locator("#tab-figures").click()
    await expect(board.locator("#charts svg[role='img']")).to_have_count(2)
    await expect(board.locator("#charts svg rect.bar.answered")).not_to_have_count(0)
    today = datetime.now(SHANGHAI).date().isoformat()
    row = board.locator(f'#figures-table tr[data-day="{today}"] td')
    await expect(row.nth(3)).to_have_text("1")  # cycles
    await expect(row.nth(4)).to_have_text("1")  # answered
    await expect(row.nth(8)).to_have_text("1")  # resolved

    # complaints: read it (as text), move it on with a message the relative gets
    await board.locator("#tab-complaints").click()
    await board.locator(f'#complaints button.item[data-complaint="{filed["id"]}"]').click()
    detail = board.locator("#complaint")
    await expect(detail.locator(".complaint-body")).to_have_text("排队两个小时<script>x</script>")
    await detail.locator('button[type="submit"]').click()  # no message: refused here
    await expect(detail.locator(".error")).to_have_text("请填写给投诉人的说明。")
    await detail.locator("#move-state").select_option("in_review")
    await detail.locator("#move-message").fill("已收到，正在调查。")
    await detail.locator('button[type="submit"]').click()
    await expect(detail.locator(".complaint-head .state-badge").first).to_have_text("审查中")
    await expect(detail.locator(".history li")).to_have_count(2)
    mine = await api(site, "GET", f"/complaints/{filed['id']}", world.relative)
    assert mine["state"] == "in_review"
    assert mine["history"][-1]["message"] == "已收到，正在调查。"

    # a new complaint arrives live in the inbox
    await api(
        site,
        "POST",
        "/complaints",
        world.relative_b,
        {"prison_id": world.gaoming.id, "category": "伙食", "body": "饭菜太咸"},
    )
    await expect(board.locator("#complaints button.item")).to_have_count(2)
    await expect(board.locator("#count-complaints")).to_have_text("1")  # the new, received one

    # English, all of it
    await board.locator("select.locale-switch").select_option("en")
    await expect(board.locator("#tab-figures")).to_have_text("Response times")
    await expect(detail.locator(".complaint-head .state-badge").first).to_have_text("In review")
    await board.locator("#tab-figures").click()
    await expect(board.locator("#figures-table thead th").nth(4)).to_have_text("Answered")
    await expect(board).to_have_title(re.compile("Supervisor monitor"))
    await screenshot(board, "monitor-figures-desktop-en")
    pages.assert_clean()


def conversation_item(page: Page, conv_id: int) -> Any:
    return page.locator(f'#conversations button.item[data-conv="{conv_id}"]')


async def test_switching_while_a_history_loads_watches_only_the_one_shown(
    pages: Pages, site: Site
) -> None:
    """The supervisor opens A, and B before A's history came: A's history then fails, and
    A is not watched (nor marked as watched); only B, shown, is."""
    world = site.world
    await ask(site, "请问会见要带什么？")
    await ask(site, "请问零用钱到了吗？", relative=world.relative_b)
    board = await monitor(pages, site)
    await instrument(board)
    asked, release = asyncio.Event(), asyncio.Event()

    async def hold_then_fail(route: Route) -> None:
        asked.set()
        await release.wait()
        await route.abort()

    await board.route(f"**/api/v1/conversations/{world.conv.id}/messages*", hold_then_fail)
    pages.allowed.append("net::ERR_FAILED")  # Chromium logs the aborted request
    await conversation_item(board, world.conv.id).click()
    await asked.wait()
    await conversation_item(board, world.conv_b.id).click()
    watch = board.locator("#watch-messages")
    await expect(watch.locator("li.from-relative .bubble")).to_have_text("请问零用钱到了吗？")
    await expect(board.locator("body")).to_have_attribute("data-watching", str(world.conv_b.id))
    release.set()
    await board.wait_for_function(
        """(path) => window.__fetched.some((f) => f.url.includes(path) && f.settled)""",
        arg=f"/conversations/{world.conv.id}/messages",
    )
    await expect(board.locator("body")).to_have_attribute("data-watching", str(world.conv_b.id))
    sent = await board.evaluate("() => window.__sent")
    watched = [f["conv"] for f in sent if f and f["type"] == "watch"]
    assert watched == [world.conv_b.id], sent
    await expect(board.locator("#toast")).to_be_hidden()  # nothing said about A
    pages.assert_clean()


async def admin_audit(base: str, token: str) -> list[dict[str, Any]]:
    """``GET /audit?action=conversation.opened`` as an administrator, newest first."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{base}/api/v1/audit",
            params={"action": "conversation.opened", "limit": "100"},
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        entries: list[dict[str, Any]] = (await response.json())["entries"]
        return entries


async def test_a_conversation_no_longer_watched_is_not_opened_again_after_a_reconnect(
    browser: Browser, pg_store: PostgresDatabase, restartable: tuple[ServerProcess, World]
) -> None:
    """The supervisor watches A, then B (A is unwatched); the server restarts and the socket
    reconnects: the overview is loaded again (a change made meanwhile shows), and the audit
    trail gains an opening of B only (A is not resumed, B not opened twice)."""
    server, world = restartable
    staff = await seed_staff(pg_store, world)
    admin = world.token(staff.admin)
    for who, conv in ((world.relative, world.conv), (world.relative_b, world.conv_b)):
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{server.http_url}/api/v1/conversations/{conv.id}/messages",
                json={"body": f"question of {who.name}"},
                headers={"Authorization": f"Bearer {world.token(who)}"},
            ) as response,
        ):
            assert response.status < 300, await response.text()
    pages = Pages(browser, server.http_url)
    try:
        board = await open_monitor(pages, world)
        body = board.locator("body")
        for conv in (world.conv, world.conv_b):
            await conversation_item(board, conv.id).click()
            await expect(body).to_have_attribute("data-watching", str(conv.id))
        watch = board.locator("#watch-messages")
        await expect(watch.locator("li.from-relative .bubble")).to_have_text(
            "question of Huang Lan"
        )
        before = max(e["id"] for e in await admin_audit(server.http_url, admin))

        await expect(state_count(board, "waiting")).to_have_text("2")
        await server.stop()
        await expect(body).to_have_attribute("data-socket", "reconnecting")
        # while no server runs, an officer's answer to A is stored (it claims A): the event
        # of that change reaches nobody, the overview must be loaded again
        answer = NewMessage(world.conv.id, world.officer.id, "officer", "away-1", "已收到。")
        await pg_store.append_messages([answer])
        await server.start()  # the same port
        await expect(body).to_have_attribute("data-socket", "connected", timeout=30_000)
        await expect(state_count(board, "active")).to_have_text("1")
        await expect(state_count(board, "waiting")).to_have_text("1")
        # B is followed again: a new message arrives (its opening was audited before that)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{server.http_url}/api/v1/conversations/{world.conv_b.id}/messages",
                json={"body": "after the restart"},
                headers={"Authorization": f"Bearer {world.token(world.relative_b)}"},
            ) as response,
        ):
            assert response.status < 300, await response.text()
        await expect(watch.locator("li.from-relative .bubble").last).to_have_text(
            "after the restart"
        )
        opened = [e for e in await admin_audit(server.http_url, admin) if e["id"] > before]
        assert [(e["object_id"], e["actor"]["id"]) for e in opened] == [
            (world.conv_b.id, world.supervisor.id)
        ], opened
        pages.assert_clean()
    finally:
        await pages.close()


async def test_the_monitor_fits_a_phone_and_speaks_english_without_chinese_marks(
    pages: Pages, site: Site
) -> None:
    """At 360 px the response-time charts fit the screen; in English the on-duty line, and a
    complaint's category, are English (no Chinese punctuation, no raw category code)."""
    world = site.world
    await api(
        site,
        "POST",
        "/complaints",
        world.relative,
        {"prison_id": world.gaoming.id, "category": "visits", "body": "会见申请没有答复"},
    )
    board = await monitor(pages, site)
    await console(pages, site, world.officer)  # on duty, online
    await board.set_viewport_size({"width": 360, "height": 740})
    await board.locator("select.locale-switch").select_option("en")
    await expect(board.locator("#on-duty")).to_have_text("1 officer on duty: Officer Li")
    await board.locator("#tab-complaints").click()
    await expect(board.locator("#complaints button.item .who-line")).to_contain_text(" · Visits")
    await board.locator("#tab-figures").click()
    charts = board.locator("#charts .chart")
    await expect(charts).to_have_count(2)
    for chart in await charts.all():
        box = await chart.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
    await screenshot(board, "monitor-figures-phone-en")
    pages.assert_clean()


async def test_a_supervisor_takes_the_transcript_and_an_audit_period_for_a_complaint_file(
    pages: Pages, site: Site
) -> None:
    world = site.world
    await ask(site, "<b>请问</b>下个月可以会见吗？")
    board = await monitor(pages, site)
    await board.locator(f'#conversations button.item[data-conv="{world.conv.id}"]').click()
    link = board.locator("#watch-transcript-csv")
    href = await link.get_attribute("href")
    assert href == f"/api/v1/conversations/{world.conv.id}/transcript?format=csv"
    csv_text = await board.evaluate("(u) => fetch(u).then((r) => r.text())", href)
    assert "<b>请问</b>下个月可以会见吗？" in csv_text  # the text as written, in a cell
    printed = await board.locator("#watch-transcript-print").get_attribute("href")
    page = await board.evaluate("(u) => fetch(u).then((r) => r.text())", printed)
    assert "&lt;b&gt;请问&lt;/b&gt;" in page and "<b>请问" not in page  # never markup
    await board.locator("#audit-form").evaluate("f => f.requestSubmit()")
    audit_href = await board.locator("#audit-export-csv").get_attribute("href")
    assert audit_href and audit_href.startswith("/api/v1/audit/export?")
    trail = await board.evaluate("(u) => fetch(u).then((r) => r.text())", audit_href)
    assert "conversation.opened" in trail  # the look just taken is in the period
    pages.assert_clean()


async def test_a_supervisor_downloads_the_verifiable_record_of_a_conversation(
    pages: Pages, site: Site
) -> None:
    world = site.world
    await ask(site, "下个月可以会见吗？")
    board = await monitor(pages, site)
    await board.locator(f'#conversations button.item[data-conv="{world.conv.id}"]').click()
    link = board.locator("#watch-record")
    await expect(link).to_be_visible()
    href = await link.get_attribute("href")
    assert href == f"/api/v1/conversations/{world.conv.id}/export"
    record = await board.evaluate("(u) => fetch(u).then((r) => r.json())", href)
    assert record["messages"][-1]["body"] == "下个月可以会见吗？" and holds(record)
    pages.assert_clean()
