"""Attachments in the pages, in a real Chromium against a real server on PostgreSQL and Redis:
a relative on a phone-sized page (375 px) attaches a photo to its question, the officer sees
its thumbnail in the console and opens the full image; a relative's link request carries a
photo of its household register, which the officer deciding it sees beside the request.

Every test fails on any console error or warning, uncaught page error or CSP violation on its
pages (``Pages.assert_clean``); screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Browser, FilePayload, Page, ViewportSize, expect

from storage import prisons
from storage.postgres import PostgresDatabase
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

PHONE_375: ViewportSize = {"width": 375, "height": 812}


@pytest.fixture
async def site(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[Site]:
    world = await seed(pg_store)
    settings = web_settings(pg_url, redis_url, redis_prefix, files=str(tmp_path / "files"))
    async with inprocess(settings, pg_store) as served:
        yield Site(served.http_url, world, pg_store, settings)


@pytest.fixture
async def pages(browser: Browser, site: Site) -> AsyncIterator[Pages]:
    opened = Pages(browser, site.base)
    try:
        yield opened
    finally:
        await opened.close()


def photo(name: str = "IMG_2041.jpg") -> FilePayload:
    """A phone's photo: 1200 x 900, with EXIF carrying a GPS position."""
    image = Image.new("RGB", (1200, 900), (40, 110, 180))
    for x in range(0, 1200, 100):  # something to see in the thumbnail
        image.paste((240, 200, 40), (x, 300, x + 50, 600))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (23.0, 2.0, 0.0), 3: "E", 4: (113.0, 7.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return {"name": name, "mimeType": "image/jpeg", "buffer": out.getvalue()}


async def fits_the_screen(page: Page, selector: str) -> None:
    """Nothing wider than the screen: the page does not scroll sideways, and every element
    matched keeps its content inside its own box."""
    widths = await page.evaluate(
        """(selector) => ({
             page: document.documentElement.scrollWidth,
             screen: window.innerWidth,
             over: [...document.querySelectorAll(selector)]
               .filter((el) => el.scrollWidth > el.clientWidth + 1).length,
           })""",
        selector,
    )
    assert widths["page"] <= widths["screen"], widths
    assert widths["over"] == 0, widths


async def test_a_relative_attaches_a_photo_and_the_officer_opens_it(
    site: Site, pages: Pages
) -> None:
    w = site.world
    relative = await pages.open(
        f"/app#/inmate/{w.conv.inmate_id}", token=w.token(w.relative), label="app"
    )
    await relative.set_viewport_size(PHONE_375)
    await expect(relative.locator("body")).to_have_attribute("data-socket", "connected")
    attach = relative.locator("label.attach-button")
    await expect(attach).to_be_visible()
    box = await attach.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    await relative.locator("#attach").set_input_files(photo())
    chosen = relative.locator("#composer-files .attachments.chosen li.attachment")
    await expect(chosen).to_have_count(1)
    await expect(chosen.locator("img")).to_have_js_property("complete", True)
    await relative.locator("#compose").fill("这是他户口本的照片")
    await relative.locator("#send").click()
    own = relative.locator("#messages li.bubble.own").filter(has_text="这是他户口本的照片")
    await expect(own).to_have_attribute("data-status", re.compile("sent|read"))
    await expect(own.locator(".attachments img")).to_be_visible()
    await expect(chosen).to_have_count(0)  # the composer is empty again
    await fits_the_screen(relative, "#messages li.bubble, .composer")
    composer = await relative.locator("#composer").bounding_box()
    assert composer is not None and composer["y"] + composer["height"] <= PHONE_375["height"]
    await screenshot(relative, "attachments-app-375")

    officer = await pages.open(
        "/console", token=w.token(w.officer), size="desktop", label="console"
    )
    await expect(officer.locator("body")).to_have_attribute("data-socket", "connected")
    await officer.locator(f'#queue button.item[data-conv="{w.conv.id}"]').click()
    received = officer.locator("#messages li.from-relative").filter(has_text="这是他户口本的照片")
    thumb = received.locator(".attachments a.thumb img")
    await expect(thumb).to_be_visible()
    loaded = await thumb.evaluate("(img) => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert loaded == [True, 320, 240], loaded  # the thumbnail, not the full image
    await screenshot(officer, "attachments-console", full_page=False)
    async with officer.context.expect_page() as opening:
        await received.locator(".attachments a.thumb").click()
    full = await opening.value
    await full.wait_for_load_state()
    assert re.search(r"/api/v1/attachments/\d+$", full.url), full.url
    size = await full.evaluate(
        "() => { const img = document.querySelector('img');"
        " return img && [img.naturalWidth, img.naturalHeight]; }"
    )
    assert size == [1200, 900], size
    await full.close()

    # the officer answers with a PDF; the relative gets it as a download link
    pdf: FilePayload = {
        "name": "会见须知.pdf",
        "mimeType": "application/pdf",
        "buffer": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
    }
    await officer.locator("#attach").set_input_files(pdf)
    await expect(officer.locator("#composer .attachments.chosen li.file")).to_have_count(1)
    await officer.locator("#compose").fill("会见须知请看附件")
    await officer.locator("#send").click()
    answer = relative.locator("#messages li.bubble").filter(has_text="会见须知请看附件")
    link = answer.locator(".attachments a.file-link")
    await expect(link).to_contain_text("会见须知.pdf")
    assert await link.get_attribute("download") == "会见须知.pdf"
    async with relative.expect_download() as downloading:
        await link.click()
    download = await downloading.value
    assert download.suggested_filename == "会见须知.pdf"
    await fits_the_screen(relative, "#messages li.bubble")
    await screenshot(relative, "attachments-app-pdf-375")
    pages.assert_clean()


async def test_link_evidence_is_shown_beside_the_request_to_the_officer(
    site: Site, pages: Pages
) -> None:
    w = site.world
    await prisons.add_inmate(site.store, w.gaoming.id, "GM-100", "Li Wei")
    relative = await pages.open("/app#/links", token=w.token(w.stranger), label="links")
    await relative.set_viewport_size(PHONE_375)
    form = relative.locator("#link-form")
    await expect(form.locator('select[name="prison"] option[value="GM"]')).to_have_count(1)
    await form.locator('select[name="prison"]').select_option("GM")
    await form.locator('input[name="inmate_number"]').fill("GM-100")
    await form.locator('select[name="relationship"]').select_option("spouse")
    await relative.locator("#evidence-files").set_input_files(photo("hukou.jpg"))
    await expect(form.locator(".attachments.chosen li.attachment img")).to_be_visible()
    await form.locator('button[type="submit"]').click()
    await expect(relative.locator("#links li")).to_have_count(1)
    await expect(form.locator(".attachments.chosen li")).to_have_count(0)
    await fits_the_screen(relative, "#link-form, #links li")
    await screenshot(relative, "attachments-link-375")

    officer = await pages.open(
        "/console", token=w.token(w.officer), size="desktop", label="console"
    )
    await expect(officer.locator("body")).to_have_attribute("data-ready", "1")
    await officer.locator("#tab-links").click()
    card = officer.locator("#links li").filter(has_text="GM-100")
    thumb = card.locator(".evidence .attachments a.thumb img")
    await expect(thumb).to_be_visible()
    assert await thumb.evaluate("(img) => img.naturalWidth") == 320
    await screenshot(officer, "attachments-link-console", full_page=False)
    pages.assert_clean()
