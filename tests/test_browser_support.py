"""What the browser tests share (no tests here): headless Chromium driven by Playwright, the
merchant signed in to the inbox, a customer on the demo storefront.

Chromium is the system's (Debian's `chromium` package, which `make test` installs when it can);
Playwright never downloads a browser of its own. Without either, the browser tests are skipped
with the reason.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_EXECUTABLE") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: How long the UI may take to show what the backbone did (Kafka, router, notifier, SSE).
UI_TIMEOUT_MS = 20_000


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return (f"no Chromium at {CHROMIUM}: install Debian's chromium package (make test does "
                "when run as root) or set CHROMIUM_EXECUTABLE")
    return None


requires_browser = pytest.mark.skipif(missing_browser() is not None,
                                      reason=missing_browser() or "")


async def launch() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def expect(locator: Any) -> Any:
    """Playwright's assertions that wait (imported late: the package may be missing)."""
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


#: A stand-in for the browser's Notification API that records what the page shows (headless
#: Chromium has no notification centre to look at).
FAKE_NOTIFICATIONS = """
window.__notifications = [];
class FakeNotification {
  constructor(title, options) { window.__notifications.push({title, body: options?.body || ""}); }
  close() {}
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
}
window.Notification = FakeNotification;
"""


async def merchant_page(
    browser: Any, gateway: str, shop: Any, staff_id: str = "ava", **context: Any
) -> Any:
    """A staff member's tab, signed in with email and password (by keyboard) and live; the
    shop is made `with_passwords`."""
    from playwright.async_api import expect

    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    await page.add_init_script(FAKE_NOTIFICATIONS)
    await page.goto(f"{gateway}/inbox/")
    await page.get_by_label("Email address").fill(shop.emails[staff_id])
    await page.get_by_label("Password").fill(shop.passwords[staff_id])
    await page.get_by_label("Password").press("Enter")
    await expect(page.locator("#live-state")).to_have_text("Live", timeout=UI_TIMEOUT_MS)
    return page


async def customer_page(browser: Any, url: str, **context: Any) -> Any:
    """A customer's tab on the demo storefront, with the chat widget loaded."""
    from playwright.async_api import expect

    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    await page.goto(url)
    await expect(page.locator("button.launcher")).to_have_text(
        "Chat with Fjord & Pine Outfitters", timeout=UI_TIMEOUT_MS)
    return page


async def start_chat(page: Any, name: str, email: str, text: str) -> None:
    await page.locator("button.launcher").click()
    await page.get_by_label("Your name").fill(name)
    await page.get_by_label("Email (optional)").fill(email)
    await page.locator("#chat-first").fill(text)
    await page.get_by_role("button", name="Start chat").click()


class RequestLog:
    """The API requests a page made, with when each began and how long it took, and the
    page's script errors: printed when a step fails, so a failure says whether the server
    answered, refused or never answered, or the page itself broke."""

    def __init__(self, page: Any) -> None:
        self.began = time.monotonic()
        self.entries: dict[Any, list[Any]] = {}
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(
            f"  at {time.monotonic() - self.began:7.2f}s script error: {e}"))
        page.on("request", self._start)
        page.on("requestfinished", lambda r: self._end(r, "done"))
        page.on("requestfailed", lambda r: self._end(r, f"failed: {r.failure}"))

    def _start(self, request: Any) -> None:
        if "/api/" in request.url:
            self.entries[request] = [time.monotonic() - self.began, None, "pending"]

    def _end(self, request: Any, outcome: str) -> None:
        entry = self.entries.get(request)
        if entry is not None:
            entry[1] = time.monotonic() - self.began
            entry[2] = outcome

    async def describe(self) -> str:
        lines = []
        for request, (began, ended, outcome) in self.entries.items():
            status = ""
            if outcome == "done":
                response = await request.response()
                status = f" {response.status}" if response else ""
            took = f"{ended - began:6.2f}s" if ended is not None else "   never"
            path = request.url.split("/api/", 1)[1].split("?", 1)[0]
            lines.append(f"  at {began:7.2f}s took {took} {request.method} /api/{path}: "
                         f"{outcome}{status}")
        return "\n".join(lines[-40:] + self.errors)

