"""Oversight the family can see and refusals you can contest (issue 15), in the relative app
at phone width, in a real Chromium against a real server (tests/browser.py): the chat lists
each supervisor's opening (who, title, when), live and after a reload; a rejected relative
reads the reason in its language, complains about the decision, reads the answer and
escalates it once. Layout is measured: nothing is wider than the phone.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Page, expect

from storage.profiles import SupervisorProfile, set_supervisor_profile
from tests.browser import (  # noqa: F401 (fixtures)
    Pages,
    Site,
    browser_fixture,
    chromium_fixture,
    pages_fixture,
    screenshot,
    site_fixture,
)
from tests.world import seed_staff

TITLE = "人大代表"


async def api(site: Site, method: str, path: str, token: str, json: Any = None) -> Any:
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


async def fits_the_phone(page: Page, selector: str) -> None:
    """No horizontal scrolling, and ``selector`` inside the viewport's width."""
    over = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert over <= 0, over
    box = await page.locator(selector).bounding_box()
    width = await page.evaluate("() => document.documentElement.clientWidth")
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)


async def test_the_relative_sees_each_supervisor_opening_in_its_chat(
    pages: Pages, site: Site
) -> None:
    w = site.world
    await set_supervisor_profile(site.store, w.supervisor.id, SupervisorProfile(title=TITLE))
    page = await pages.open(f"/app#/inmate/{w.conv.inmate_id}", token=w.token(w.relative))
    await expect(page.locator("body")).to_have_attribute("data-socket", "connected")
    summary = page.locator("#oversight-summary")
    await expect(summary).to_have_text("尚无监督员查看过本对话。")

    # the supervisor reads the history: the relative's open chat shows it at once
    await api(site, "GET", f"/conversations/{w.conv.id}/messages", w.token(w.supervisor))
    await expect(page.locator("#oversight")).to_have_attribute("data-count", "1")
    await expect(summary).to_contain_text("Wang Fang")
    await expect(summary).to_contain_text(TITLE)
    await summary.click()
    items = page.locator("#oversight-list li")
    await expect(items).to_have_count(1)
    await expect(items.first).to_contain_text("查阅记录")
    await fits_the_phone(page, "#oversight")
    await screenshot(page, "app-chat-oversight-phone")

    # kept: after a reload it is read back from the server, with a second one
    await api(site, "GET", f"/conversations/{w.conv.id}/messages?after=0", w.token(w.supervisor))
    await page.reload()
    await expect(page.locator("#oversight")).to_have_attribute("data-count", "2")
    await page.locator("select.locale-switch").select_option("en")
    await expect(summary).to_contain_text("Opened by supervisors 2 times")
    await expect(summary).to_contain_text(f"Wang Fang ({TITLE})")
    await fits_the_phone(page, "#oversight")
    pages.assert_clean()


async def test_a_rejected_relative_contests_the_decision_and_escalates_the_answer(
    pages: Pages, site: Site
) -> None:
    w = site.world
    asked = await api(
        site,
        "POST",
        "/links",
        w.token(w.stranger),
        {"prison": "GM", "inmate_number": "GM-001", "relationship": "sibling", "evidence": "x"},
    )
    await api(
        site,
        "POST",
        f"/links/{asked['id']}/reject",
        w.token(w.officer),
        {"reason_code": "evidence_insufficient", "reason": "照片看不清"},
    )
    page = await pages.open("/app#/links", token=w.token(w.stranger))
    card = page.locator(f'#links li[data-link="{asked["id"]}"]')
    await expect(card.locator(".refusal-reason")).to_have_text("理由：证明材料不足 · 照片看不清")
    contest = card.locator("a.contest")
    await expect(contest).to_have_text("对此决定提出投诉")
    await fits_the_phone(page, f'#links li[data-link="{asked["id"]}"]')
    await contest.click()

    form = page.locator("#contest-form")
    await expect(form.locator(".contest-about")).to_have_text(f"针对：亲属关系申请 #{asked['id']}")
    await form.locator('textarea[name="body"]').fill("我是他的姐姐，户口本可以证明。")
    await form.locator('button[type="submit"]').click()
    await expect(page).to_have_url(f"{site.base}/app#/complaints")
    item = page.locator("#complaints li[data-complaint]")
    await expect(item).to_have_count(1)
    await expect(item.locator(".contest-about")).to_contain_text(f"#{asked['id']}")
    [filed] = (await api(site, "GET", "/complaints", w.token(w.stranger)))["complaints"]
    assert filed["about"] == {"kind": "link", "id": asked["id"]}

    # the supervisor answers: shown live; the relative escalates it once
    await api(
        site,
        "POST",
        f"/complaints/{filed['id']}/answer",
        w.token(w.supervisor),
        {"message": "证据不足，维持原决定。"},
    )
    await expect(item).to_have_attribute("data-state", "answered")
    await expect(item.locator(".app-answer")).to_contain_text("维持原决定")
    await item.locator('button[data-action="escalate"]').click()
    await item.locator('textarea[name="message"]').fill("请管理局复核。")
    await fits_the_phone(page, "#complaints")
    await item.locator('button[data-action="escalate-send"]').click()
    await expect(item).to_have_attribute("data-state", "escalated")
    await expect(item.locator(".app-escalated")).to_be_visible()
    await expect(item.locator('button[data-action="escalate"]')).to_have_count(0)
    await screenshot(page, "app-complaint-escalated-phone")

    # the reason in the reader's language
    await page.locator("select.locale-switch").select_option("en")
    await page.goto(f"{site.base}/app#/links")
    await expect(card.locator(".refusal-reason")).to_contain_text(
        "The evidence given is not enough"
    )
    pages.assert_clean()


