"""The bureau's console (/admin) in a real Chromium against a real server on PostgreSQL and
Redis (tests/browser.py): the admin creates an officer, imports a prison's export with a dry
run first (nothing written until it confirms), transfers an inmate; the layout is measured
(forms beside the lists on a desktop, stacked and not overflowing on a phone).

Every test also fails on any console error or warning, uncaught page error or CSP violation
(``Pages.assert_clean``); screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import io
import re

from PIL import Image
from playwright.async_api import FilePayload, Page, expect

from server import passwords, sessions
from storage import accounts, audit_trail, conversations, inmate_records, links, prisons
from storage import sessions as stored_sessions
from storage.sql import utcnow
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

EXPORT = "罪犯编号,姓名\nGM-001,Chen Jian\nGM-002,Huang Bo Jr\nGM-020,Li Wei\nbad!,Nobody\n"


async def overflows(page: Page) -> bool:
    return bool(
        await page.evaluate(
            "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
    )


async def admin_page(pages: Pages, site: Site) -> Page:
    staff = await seed_staff(site.store, site.world)
    page = await pages.open("/admin", token=site.world.token(staff.admin), size="desktop")
    await expect(page.locator("body")).to_have_attribute("data-ready", "1")
    return page


async def test_the_admin_creates_an_officer_imports_with_a_dry_run_and_transfers(
    pages: Pages, site: Site
) -> None:
    world = site.world
    page = await admin_page(pages, site)

    # -- staff: create an officer of Sanshui ----------------------------------------------------
    await page.locator("#tab-staff").click()
    form = page.locator("#staff-form")
    await form.locator('select[name="role"]').select_option("officer")
    await form.locator('input[name="login"]').fill("officer.sun")
    await form.locator('input[name="name"]').fill("孙警官")
    await form.locator('input[name="password"]').fill("Kx9!long-enough-pass")
    await form.locator("#staff-prisons label", has_text="Sanshui Prison").locator("input").check()
    await form.locator('button[type="submit"]').click()
    row = page.locator('#staff-table tr[data-login="officer.sun"]')
    await expect(row).to_contain_text("孙警官")
    await expect(row).to_contain_text("Sanshui Prison")
    made = [u for u in await accounts.users(site.store, role="officer") if u.login == "officer.sun"]
    assert len(made) == 1 and made[0].prison_ids == (world.sanshui.id,)
    _, hashed = await accounts.credentials(site.store, "officer.sun")
    assert passwords.verify(hashed, "Kx9!long-enough-pass")
    # desktop: the creation form stands beside the list, not under it
    table_box = await page.locator("#staff-table").bounding_box()
    form_box = await form.bounding_box()
    assert table_box and form_box and form_box["x"] >= table_box["x"] + table_box["width"] - 1
    assert abs(form_box["y"] - table_box["y"]) < 80
    await row.get_by_role("button").click()  # manage: the editor opens for that account
    await expect(page.locator("#user-editor-title")).to_contain_text("officer.sun")
    assert not await overflows(page)

    # -- inmates: import Gaoming's export, a dry run first ---------------------------------------
    await page.locator("#tab-inmates").click()
    await page.locator("#inmate-prison").select_option(str(world.gaoming.id))
    await expect(page.locator("#inmates-table tbody tr")).to_have_count(2)
    await page.locator("#import-file").set_input_files(
        files=FilePayload(name="gm.csv", mimeType="text/csv", buffer=EXPORT.encode("gb18030"))
    )
    await expect(page.locator("#import-apply")).to_be_disabled()
    await page.locator("#import-check").click()
    report = page.locator("#import-report tbody tr")
    await expect(report).to_have_count(4)
    outcomes = [await r.get_attribute("data-outcome") for r in await report.all()]
    assert outcomes == ["unchanged", "updated", "added", "error"]
    await expect(report.nth(1)).to_contain_text("Huang Bo → Huang Bo Jr")
    await expect(report.nth(3)).to_contain_text("编号无效")
    await expect(page.locator("#import-summary")).to_contain_text("仅检查，未写入")
    # nothing written yet
    assert await prisons.inmate_by_number(site.store, world.gaoming.id, "GM-020") is None
    await expect(page.locator("#inmates-table tbody tr")).to_have_count(2)
    await screenshot(page, "admin-import-dry-run")

    await page.locator("#import-apply").click()
    await expect(page.locator("#import-summary")).to_have_attribute("data-applied", "true")
    await expect(page.locator("#inmates-table tbody tr")).to_have_count(3)
    await expect(page.locator('#inmates-table tr[data-number="GM-020"]')).to_contain_text("Li Wei")
    assert await prisons.inmate_by_number(site.store, world.gaoming.id, "GM-020") is not None

    # -- transfer inmate A (its link and thread go with it) to Sanshui -------------------------
    inmate_a = page.locator('#inmates-table tr[data-number="GM-001"]')
    await inmate_a.locator("select.transfer-to").select_option(str(world.sanshui.id))
    await inmate_a.locator("button.transfer").click()
    await expect(page.locator('#inmates-table tr[data-number="GM-001"]')).to_have_count(0)
    await expect(page.locator("#toast")).to_contain_text("Sanshui Prison")
    conv = await conversations.conversation(site.store, world.conv.id)
    assert conv.prison_id == world.sanshui.id
    await page.locator("#inmate-prison").select_option(str(world.sanshui.id))
    await expect(page.locator('#inmates-table tr[data-number="GM-001"]')).to_contain_text(
        "Chen Jian"
    )
    actions = {e.action for e in await audit_trail.audit_entries(site.store, limit=50)}
    assert {"user.create", "inmate.add", "inmate.update", "inmate.transfer"} <= actions
    assert not await overflows(page)
    await screenshot(page, "admin-desktop")

    # -- a phone: stacked, nothing wider than the screen ---------------------------------------
    await page.set_viewport_size({"width": 360, "height": 740})
    assert not await overflows(page)
    main_box = await page.locator("#panel-inmates .admin-main").bounding_box()
    side_box = await page.locator("#panel-inmates .admin-side").bounding_box()
    assert main_box and side_box and side_box["y"] >= main_box["y"] + main_box["height"] - 1
    await screenshot(page, "admin-phone")
    pages.assert_clean()


async def test_the_console_in_english_and_the_figures(pages: Pages, site: Site) -> None:
    page = await admin_page(pages, site)
    await page.locator(".locale-switch").select_option("en")
    await expect(page.locator("#tab-inmates")).to_have_text("Inmates")
    await page.locator("#tab-figures").click()
    await expect(page.locator("#figures-table tbody tr")).to_have_count(7)
    await expect(page.locator("#figures-table thead")).to_contain_text("Median first answer")
    await page.locator("#tab-prisons").click()
    form = page.locator("#prison-form")
    await form.locator('input[name="code"]').fill("NH")
    await form.locator('input[name="name"]').fill("Nanhai Prison")
    await form.locator('button[type="submit"]').click()
    await expect(page.locator("#prisons-table tbody tr")).to_have_count(3)
    assert not await overflows(page)
    pages.assert_clean()


async def test_other_roles_are_told_the_console_is_not_theirs(pages: Pages, site: Site) -> None:
    page = await pages.open("/admin", token=site.world.token(site.world.officer), size="desktop")
    await expect(page.locator("#signin-error")).not_to_be_empty()
    await expect(page.locator("#desk")).to_be_hidden()
    pages.assert_clean()


async def test_the_admin_uploads_a_supervisors_photo_shown_stripped(
    pages: Pages, site: Site
) -> None:
    """The photo is uploaded from the console, shown from its own URL, and what the server
    serves carries none of the camera's metadata."""
    page = await admin_page(pages, site)
    await page.locator("#tab-staff").click()
    row = page.locator('#staff-table tr[data-login="sup.wang"]')
    await row.get_by_role("button").click()
    profile = page.locator("#user-profile")
    await expect(profile).to_be_visible()
    photo = io.BytesIO()
    exif = Image.Exif()
    exif[0xA431] = "SERIAL-42"
    Image.new("RGB", (900, 900), (10, 120, 60)).save(photo, "JPEG", exif=exif)
    await page.locator("#profile-file").set_input_files(
        files=FilePayload(name="wang.jpg", mimeType="image/jpeg", buffer=photo.getvalue())
    )
    img = page.locator("#profile-photo")
    await expect(img).to_have_attribute("src", re.compile(r"^/api/v1/photos/[0-9]+$"))
    await expect(img).to_be_visible()
    # the browser decoded it: a real image, drawn at the size the stylesheet gives it
    assert await img.evaluate("(el) => el.complete && el.naturalWidth") == 512
    box = await img.bounding_box()
    assert box and round(box["width"]) == 96 and round(box["height"]) == 96
    await profile.locator('input[name="title"]').fill("人大代表")
    await profile.locator('button[type="submit"]').click()
    await expect(page.locator("#toast")).to_contain_text("公开资料")
    src = await img.get_attribute("src")
    served = await page.request.get(site.base + str(src))
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert b"SERIAL-42" not in await served.body()
    assert not await overflows(page)
    pages.assert_clean()


