"""Figures people can read and comments on announcements, in a real Chromium (issue 16),
measured in the page: at 1024 px the monitor's and the console's period figures fit (no
element wider than its box), every figure has its label, chart ticks are whole numbers and
bars carry their values, seconds read as seconds or minutes; at a 375 px phone a relative
comments on an announcement, sees its own pending comment alone, and sees it shown to others
once an officer approved it in the console."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from playwright.async_api import Page, expect

from server.demo_history import seed_history
from storage import comments, desk_settings
from storage.announcements import NewAnnouncement, post
from storage.desk_settings import DeskHours, DeskSettings
from tests.browser import (  # noqa: F401 (fixtures)
    Pages,
    Site,
    browser_fixture,
    chromium_fixture,
    pages_fixture,
    screenshot,
    site_fixture,
)
from tests.test_web_console import api, ask, console, queue_item
from tests.world import seed_staff

LAPTOP = {"width": 1024, "height": 768}
PHONE = {"width": 375, "height": 740}

# every element of the selector whose content is wider than its box
OVERFLOWING = """(selector) => [...document.querySelectorAll(selector)]
  .filter((el) => el.scrollWidth > el.clientWidth + 1)
  .map((el) => `${el.tagName}.${el.className} ${el.scrollWidth}>${el.clientWidth}`)"""


async def page_overflow(page: Page) -> list[int]:
    widths: list[int] = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    return widths


async def with_history(site: Site) -> None:
    """Three weeks of the demo's history on the site's world."""
    w = site.world
    staff = await seed_staff(site.store, w)
    await seed_history(
        site.store,
        site.settings,
        {"GM": w.gaoming, "SH": w.sanshui},
        {"GM": [w.officer], "SH": [w.other_officer]},
        {"GM": w.supervisor, "SH": staff.other_supervisor},
        staff.admin,
        "x",
        datetime.now(UTC),
    )


async def test_the_period_figures_read_well_at_1024_px(pages: Pages, site: Site) -> None:
    await with_history(site)
    w = site.world
    context = await pages.context(w.token(w.supervisor), "desktop")
    board = pages.watch(await context.new_page(), "monitor")
    await board.set_viewport_size(LAPTOP)  # type: ignore[arg-type]
    await board.goto(pages.base + "/monitor")
    await expect(board.locator("body")).to_have_attribute("data-ready", "1")
    await board.locator("select.locale-switch").select_option("en")
    await board.locator("#tab-figures").click()
    period = board.locator("#period .period")
    await expect(period.locator(".totals > div")).to_have_count(9)

    # every total has its label and a value; durations in seconds or minutes
    for name in ("period.cycles", "period.answered", "period.late", "period.resolved"):
        figure = period.locator(f'[data-figure="{name}"]')
        await expect(figure.locator("dt")).not_to_be_empty()
        await expect(figure.locator("dd")).to_have_text(re.compile(r"^[1-9][0-9,]*$"))
    await expect(period.locator('[data-figure="period.median"] dd')).to_have_text(
        re.compile(r"^(\d+ min )?\d+ s$")
    )
    await expect(period.locator(".ratings .average")).to_have_text(
        re.compile(r"^[1-5](\.\d)? / 5$")
    )
    stars = period.locator(".period-ratings .stars li .n")
    await expect(stars).to_have_count(5)  # every star count written beside its bar
    counts = [int(text) for text in await stars.all_text_contents()]
    assert sum(counts) > 0
    officer_row = period.locator(f'.officers-table tr[data-officer="{w.officer.id}"] td')
    await expect(officer_row.nth(0)).to_have_text("Officer Li")
    await expect(officer_row.nth(1)).to_have_text(re.compile(r"^[1-9]\d*$"))
    await expect(officer_row.nth(2)).to_have_text(re.compile(r"\d+ s$"))

    # the charts: whole-number ticks, labelled bars, seconds or minutes in the title
    await expect(board.locator("#charts svg[role='img']")).to_have_count(2)
    ticks = await board.locator("#charts text.axis.y").all_text_contents()
    assert ticks and all(re.fullmatch(r"\d+( s| min)?", tick) for tick in ticks), ticks
    assert await board.locator("#charts text.bar-label").count() > 0
    await expect(board.locator("#charts figcaption").first).to_have_text(
        re.compile(r"First-response time \((seconds|minutes)\)")
    )

    # nothing wider than its box at 1024 px
    assert await board.evaluate(OVERFLOWING, "#period .totals div, #period .totals dd") == []
    assert await board.evaluate(OVERFLOWING, "#period .table-wrap, #panel-figures, .stars li") == []
    width, client = await page_overflow(board)
    assert width <= client, (width, client)
    await screenshot(board, "monitor-period-figures-1024-en")

    # the console: the same figures for the officer's own prison, fitting its side panel
    desk = await console(pages, site, w.officer, duty=False)
    await desk.set_viewport_size(LAPTOP)  # type: ignore[arg-type]
    await desk.locator("#tab-figures").click()
    await expect(desk.locator("#console-figures .totals > div")).to_have_count(9)
    await expect(desk.locator("#console-figures .ratings .average")).not_to_be_empty()
    await expect(desk.locator("#console-figures .period-ratings .stars meter")).to_have_count(5)
    assert await desk.evaluate(OVERFLOWING, "#console-figures .totals div, #panel-figures") == []
    width, client = await page_overflow(desk)
    assert width <= client, (width, client)
    await screenshot(desk, "console-period-figures-1024")
    pages.assert_clean()


async def app_news(pages: Pages, site: Site, token: str) -> Page:
    page = await pages.open("/app#/announcements", token=token)
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await expect(page.locator("#announcements li.app-announcement")).to_have_count(1)
    return page


async def test_comments_on_an_announcement_at_375_px(pages: Pages, site: Site) -> None:
    w = site.world
    news = await post(
        site.store,
        NewAnnouncement(
            author_id=w.officer.id,
            title="会见时间调整",
            body="下周起周六下午增加会见时段。",
            prison_id=w.gaoming.id,
        ),
        now=datetime.now(UTC),
    )
    mother = await app_news(pages, site, w.token(w.relative))
    block = mother.locator(f'details[data-comments="{news.id}"]')
    await block.locator("summary").click()
    await expect(block.locator("li.muted")).to_have_text("还没有评论。")
    await block.locator("textarea").fill("谢谢通知！<b>周六</b>可以带孩子吗？")
    await block.locator("button[type=submit]").click()
    mine = block.locator("li.comment")
    await expect(mine).to_have_count(1)
    await expect(mine.locator(".pre")).to_have_text("谢谢通知！<b>周六</b>可以带孩子吗？")  # text
    await expect(mine.locator(".state")).to_have_text("待审核：仅您自己可见")
    assert (
        await mother.evaluate(OVERFLOWING, ".app-comments, .app-comments li, .comment-form") == []
    )
    width, client = await page_overflow(mother)
    assert width <= client, (width, client)
    box: Any = await block.locator("textarea").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    await screenshot(mother, "app-comment-pending-375")

    other = await app_news(pages, site, w.token(w.relative_b))
    other_block = other.locator(f'details[data-comments="{news.id}"]')
    await other_block.locator("summary").click()
    await expect(other_block.locator("li.muted")).to_have_text("还没有评论。")  # not shown yet

    desk = await console(pages, site, w.officer, duty=False)
    await expect(desk.locator("#count-comments")).to_have_text("1")
    await desk.locator("#tab-comments").click()
    card = desk.locator("#comments li.comment")
    await expect(card.locator(".comment-body")).to_have_text("谢谢通知！<b>周六</b>可以带孩子吗？")
    await card.locator("button.primary").click()
    await expect(desk.locator("#comments li.comment")).to_have_count(0)
    await expect(desk.locator("#count-comments")).to_have_text("")

    await other.reload()
    await expect(other.locator("#announcements li.app-announcement")).to_have_count(1)
    await other_block.locator("summary").click()
    shown = other_block.locator("li.comment")
    await expect(shown).to_have_count(1)
    await expect(shown.locator(".who")).to_have_text(re.compile(r"^C\*+ · "))
    await expect(shown.locator(".state")).to_have_count(0)
    await expect(other_block.locator("summary")).to_have_text("评论（1）")
    width, client = await page_overflow(other)
    assert width <= client, (width, client)
    await screenshot(other, "app-comment-approved-375")
    pages.assert_clean()


async def test_the_away_reply_shows_as_the_prisons_in_the_readers_language(
    pages: Pages, site: Site
) -> None:
    """Nobody on duty: the relative's question gets the desk hours in one system card, shown
    in the page's language, not as the relative's own bubble."""
    w = site.world
    await desk_settings.update(
        site.store,
        DeskSettings(
            prison_id=w.gaoming.id,
            away_reply=True,
            desk_hours=DeskHours("周一至周五 8:30-17:30", "Mon-Fri 8:30-17:30"),
        ),
        w.officer.id,
        datetime.now(UTC),
    )
    page = await pages.open(f"/app#/inmate/{w.conv.inmate_id}", token=w.token(w.relative))
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await expect(page.locator("body")).to_have_attribute("data-socket", "connected")
    await page.locator("#compose").fill("现在有人吗？")
    await page.locator("#send").click()
    card = page.locator("#messages .bubble.system")
    await expect(card).to_have_count(1)
    await expect(card.locator(".body")).to_contain_text("周一至周五 8:30-17:30")
    await expect(card).not_to_have_class(re.compile(r"\bown\b"))
    await expect(page.locator("#messages .bubble.own")).to_have_count(1)  # the question only
    await page.locator("select.locale-switch").first.select_option("en")
    await expect(card.locator(".body")).to_contain_text("Desk hours: Mon-Fri 8:30-17:30.")
    width, client = await page_overflow(page)
    assert width <= client, (width, client)
    await screenshot(page, "app-away-reply-375-en")
    pages.assert_clean()


async def test_the_admin_sets_the_desk_and_approves_a_comment(pages: Pages, site: Site) -> None:
    w = site.world
    staff = await seed_staff(site.store, w)
    news = await post(
        site.store,
        NewAnnouncement(author_id=staff.admin.id, title="开放日", body="欢迎家属参观。"),
        now=datetime.now(UTC),
    )
    written = await comments.post(
        site.store, news.id, w.relative.id, "开放日几点开始？", datetime.now(UTC)
    )
    page = await pages.open("/admin", token=w.token(staff.admin), size="desktop")
    await page.set_viewport_size(LAPTOP)  # type: ignore[arg-type]
    await expect(page.locator("body")).to_have_attribute("data-ready", "1")
    await page.locator("#tab-desk").click()
    form = page.locator("#desk-settings-form")
    await form.locator("[name=prison]").select_option(str(w.gaoming.id))
    await expect(form.locator("[name=assign_cap]")).to_have_value("5")
    await form.locator("[name=auto_assign]").select_option("round_robin")
    await form.locator("[name=assign_cap]").fill("2")
    await form.locator("[name=away_reply]").check()
    await form.locator("[name=hours_zh]").fill("每天 9:00-17:00")
    await form.locator("[name=hours_en]").fill("daily 9:00-17:00")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#toast")).to_contain_text("值班台设置已保存")
    stored = await desk_settings.settings(site.store, w.gaoming.id)
    assert (stored.auto_assign, stored.assign_cap, stored.away_reply) == ("round_robin", 2, True)
    assert stored.desk_hours == DeskHours("每天 9:00-17:00", "daily 9:00-17:00")

    card = page.locator(f'#admin-comments li[data-comment="{written.id}"]')
    await expect(card.locator(".comment-body")).to_have_text("开放日几点开始？")
    await card.locator("button.primary").click()
    await expect(page.locator("#admin-comments li.comment")).to_have_count(0)
    assert (await comments.comment(site.store, written.id)).state == "approved"
    width, client = await page_overflow(page)
    assert width <= client, (width, client)
    await screenshot(page, "admin-desk-and-comments-1024")
    pages.assert_clean()


async def test_a_question_auto_assigned_shows_in_the_officers_console(
    pages: Pages, site: Site
) -> None:
    w = site.world
    await desk_settings.update(
        site.store,
        DeskSettings(prison_id=w.gaoming.id, auto_assign="round_robin", assign_cap=2),
        w.officer.id,
        datetime.now(UTC),
    )
    desk = await console(pages, site, w.officer)  # on duty, connected
    await ask(site, "请问会见要带什么？")
    await expect(desk.locator("#toast")).to_have_text("已为您自动分配一个问题")
    await desk.locator('input[name="queue-filter"][value="mine"]').check()
    await expect(queue_item(desk, w.conv.id)).to_be_visible()
    thread = await api(site, "GET", f"/conversations/{w.conv.id}", w.officer)
    assert (thread["state"], thread["assigned_officer"]["id"]) == ("active", w.officer.id)
    pages.assert_clean()
