"""The relative app's chat as a long-time user sees it, in Chromium at phone size: day
separators, the newest message in view, older history loaded by scrolling up, unread answers
counted on the home card, the home tab and the tab title, and the larger-text switch."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import Page, expect

from domain.records import NewMessage
from tests.browser import (  # noqa: F401 (fixtures)
    Pages,
    Site,
    browser_fixture,
    chromium_fixture,
    pages_fixture,
    site_fixture,
)
from tests.test_web_app import api, chat_path, connected

PAGE = 30  # web/app/state.js HISTORY_PAGE


async def seed_history(site: Site, days: int, per_day: int) -> int:
    """``days * per_day`` messages in the world's conversation, alternating relative and
    officer, ``per_day`` on each of the last ``days`` days (today last). Returns the count."""
    w = site.world
    items = [
        NewMessage(
            w.conv.id,
            *((w.relative.id, "relative") if n % 2 == 0 else (w.officer.id, "officer")),
            f"seed-{n}",
            f"第{n + 1}条消息",
        )
        for n in range(days * per_day)
    ]
    await site.store.append_messages(items)
    # just past midnight of today in the bureau's zone: every seeded time is in the past
    today = datetime.now(ZoneInfo("Asia/Shanghai")).replace(
        hour=0, minute=5, second=0, microsecond=0
    )
    async with site.store.write() as sql:
        await sql.execute("SET LOCAL session_replication_role = replica")  # history, back-dated
        for n in range(len(items)):
            at = today - timedelta(days=days - 1 - n // per_day) + timedelta(minutes=n % per_day)
            await sql.execute(
                "UPDATE messages SET created_at = $1 WHERE conversation_id = $2 AND seq = $3",
                at,
                w.conv.id,
                n + 1,
            )
    return len(items)


async def in_viewport(page: Page, selector: str) -> bool:
    inside: bool = await page.evaluate(
        """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
                      return r.top >= 0 && r.bottom <= window.innerHeight; }""",
        selector,
    )
    return inside


async def test_a_long_chat_opens_at_the_newest_and_scrolls_back_by_day(
    pages: Pages, site: Site
) -> None:
    total = await seed_history(site, days=3, per_day=25)
    w = site.world
    page = await pages.open(chat_path(w), token=w.token(w.relative))
    await connected(page)
    bubbles = page.locator("#messages .bubble")
    newest = "#messages .bubble:last-child"
    await expect(page.locator(newest + " .body")).to_have_text(f"第{total}条消息")
    # only the latest page came with the chat, and it opened at its end
    await expect(bubbles).to_have_count(PAGE)
    assert await in_viewport(page, newest)
    assert await in_viewport(page, "#composer")
    days = page.locator("#messages li.day")
    await expect(days.last).to_have_text("今天")

    # up to the top: the page before loads above, and what was on screen stays where it was
    first = page.locator("#messages .bubble").first
    first_text = await first.locator(".body").text_content()
    await page.evaluate("document.scrollingElement.scrollTop = 0")
    await expect(bubbles).to_have_count(2 * PAGE)
    kept = page.locator("#messages .bubble", has_text=first_text or "")
    assert await kept.evaluate("(el) => el.getBoundingClientRect().top >= 0")
    await page.evaluate("document.scrollingElement.scrollTop = 0")
    await expect(bubbles).to_have_count(total)
    await expect(page.locator("#history-top")).to_have_text("以上是全部消息")
    await expect(page.locator("#messages .bubble").first.locator(".body")).to_have_text("第1条消息")
    # one separator per day, in order, each before that day's first message
    await expect(days).to_have_count(3)
    labels = await days.all_text_contents()
    assert labels[1:] == ["昨天", "今天"]
    separated: list[int] = await page.evaluate(
        """() => [...document.querySelectorAll('#messages li.day')]
                 .map((d) => d.nextElementSibling.dataset.seq).map(Number)"""
    )
    assert separated == [1, 26, 51]
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    pages.assert_clean()


async def test_unread_answers_are_counted_until_read_even_after_a_reload(
    pages: Pages, site: Site
) -> None:
    w = site.world
    page = await pages.open("/app#/", token=w.token(w.relative))
    await connected(page)
    card = page.locator(f'#inmates li[data-inmate="{w.conv.inmate_id}"]')
    await expect(card).to_be_visible()
    assert await page.title() == "亲情在线 · 家属端"
    officer = w.token(w.officer)
    for n, body in enumerate(["您好，已收到。", "他这周身体很好。"]):
        await api(
            site,
            "POST",
            f"/conversations/{w.conv.id}/messages",
            officer,
            {"body": body, "cid": f"u{n}"},
        )
    # an answer arriving while the home page is open: counted on the card, the tab and the title
    await expect(card.locator(".badge-unread")).to_have_text("2 条新回复")
    await expect(card.locator(".last-message .text")).to_have_text("他这周身体很好。")
    await expect(page.locator('nav a[data-nav="#/"] .unread')).to_have_text("2")
    await expect(page).to_have_title("(2) 亲情在线 · 家属端")
    # a reload remembers what is unread (the server's read marks, not only this page's)
    await page.reload()
    await connected(page)
    await expect(card.locator(".badge-unread")).to_have_text("2 条新回复")
    # reading the chat clears it, there and after another reload
    await card.locator("a.primary").click()
    await expect(page.locator("#messages .bubble").last.locator(".body")).to_have_text(
        "他这周身体很好。"
    )
    await expect(page).to_have_title("亲情在线 · 家属端")
    await expect(page.locator('nav a[data-nav="#/"] .unread')).to_have_count(0)
    await page.goto(site.base + "/app#/")
    await connected(page)
    await expect(card.locator(".last-message .text")).to_have_text("他这周身体很好。")
    await expect(card.locator(".badge-unread")).to_have_count(0)
    pages.assert_clean()


async def test_larger_text_scales_the_chat_fits_the_phone_and_is_remembered(
    pages: Pages, site: Site
) -> None:
    w = site.world
    await seed_history(site, days=1, per_day=4)
    page = await pages.open(chat_path(w), token=w.token(w.relative))
    await connected(page)
    body = page.locator("#messages .bubble .body").first
    await expect(body).to_be_visible()
    size = "(el) => parseFloat(getComputedStyle(el).fontSize)"
    normal = await body.evaluate(size)
    switch = page.locator("#text-size")
    await expect(switch).to_have_attribute("aria-pressed", "false")
    await switch.click()
    await expect(switch).to_have_attribute("aria-pressed", "true")
    assert await body.evaluate(size) == normal * 1.25
    for width in (360, 390):
        await page.set_viewport_size({"width": width, "height": 740})
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (width, overflow)
        tabs = page.locator("nav.tabs")  # every tab within reach, none off-screen
        assert await tabs.evaluate("(el) => el.scrollWidth <= el.clientWidth + 1"), width
    await page.reload()
    await connected(page)
    assert await page.locator("#messages .bubble .body").first.evaluate(size) == normal * 1.25
    pages.assert_clean()