async def test_the_admin_disables_an_officer_who_then_cannot_sign_in(
    pages: Pages, site: Site
) -> None:
    officer = site.world.officer
    await accounts.set_password_hash(
        site.store, officer.id, passwords.hash_password("a long passphrase here")
    )
    page = await admin_page(pages, site)
    await page.locator("#tab-staff").click()
    row = page.locator(f'#staff-table tr[data-login="{officer.login}"]')
    await row.locator("button").click()
    await page.locator("#user-disable").click()
    await expect(row.locator("td.status-off")).to_be_visible()
    assert await accounts.is_disabled(site.store, officer.id)
    await expect(page.locator("#user-enable")).to_be_visible()
    [entry] = await audit_trail.audit_entries(site.store, action="user.disable")
    assert entry.object_id == officer.id
    await page.locator("#user-enable").click()
    await expect(row.locator("td.status-off")).to_have_count(0)
    assert not await accounts.is_disabled(site.store, officer.id)
    pages.assert_clean()


async def test_the_admin_resets_a_password_and_moves_staff_between_prisons(
    pages: Pages, site: Site
) -> None:
    """The account editor's other functions: a new password (the old sessions end at once),
    an officer moved to another prison, a supervisor given a second one; and a disabled
    officer signing in at the console is told its account is off."""
    world = site.world
    officer, supervisor = world.officer, world.supervisor
    for status in (400, 403):  # provoked below; Chromium logs each
        pages.allowed.append(f"the server responded with a status of {status}")
    page = await admin_page(pages, site)
    await page.locator("#tab-staff").click()
    row = page.locator(f'#staff-table tr[data-login="{officer.login}"]')
    await row.get_by_role("button").click()

    async def signed_in() -> bool:
        digest = sessions.token_hash(world.token(officer))
        return await stored_sessions.session_user(site.store, digest, utcnow()) is not None

    assert await signed_in()
    editor = page.locator("#user-editor")
    await editor.locator('#user-password input[name="new_password"]').fill("qwerty1234")
    await editor.locator("#user-password button[type=submit]").click()
    await expect(page.locator("#toast")).to_have_class(re.compile(r"\bbad\b"))  # too weak
    await editor.locator('#user-password input[name="new_password"]').fill("violet harbour lamp")
    await editor.locator("#user-password button[type=submit]").click()
    await expect(page.locator("#toast")).to_contain_text(officer.name)
    await expect(page.locator("#toast")).not_to_have_class(re.compile(r"\bbad\b"))
    _, hashed = await accounts.credentials(site.store, officer.login)
    assert passwords.verify(hashed, "violet harbour lamp")
    assert not await signed_in()  # its sessions ended

    # the officer moves from Gaoming to Sanshui
    choices = editor.locator("#user-prisons-choices")
    await choices.locator("label", has_text="Gaoming Prison").locator("input").uncheck()
    await choices.locator("label", has_text="Sanshui Prison").locator("input").check()
    await editor.locator("#user-prisons button[type=submit]").click()
    await expect(row).to_contain_text("Sanshui Prison")
    assert (await accounts.user(site.store, officer.id)).prison_ids == (world.sanshui.id,)

    # the supervisor of Gaoming watches Sanshui too
    srow = page.locator(f'#staff-table tr[data-login="{supervisor.login}"]')
    await srow.get_by_role("button").click()
    await expect(page.locator("#user-editor-title")).to_contain_text(supervisor.login)
    await choices.locator("label", has_text="Sanshui Prison").locator("input").check()
    await editor.locator("#user-prisons button[type=submit]").click()
    await expect(srow).to_contain_text("Sanshui Prison")
    moved = await accounts.user(site.store, supervisor.id)
    assert set(moved.prison_ids) == {world.gaoming.id, world.sanshui.id}
    edits = await audit_trail.audit_entries(site.store, action="user.edit")
    assert {e.object_id for e in edits} == {officer.id, supervisor.id}
    assert await audit_trail.audit_entries(site.store, action="user.password_reset")

    # switched off, it cannot sign in at the console even with the right password
    await row.get_by_role("button").click()
    await page.locator("#user-disable").click()
    await expect(row.locator("td.status-off")).to_be_visible()
    console = await pages.open("/console", size="desktop", label="officer console")
    form = console.locator("#signin-form")
    await form.locator('input[name="login"]').fill(officer.login)
    await form.locator('input[name="password"]').fill("violet harbour lamp")
    await form.locator('button[type="submit"]').click()
    await expect(console.locator("#signin-error")).to_contain_text("已停用")
    pages.assert_clean()


