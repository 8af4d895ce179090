"""Keyword review in a real Chromium against a real server on PostgreSQL and Redis
(tests/browser.py): the admin writes the lists on /admin; a relative's message that matches
them (in full-width letters) reaches the officer's chat like any other and waits in the
console's review tab; the officer marks it reviewed with a note; the supervisor's monitor
shows it reviewed, and its figures count it. The relative's app shows no trace of it.

Every test also fails on any console error or warning, uncaught page error or CSP violation
(``Pages.assert_clean``); screenshots land in tests/artifacts/.
"""

from __future__ import annotations

from playwright.async_api import expect

from storage import audit_trail, keywords
from tests.browser import (  # noqa: F401 (fixtures)
    Pages,
    Site,
    browser_fixture,
    chromium_fixture,
    pages_fixture,
    screenshot,
    site_fixture,
)
from tests.test_web_console import ask, console
from tests.test_web_monitor import monitor
from tests.world import seed_staff


async def test_the_review_queue_from_the_admins_lists_to_the_supervisors_figures(
    pages: Pages, site: Site
) -> None:
    world = site.world
    staff = await seed_staff(site.store, world)

    # -- the admin writes a category and its keywords -------------------------------------------
    admin = await pages.open("/admin", token=world.token(staff.admin), size="desktop")
    await expect(admin.locator("body")).to_have_attribute("data-ready", "1")
    await admin.locator("#tab-keywords").click()
    await admin.locator("#keyword-add").click()
    box = admin.locator("#keyword-lists .keyword-list").last
    await box.locator('input[name="category"]').fill("escape")
    await box.locator('input[name="label"]').fill("脱逃")
    await box.locator('textarea[name="words"]').fill("越狱\n翻墙\nescape")
    await admin.locator("#keywords-save").click()
    await expect(admin.locator("#toast")).to_contain_text("关键词已保存")
    await expect(admin.locator('#keyword-lists [data-category="escape"] legend')).to_have_text(
        "脱逃"
    )
    stored = await keywords.lists(site.store)
    assert stored.as_mapping() == {"escape": ["越狱", "翻墙", "escape"]}
    await screenshot(admin, "admin-keywords")

    # -- the relative asks; the message reaches the officer's chat as any other ------------------
    officer = await console(pages, site, world.officer)
    question = "他们说要ＥＳＣＡＰＥ，还说越 狱，是真的吗？"  # full-width letters, a space
    await ask(site, question)
    item = officer.locator(f'#queue button.item[data-conv="{world.conv.id}"]')
    await item.click()
    await expect(officer.locator("#messages")).to_contain_text("他们说要ＥＳＣＡＰＥ")
    await officer.locator("#tab-flags").click()
    await expect(officer.locator("#count-flags")).to_have_text("1")
    card = officer.locator("#flags li.flag")
    await expect(card).to_have_count(1)
    await expect(card).to_contain_text("脱逃")
    await expect(card.locator("blockquote")).to_have_text(question)
    await screenshot(officer, "console-flags")
    await card.locator('button[type="submit"]').click()  # no note yet: refused in the page
    await expect(card.locator(".error")).to_contain_text("请先填写复核说明")
    await card.locator('input[name="note"]').fill("家属转述传闻，已电话核实，无风险")
    await card.locator('button[type="submit"]').click()
    await expect(officer.locator("#flags-empty")).to_be_visible()
    await expect(officer.locator("#count-flags")).to_have_text("")
    [entry] = await audit_trail.audit_entries(site.store, action="flag.reviewed")
    assert entry.actor_id == world.officer.id

    # -- the relative's app shows the message as sent, and nothing of the flag -----------------
    app = await pages.open(
        f"/app#/inmate/{world.conv.inmate_id}", token=world.token(world.relative), label="app"
    )
    await expect(app.locator("body")).to_have_attribute("data-socket", "connected")
    await expect(app.locator("body")).to_contain_text("他们说要ＥＳＣＡＰＥ")
    for word in ("脱逃", "复核", "关键词"):
        await expect(app.locator("body")).not_to_contain_text(word)

    # -- the supervisor sees it reviewed, and counted ---------------------------------------------
    board = await monitor(pages, site)
    await board.locator("#tab-flags").click()
    await expect(board.locator("#flags-empty")).to_be_visible()
    await board.locator("#flags-state").select_option("reviewed")
    reviewed = board.locator("#flags li.flag")
    await expect(reviewed).to_have_count(1)
    await expect(reviewed.locator(".flag-review")).to_contain_text("Officer Li")
    await expect(reviewed.locator(".flag-review")).to_contain_text("已电话核实")
    await screenshot(board, "monitor-flags")
    await board.locator("#tab-figures").click()
    counted = board.locator('#flag-figures tr[data-category="escape"] td')
    await expect(counted).to_have_text(["脱逃", "1", "1", "0"])
    await expect(board.locator("#flag-figures caption")).to_contain_text("当前待复核 0 条")
    pages.assert_clean()
