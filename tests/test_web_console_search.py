"""The duty console's search, filtered thread list and keyboard shortcuts (issue 18), in a
real Chromium at 1280 px against a real server on PostgreSQL and Redis (tests/browser.py).

A search from the top bar finds an old message (two Chinese characters), shows its snippet
as text, and opens its conversation at that message with the rest following live; the
shortcuts' help is visible and fits; j / k move through the queue, c claims, r resolves;
the filter narrows the list by the relative's name and Clear brings the live queue back.
"""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from domain.records import NewMessage
from tests.browser import (  # noqa: F401 (fixtures)
    Pages,
    Site,
    browser_fixture,
    chromium_fixture,
    pages_fixture,
    screenshot,
    site_fixture,
)

WIDTH, HEIGHT = 1280, 800
FOUND = "他最近身体怎么样 <b>要紧吗</b>"


async def inside_viewport(page: Page, selector: str) -> None:
    box = await page.locator(selector).bounding_box()
    assert box is not None, selector
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= WIDTH + 0.5, (selector, box)
    assert box["y"] + box["height"] <= HEIGHT + 0.5, (selector, box)


async def no_horizontal_scroll(page: Page) -> None:
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths


async def unfocus(page: Page) -> None:
    """Nothing focused: shortcuts are off while a text field or a control has the focus."""
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")


async def test_search_shortcuts_and_filters_at_1280(pages: Pages, site: Site) -> None:
    w = site.world
    # an old question, then seventy more messages: the hit is far from the latest page
    await site.store.append_messages(
        [NewMessage(w.conv.id, w.relative.id, "relative", "found", FOUND, "text", "Chen Mei")]
        + [
            NewMessage(w.conv.id, w.relative.id, "relative", f"f{n}", f"filler {n}", "text")
            for n in range(2, 72)
        ]
    )
    await site.store.append_messages(
        [NewMessage(w.conv_b.id, w.relative_b.id, "relative", "b1", "钱收到了吗", "text")]
    )
    page = await pages.open(
        "/console", token=w.token(w.officer), size="desktop", label="console:search"
    )
    await page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    await expect(page.locator("body")).to_have_attribute("data-ready", "1")
    await expect(page.locator("body")).to_have_attribute("data-socket", "connected")
    await page.locator("#duty-toggle").check()
    await expect(page.locator("#duty")).to_have_class(re.compile(r"\bon\b"))
    await expect(page.locator("#queue button.item")).to_have_count(2)
    await no_horizontal_scroll(page)
    for part in ("#search-form input", "#search-form button", "#shortcuts-button"):
        await expect(page.locator(part)).to_be_visible()
        await inside_viewport(page, part)

    # the help: the "?" key (nothing focused) and the visible button, both
    help_ = page.locator("#shortcuts")
    await unfocus(page)
    await page.keyboard.press("?")
    await expect(help_).to_be_visible()
    await expect(help_.locator("h2")).to_have_text("键盘快捷键")
    await expect(help_.locator("kbd")).to_have_text(["j", "k", "c", "r", "/", "?", "Esc"])
    await inside_viewport(page, "#shortcuts")
    await screenshot(page, "console-shortcuts-1280", full_page=False)
    await page.keyboard.press("Escape")
    await expect(help_).to_be_hidden()
    await page.locator("#shortcuts-button").click()
    await expect(help_).to_be_visible()
    await help_.locator("button").click()
    await expect(help_).to_be_hidden()
    await expect(page.locator("#shortcuts-button")).to_be_focused()

    # "/" goes to the search box; two characters find the old question
    await unfocus(page)
    await page.keyboard.press("/")
    box = page.locator("#search-form input")
    await expect(box).to_be_focused()
    await expect(box).to_have_value("")  # the key itself was not typed
    await box.fill("身体")
    await box.press("Enter")
    panel = page.locator("#search-panel")
    await expect(panel).to_be_visible()
    hits = panel.locator("button.hit")
    await expect(hits).to_have_count(1)
    await expect(hits.first.locator(".snippet")).to_have_text(FOUND)  # as text, tags and all
    assert await hits.first.locator(".snippet b").count() == 0
    await expect(hits.first.locator(".hit-who")).to_have_text(
        "Chen Mei · 关于 Chen Jian · 编号 GM-001"
    )
    await inside_viewport(page, "#search-panel")
    await no_horizontal_scroll(page)
    await screenshot(page, "console-search-1280", full_page=False)

    # the hit opens the conversation at that message; what came after follows live
    await hits.first.click()
    await expect(panel).to_be_hidden()
    found = page.locator('#messages li.msg[data-seq="1"]')
    await expect(found).to_have_class(re.compile(r"\bfound\b"))
    await expect(found.locator(".bubble")).to_have_text(FOUND)
    await expect(found).to_be_in_viewport()
    await expect(page.locator('#messages li.msg[data-seq="71"]')).to_have_count(1)
    await expect(page.locator("#chat-title")).to_contain_text("Chen Mei")

    # Latin text, any case; Escape closes the results and gives the box back
    await box.fill("FILLER 7")
    await box.press("Enter")
    await expect(hits.locator(".snippet")).to_have_text(["filler 71", "filler 70", "filler 7"])
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(box).to_be_focused()
    pages.allowed.append("the server responded with a status of 400")  # Chromium logs it
    await box.fill("身")
    await box.press("Enter")
    await expect(panel.locator(".search-status")).to_have_text("请至少输入两个字。")
    await page.keyboard.press("Escape")

    # j / k through the queue (waiting, oldest first: A then B), c claims, r resolves
    queue = page.locator("#queue")
    await unfocus(page)
    await page.keyboard.press("j")
    current = queue.locator('button.item[aria-current="true"]')
    await expect(current).to_have_attribute("data-conv", str(w.conv_b.id))
    await expect(page.locator("#chat-title")).to_contain_text("Huang Lan")
    await page.keyboard.press("k")
    await expect(current).to_have_attribute("data-conv", str(w.conv.id))
    await expect(page.locator("#chat-title")).to_contain_text("Chen Mei")
    await page.keyboard.press("c")
    await expect(page.locator("#chat-notice")).to_have_text("您已认领此会话。")
    await expect(page.locator("#chat-sub")).to_contain_text("由我处理")
    await page.keyboard.press("r")
    await expect(page.locator("#chat-notice")).to_have_text("会话已标记为已解决，家属可以评价。")
    await expect(queue.locator("button.item")).to_have_count(1)  # A left the open queue

    # the filter: every state, by the relative's name; Clear brings the live queue back
    await page.locator("#thread-filters summary").click()
    form = page.locator("#filters-form")
    await form.locator('select[name="state"]').select_option("all")
    await form.locator('input[name="relative"]').fill("chen")
    await form.locator('button[type="submit"]').click()
    browse = page.locator("#browse")
    await expect(browse).to_be_visible()
    await expect(queue).to_be_hidden()
    await expect(browse.locator("button.item")).to_have_count(1)
    await expect(browse.locator("button.item")).to_have_attribute("data-conv", str(w.conv.id))
    await expect(page.locator("#browse-status")).to_have_text("显示 1 个会话")
    await no_horizontal_scroll(page)
    await screenshot(page, "console-filters-1280", full_page=False)
    await form.locator('button[type="reset"]').click()
    await expect(browse).to_be_hidden()
    await expect(queue).to_be_visible()
    await expect(queue.locator("button.item")).to_have_count(1)
    pages.assert_clean()
