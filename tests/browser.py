"""Browser tests: Debian's Chromium driven by Playwright (async API) against a real server.

A test module imports the fixtures it uses from here; they are defined as ``*_fixture`` and
registered as ``chromium``, ``browser``, ``site`` and ``pages``, so test parameters do not
shadow the imports::

    from tests.browser import (  # noqa: F401 (fixtures)
        Pages, Site, browser_fixture, chromium_fixture, pages_fixture, site_fixture,
    )
 No browser is ever downloaded: Playwright launches
``/usr/bin/chromium`` (``KINLINE_CHROMIUM`` overrides), which ``make browser`` installs with
apt. Outside CI a missing Chromium skips the browser tests with a loud ``!!! SKIPPED`` reason;
with ``CI=true`` it fails them, like a missing PostgreSQL (tests/services.py).

* ``site``: ``build_app`` in this process on PostgreSQL + Redis, on a free port with default
  ``Settings`` origins, so the browser's ``Origin`` (``http://127.0.0.1:<port>``) passes the
  cookie and socket checks; seeded with tests/world.py ``seed``.
* ``Pages``: pages in their own browser contexts (phone 360x740 or desktop 1366x850), signed
  in by the user's session cookie; every console error, uncaught page error and CSP violation
  is collected, and ``assert_clean()`` fails the test when there was one.
* ``screenshot(page, name)``: tests/artifacts/<name>.png, for a reviewer to look at.
* For a server stopped and started again on the same port use tests/servers.py
  ``ServerProcess`` (``kinline serve`` as a child process), or the ``restartable`` fixture
  (one on the seeded world).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from server import sessions
from server.config import Settings
from storage.postgres import PostgresDatabase
from tests.fake_outside import FakeSms, serve
from tests.servers import ROOT, ServerProcess, free_port, inprocess
from tests.services import IN_CI
from tests.world import World, seed

CHROMIUM = os.environ.get("KINLINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 1366, "height": 850}
SIZES = {"phone": PHONE, "desktop": DESKTOP}
ARTIFACTS = ROOT / "tests" / "artifacts"
TIMEOUT_MS = 15_000  # any single wait; a healthy page answers in well under a second

# Console lines that are not page problems: the browser logging the 401 of GET /me on a
# signed-out page, and a refused socket or fetch while a test has stopped the server.
EXPECTED_NOISE = (
    "the server responded with a status of 401",
    "WebSocket connection to",
    "net::ERR_CONNECTION_REFUSED",
    "net::ERR_EMPTY_RESPONSE",
    "net::ERR_CONNECTION_RESET",
)

# Reported by the page itself: init scripts run before the page's own, outside its CSP.
_REPORT_CSP = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`
    + ` at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _missing(why: str) -> None:
    message = f"Chromium is not usable at {CHROMIUM} ({why}); `make browser` installs it with apt"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(f"!!! SKIPPED: {message}")


@pytest.fixture(scope="session", name="chromium")
def chromium_fixture() -> str:
    """The Chromium binary (skipped loudly outside CI when missing, failed in CI)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(
        CHROMIUM
    ):
        _missing("not installed")
    return CHROMIUM


