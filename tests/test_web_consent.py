"""Consent in the pages, in a real Chromium against a real server (tests/browser.py): the
officer records the inmate's decision in the console's consent form (beside the card), and
the relative's app shows what is shared with it, that the rest is the inmate's choice, and
the withheld parts as such, on a 375 px phone with nothing wider than the screen."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import expect

from domain.records import User
from server import sessions
from storage import accounts, links
from tests.browser import (  # noqa: F401 (fixtures)
    Pages,
    Site,
    browser_fixture,
    chromium_fixture,
    pages_fixture,
    screenshot,
    site_fixture,
)

OVERFLOW = """() => {
  const root = document.documentElement;
  const wide = [...document.querySelectorAll("#info section.card")]
    .filter((e) => e.scrollWidth > e.clientWidth
      || e.getBoundingClientRect().right > root.clientWidth + 0.5)
    .map((e) => e.dataset.part || e.id);
  return {page: root.scrollWidth - root.clientWidth, wide};
}"""


async def api(site: Site, method: str, path: str, user: User, json: Any = None) -> Any:
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
        return await response.json()


async def test_the_officer_records_consent_and_the_relative_sees_what_is_shared(
    pages: Pages, site: Site
) -> None:
    world = site.world
    inmate = world.conv.inmate_id
    await api(
        site,
        "PATCH",
        f"/inmates/{inmate}",
        world.officer,
        {"health": {"status": "poor", "note": "flu"}, "activity": "reading in the library"},
    )
    await api(
        site, "POST", f"/conversations/{world.conv.id}/messages", world.relative, {"body": "您好"}
    )

    officer = await pages.open(
        "/console", token=world.token(world.officer), size="desktop", label="console"
    )
    await expect(officer.locator("body")).to_have_attribute("data-ready", "1")
    await officer.locator(f'#queue button.item[data-conv="{world.conv.id}"]').click()
    form = officer.locator(f'#consent form.consent-relative[data-relative="{world.relative.id}"]')
    await expect(form).to_contain_text("Chen Mei")
    await expect(form).to_contain_text("尚未记录决定")  # the default applies until recorded
    for category in ("work", "health", "term", "money"):
        await form.locator(f'input[name="c-{category}"]').uncheck()
    await form.locator('input[name="witness"]').fill("狱警 吴")
    await form.locator('input[name="note"]').fill("会见室当面询问")
    await form.locator("button[type=submit]").click()
    await expect(form).to_contain_text("见证人：狱警 吴")
    await expect(form.locator('input[name="c-activity"]')).to_be_checked()
    await expect(form.locator('input[name="c-health"]')).not_to_be_checked()
    await screenshot(officer, "console-consent")
    recorded = await api(site, "GET", f"/inmates/{inmate}/consent", world.officer)
    assert recorded["items"][0]["shared"] == ["activity", "visits"]
    assert recorded["items"][0]["witness"] == "狱警 吴"

    app = await pages.open(
        f"/app#/inmate/{inmate}/info", token=world.token(world.relative), label="app"
    )
    await app.set_viewport_size({"width": 375, "height": 740})
    shared = app.locator("#shared")
    await expect(shared).to_contain_text("告知您的内容")
    await expect(shared.locator("li")).to_have_text(["日常活动", "会见资格"])
    await expect(app.locator("#rest-choice")).to_have_text("其余内容由服刑人员本人决定是否告知。")
    withheld = app.locator('#info section[data-withheld="1"]')
    await expect(withheld).to_have_count(4)
    await expect(app.locator('#info section[data-part="health"]')).to_contain_text(
        "服刑人员选择不向您告知此项。"
    )
    await expect(app.locator('#info section[data-part="health"]')).not_to_contain_text("flu")
    await expect(app.locator('#info section[data-part="activity"]')).to_contain_text(
        "reading in the library"
    )
    measured = await app.evaluate(OVERFLOW)
    assert measured == {"page": 0, "wide": []}, measured
    await screenshot(app, "app-shared-with-you-375")
    pages.assert_clean()


async def test_the_family_thread_names_each_relative_who_wrote(pages: Pages, site: Site) -> None:
    """One case for the family: in the mother's app and in the console each message of the
    shared thread names the relative who wrote it."""
    world = site.world
    inmate = world.conv.inmate_id
    brother = await accounts.add_user(site.store, "relative", "13800000031", "Chen Gang", "x")
    world.tokens[brother.login] = await sessions.issue(site.store, brother, days=1)
    link = await links.request_link(site.store, brother.id, inmate, "brother", "card")
    await api(site, "POST", f"/links/{link}/verify", world.officer, {})
    await api(
        site,
        "POST",
        f"/conversations/{world.conv.id}/messages",
        world.relative,
        {"body": "妈妈在此"},
    )
    await api(site, "PUT", f"/inmates/{inmate}/family-case", world.officer, {"enabled": True})
    opened = await api(site, "POST", "/conversations", brother, {"inmate_id": inmate})
    assert opened["id"] == world.conv.id and opened["shared"] is True
    await api(
        site, "POST", f"/conversations/{world.conv.id}/messages", brother, {"body": "哥哥来问"}
    )

    app = await pages.open(f"/app#/inmate/{inmate}", token=world.token(world.relative), label="app")
    await app.set_viewport_size({"width": 375, "height": 740})
    theirs = app.locator("#messages li.bubble").filter(has_text="哥哥来问")
    await expect(theirs.locator(".sender")).to_have_text("Chen Gang")
    await expect(app.locator("#messages li.own").filter(has_text="妈妈在此")).to_have_count(1)
    over = await app.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert over == 0
    brother_app = await pages.open(
        f"/app#/inmate/{inmate}", token=world.token(brother), label="brother"
    )
    await expect(brother_app.locator("#messages li.own").filter(has_text="哥哥来问")).to_have_count(
        1
    )
    await expect(brother_app.locator("#messages")).not_to_contain_text(
        "妈妈在此"
    )  # before he joined
    await screenshot(app, "app-family-case-375")

    officer = await pages.open(
        "/console", token=world.token(world.officer), size="desktop", label="console"
    )
    await expect(officer.locator("body")).to_have_attribute("data-ready", "1")
    await officer.locator(f'#queue button.item[data-conv="{world.conv.id}"]').click()
    metas = officer.locator("#messages li.from-relative .meta")
    await expect(metas.nth(0)).to_contain_text("Chen Mei")
    await expect(metas.nth(1)).to_contain_text("Chen Gang")
    await expect(officer.locator("#family-state")).to_have_text(
        "服刑人员已同意：已核验的亲属共用一个会话。"
    )
    pages.assert_clean()