async def test_the_admin_releases_an_inmate_after_confirming_and_the_family_is_told(
    pages: Pages, site: Site
) -> None:
    """Release asks once more before acting; then the inmate's family links end and its
    relative has a notice (audited)."""
    world = site.world
    page = await admin_page(pages, site)
    await page.locator("#tab-inmates").click()
    await page.locator("#inmate-prison").select_option(str(world.gaoming.id))
    row = page.locator('#inmates-table tr[data-number="GM-001"]')
    release = row.locator('button[data-action="admin.inmates.release"]')
    await release.click()
    await expect(release).to_contain_text("再次点击确认")  # nothing done yet
    assert [i.id for i in await inmate_records.register(site.store, status="released")] == []
    await release.click()
    await expect(page.locator("#toast")).to_contain_text("已通知 1 位亲属")
    await expect(row).to_have_count(0)  # no longer among those held
    await page.locator("#inmate-status").select_option("released")
    await expect(page.locator('#inmates-table tr[data-number="GM-001"]')).to_contain_text("已释放")
    [notice] = await inmate_records.notices(site.store, world.relative.id)
    assert notice.kind == "released"
    assert await links.verified_inmates(site.store, world.relative.id) == set()
    [entry] = await audit_trail.audit_entries(site.store, action="inmate.released")
    assert entry.actor_id is not None
    assert (await accounts.user(site.store, entry.actor_id)).role == "admin"
    assert not await overflows(page)
    pages.assert_clean()