@pytest.fixture(name="browser")
async def browser_fixture(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        try:
            launched = await playwright.chromium.launch(
                executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000
            )
        except PlaywrightError as exc:
            _missing(f"it did not start: {str(exc).splitlines()[0]}")
        try:
            yield launched
        finally:
            await launched.close()


@dataclasses.dataclass
class Site:
    base: str
    world: World
    store: PostgresDatabase
    settings: Settings
    sms: FakeSms = dataclasses.field(default_factory=FakeSms)

    async def texted_code(self, phone: str) -> str:
        """The 6-digit code the page asked the server to text to ``phone``."""
        await self.sms.until(lambda: any(c.body["phone"] == phone for c in self.sms.calls))
        text = [c.body["text"] for c in self.sms.calls if c.body["phone"] == phone][-1]
        found = re.search(r"\b(\d{6})\b", text)
        assert found, text
        return found.group(1)


def web_settings(pg_url: str, redis_url: str | None, redis_prefix: str, **changes: Any) -> Settings:
    return Settings(
        database_url=pg_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        port=free_port(),  # its own port: the default origins then match what the browser sends
        secret="web-test",
        send_rate=100.0,
        send_burst=100,
        log_level="WARNING",
        **changes,
    )


@pytest.fixture(name="site")
async def site_fixture(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Site]:
    """The whole server in this process, on PostgreSQL and Redis, with the seeded world."""
    world = await seed(pg_store)
    sms = FakeSms()  # registration and resets text a code to the phone
    async with serve(sms) as sms_url:
        settings = web_settings(pg_url, redis_url, redis_prefix, sms_url=sms_url)
        async with inprocess(settings, pg_store) as served:
            yield Site(served.http_url, world, pg_store, settings, sms)


@pytest.fixture(name="restartable")
async def restartable_fixture(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[ServerProcess, World]]:
    """A ``kinline serve`` process (stop and start it again on the same port) on the seeded
    world; open its pages with ``Pages(browser, server.http_url)``."""
    world = await seed(pg_store)
    server = ServerProcess(pg_url, redis_url, env={"KINLINE_REDIS_PREFIX": redis_prefix})
    await server.start()
    try:
        yield server, world
    finally:
        await server.stop()


@dataclasses.dataclass
class Problem:
    page: str
    kind: str
    text: str


class Pages:
    """Pages in separate browser contexts (one per user), watched for errors."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.browser = browser
        self.base = base
        self.problems: list[Problem] = []
        self.contexts: list[BrowserContext] = []
        self.allowed: list[str] = list(EXPECTED_NOISE)  # a test may add what it provokes

    async def context(
        self, token: str | None = None, size: Literal["phone", "desktop"] = "phone"
    ) -> BrowserContext:
        context = await self.browser.new_context(
            viewport=SIZES[size],
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            device_scale_factor=1,
            is_mobile=size == "phone",
            has_touch=size == "phone",
        )
        context.set_default_timeout(TIMEOUT_MS)
        await context.add_init_script(_REPORT_CSP)
        if token is not None:
            await context.add_cookies(
                [{"name": sessions.COOKIE, "value": token, "url": self.base, "httpOnly": True}]
            )
        self.contexts.append(context)
        return context

    def watch(self, page: Page, label: str) -> Page:
        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning") and not any(
                marker in message.text for marker in self.allowed
            ):
                where = message.location.get("url", "")
                self.problems.append(
                    Problem(label, f"console.{message.type}", f"{message.text} ({where})")
                )

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.problems.append(Problem(label, "uncaught", str(exc))))
        return page

    async def open(
        self,
        path: str,
        *,
        token: str | None = None,
        size: Literal["phone", "desktop"] = "phone",
        label: str | None = None,
        context: BrowserContext | None = None,
    ) -> Page:
        """A new page at ``path`` (signed in with ``token`` when given)."""
        context = context or await self.context(token, size)
        page = self.watch(await context.new_page(), label or path)
        await page.goto(self.base + path)
        return page

    def assert_clean(self) -> None:
        """No console error or warning, no uncaught error, no CSP violation on any page."""
        assert not self.problems, "\n".join(f"{p.page}: {p.kind}: {p.text}" for p in self.problems)

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()
        self.contexts.clear()


@pytest.fixture(name="pages")
async def pages_fixture(browser: Browser, site: Site) -> AsyncIterator[Pages]:
    opened = Pages(browser, site.base)
    try:
        yield opened
    finally:
        await opened.close()


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save ``tests/artifacts/<name>.png`` (ignored by git) for a reviewer."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


# Records, in the page, every frame its sockets send (window.__sent, decoded) and every
# fetch (window.__fetched: {url, method, settled}). `settled` is set by the first reaction to
# the fetch's promise, so once a test sees it, the page's own handling of that answer (a
# rejection: all in the same microtask checkpoint) has run too.
_INSTRUMENT = """() => {
  if (window.__instrumented) return;
  window.__instrumented = true;
  window.__sent = [];
  window.__fetched = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try {
      window.__sent.push(JSON.parse(data));
    } catch {
      window.__sent.push(null);
    }
    return send.call(this, data);
  };
  const fetch = window.fetch;
  window.fetch = function (url, init) {
    const record = { url: String(url), method: (init && init.method) || "GET", settled: false };
    window.__fetched.push(record);
    const answer = fetch.call(this, url, init);
    answer.then(() => { record.settled = true; }, () => { record.settled = true; });
    return answer;
  };
}"""


async def instrument(page: Page) -> None:
    """Start recording the page's socket frames and fetches (see ``_INSTRUMENT``)."""
    await page.evaluate(_INSTRUMENT)


def token_of(world: World, user: Any) -> str:
    return world.token(user)


__all__ = [
    "ARTIFACTS",
    "CHROMIUM_ARGS",
    "DESKTOP",
    "PHONE",
    "Pages",
    "Site",
    "browser_fixture",
    "chromium_fixture",
    "instrument",
    "pages_fixture",
    "restartable_fixture",
    "screenshot",
    "site_fixture",
    "web_settings",
]
