"""Signing in to the inbox in a real browser: email and password, or an emailed link; the
session is an HttpOnly cookie no script on the page can read; signing out ends it."""

from __future__ import annotations

import re

import pytest

from tests.helpers import new_shop
from tests.test_browser_support import UI_TIMEOUT_MS, expect, merchant_page, requires_browser

pytestmark = [requires_browser, pytest.mark.timeout(240)]


async def test_sign_in_with_password_keeps_nothing_a_script_can_read(browser, stack, producer,
                                                                    db):
    shop = await new_shop(producer, db, with_passwords=True)
    gateway = stack["gateway"].url
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{gateway}/inbox/")
    await page.get_by_label("Email address").fill(shop.emails["ava"])
    await page.get_by_label("Password").fill("a wrong guess")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-in-error")).to_have_text(
        "Wrong email address or password.", timeout=UI_TIMEOUT_MS)

    await page.get_by_label("Password").fill(shop.passwords["ava"])
    await page.get_by_label("Password").press("Enter")
    await expect(page.locator("#live-state")).to_have_text("Live", timeout=UI_TIMEOUT_MS)
    await expect(page.locator("#me-name")).to_have_text("Ava Lindqvist")
    # The session cookie is HttpOnly and nothing of it sits in the page's storage.
    visible = await page.evaluate(
        "document.cookie + JSON.stringify(sessionStorage) + JSON.stringify(localStorage)")
    cookie = next(c for c in await context.cookies() if c["name"] == "inbox_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["value"] not in visible and "inbox_session" not in visible

    # A reload keeps the session; a change (saving a note) works with the page's CSRF token.
    await page.reload()
    await expect(page.locator("#live-state")).to_have_text("Live", timeout=UI_TIMEOUT_MS)
    await page.get_by_role("button", name="Saved replies").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Shortcut").fill("hours")
    await dialog.get_by_label("Text").fill("We answer 9-17, Monday to Friday.")
    await dialog.get_by_role("button", name="Add saved reply").click()
    await expect(dialog.locator("li.saved-item", has_text="/hours")).to_have_count(1,
                                                                     timeout=UI_TIMEOUT_MS)
    await dialog.get_by_role("button", name="Close").click()

    # Signing out ends the session on the server: its cookie, replayed, opens nothing.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#sign-in-note")).to_have_text("You are signed out.",
                                                             timeout=UI_TIMEOUT_MS)
    replay = await page.request.get(f"{gateway}/api/v1/me",
                                    headers={"Cookie": f"inbox_session={cookie['value']}"})
    assert replay.status == 401
    await context.close()


async def test_sign_in_by_emailed_link(browser, stack, producer, db, smtp):
    shop = await new_shop(producer, db, with_passwords=True)
    gateway = stack["gateway"].url
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{gateway}/inbox/")
    await page.get_by_label("Email address").fill(shop.emails["ben"])
    await page.get_by_role("button", name="Email me a sign-in link").click()
    await expect(page.locator("#sign-in-note")).to_contain_text("a sign-in link is on its way",
                                                                timeout=UI_TIMEOUT_MS)
    [mail] = smtp.to(shop.emails["ben"])
    link = re.search(r"/inbox/\?sign_in=\S+", mail.get_content())[0]
    # Opened in the browser (the mail's address is the configured public one; same path here).
    await page.goto(gateway + link)
    await expect(page.locator("#me-name")).to_have_text("Ben Okafor", timeout=UI_TIMEOUT_MS)
    assert "sign_in" not in page.url  # taken out of the address bar and the history
    # Used once: opening it again signs nobody in.
    other = await (await browser.new_context()).new_page()
    await other.goto(gateway + link)
    await expect(other.locator("#sign-in-error")).to_contain_text("used already",
                                                                  timeout=UI_TIMEOUT_MS)


async def test_made_inactive_while_signed_in(browser, stack, producer, db):
    from datetime import UTC, datetime

    from shared.contracts import StaffUpserted
    from shared.topics import SHOP_STAFF
    from tests.helpers import unique

    shop = await new_shop(producer, db, with_passwords=True)
    page = await merchant_page(browser, stack["gateway"].url, shop, "ben")
    await producer.send_and_wait(SHOP_STAFF, StaffUpserted(
        event_id=unique("staff"), shop_id=shop.shop_id, staff_id="ben", name="Ben Okafor",
        email=shop.emails["ben"], permissions=["online_store_chat"], active=False,
        at=datetime.now(UTC),
    ))
    # The next thing Ben does meets the sign-in screen.
    await expect(page.locator("#sign-in")).to_be_visible(timeout=UI_TIMEOUT_MS * 2)