async def test_a_staff_member_changes_its_own_password_from_the_top_bar(
    pages: Pages, site: Site
) -> None:
    """The staff pages offer "change password" beside "sign out" (shared: web/console/
    staff.js); with the old password the new one is set and the other sessions end."""
    staff = await seed_staff(site.store, site.world)
    admin = staff.admin
    old, fresh = "a long passphrase here", "violet harbour lamp"
    await accounts.set_password_hash(site.store, admin.id, passwords.hash_password(old))
    elsewhere = await sessions.issue(site.store, admin, days=1)
    page = await pages.open("/admin", token=site.world.token(admin), size="desktop")
    await expect(page.locator("body")).to_have_attribute("data-ready", "1")
    await page.locator("#change-password").click()
    dialog = page.locator("#password-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator('input[name="old_password"]').fill(old)
    await dialog.locator('input[name="new_password"]').fill(fresh)
    await dialog.locator('button[type="submit"]').click()
    await expect(dialog.locator(".notice-ok")).to_be_visible()
    _, stored = await accounts.credentials(site.store, admin.login)
    assert passwords.verify(stored, fresh)
    digest = sessions.token_hash(elsewhere)
    assert await stored_sessions.session_user(site.store, digest, utcnow()) is None
    await dialog.locator("#password-dialog-close").click()
    await expect(dialog).to_be_hidden()
    assert not await overflows(page)
    pages.assert_clean()