async def test_staff_forms_pick_a_published_reason_and_the_admin_answers_an_escalation(
    pages: Pages, site: Site
) -> None:
    """The officer's reject, the supervisor's close and the admin's escalated list, as staff
    use them (desktop)."""
    w = site.world
    asked = await api(
        site,
        "POST",
        "/links",
        w.token(w.stranger),
        {"prison": "GM", "inmate_number": "GM-002", "relationship": "sibling", "evidence": "x"},
    )
    officer = await pages.open("/console", token=w.token(w.officer), size="desktop")
    await expect(officer.locator("body")).to_have_attribute("data-ready", "1")
    await officer.locator("#tab-links").click()
    card = officer.locator(f'#links li[data-link="{asked["id"]}"]')
    picker = card.locator("select.reason-code")
    await expect(picker.locator('option[value="relationship_unproven"]')).to_have_text(
        "无法核实亲属关系"
    )
    await picker.select_option("other")
    await card.locator('button[data-action="reject"]').click()  # other: say why
    await expect(card.locator(".error")).to_have_text("请填写理由。")
    await picker.select_option("relationship_unproven")
    await card.locator('button[data-action="reject"]').click()
    await expect(card).to_have_count(0)
    decided = await api(site, "GET", f"/links/{asked['id']}", w.token(w.stranger))
    assert (decided["state"], decided["reason_code"]) == ("rejected", "relationship_unproven")

    # the supervisor closes a complaint with a listed reason
    filed = await api(
        site,
        "POST",
        "/complaints",
        w.token(w.relative),
        {"prison_id": w.gaoming.id, "category": "visits", "body": "会见被取消"},
    )
    await api(
        site,
        "POST",
        f"/complaints/{filed['id']}/answer",
        w.token(w.supervisor),
        {"message": "已处理"},
    )
    board = await pages.open("/monitor", token=w.token(w.supervisor), size="desktop")
    await expect(board.locator("body")).to_have_attribute("data-ready", "1")
    await board.locator("#tab-complaints").click()
    await board.locator(f'#complaints button.item[data-complaint="{filed["id"]}"]').click()
    detail = board.locator("#complaint")
    await detail.locator("#move-state").select_option("closed")
    await expect(detail.locator(".move-reason")).to_be_visible()
    await detail.locator("#move-reason").select_option("resolved")
    await detail.locator("#move-message").fill("问题已解决，结案。")
    await detail.locator("form.move button[type=submit]").click()
    await expect(detail.locator(".complaint-head .state-badge").first).to_have_text("已关闭")
    closed = await api(site, "GET", f"/complaints/{filed['id']}", w.token(w.relative))
    assert (closed["state"], closed["reason_code"]) == ("closed", "resolved")

    # a second complaint, answered and escalated by the relative: the admin answers it
    second = await api(
        site,
        "POST",
        "/complaints",
        w.token(w.relative),
        {"prison_id": w.gaoming.id, "category": "money", "body": "零用钱少了"},
    )
    await api(
        site,
        "POST",
        f"/complaints/{second['id']}/answer",
        w.token(w.supervisor),
        {"message": "无误"},
    )
    await api(
        site,
        "POST",
        f"/complaints/{second['id']}/escalate",
        w.token(w.relative),
        {"message": "请管理局核查"},
    )
    staff = await seed_staff(site.store, w)
    admin = await pages.open("/admin", token=w.token(staff.admin), size="desktop")
    await expect(admin.locator("body")).to_have_attribute("data-ready", "1")
    await admin.locator("#tab-complaints").click()
    item = admin.locator(f'#escalated li[data-complaint="{second["id"]}"]')
    await expect(item).to_contain_text("请管理局核查")
    await item.locator('textarea[name="message"]').fill("管理局已核查，补发差额。")
    await item.locator('button[type="submit"]').click()
    await expect(admin.locator("#escalated-none")).to_be_visible()
    answered = await api(site, "GET", f"/complaints/{second['id']}", w.token(w.relative))
    assert [(e["state"], e["by"]["role"]) for e in answered["history"]][-2:] == [
        ("escalated", "relative"),
        ("answered", "admin"),
    ]
    pages.assert_clean()
