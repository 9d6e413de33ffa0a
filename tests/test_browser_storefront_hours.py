"""The chat widget and the shop's chat hours, in a real browser (headless Chromium) against the
real stack: outside hours it says when the shop is back, in the customer's own time zone, and
asks for an email address before the first message; in hours nothing changes; it follows the
hours each time the panel opens."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import eventually
from tests.helpers import new_shop, unique
from tests.test_api_support import set_chat_hours
from tests.test_browser_support import (
    UI_TIMEOUT_MS,
    customer_page,
    expect,
    requires_browser,
)
from tests.test_storefront_hours import hours_range

pytestmark = [requires_browser, pytest.mark.timeout(240)]

AWAY_HINT = "We're away now. Leave your email and we'll answer you there."
IN_HOURS_HINT = "If you leave the store, we answer you by email."
EMAIL_NEEDED = "Please leave your email address: we're away now and will answer you there."


def seen_from(zone: str, opening: datetime) -> str:
    """The opening as the widget words it for a customer in `zone` with British English (it is
    today or tomorrow there in these tests)."""
    local = opening.astimezone(ZoneInfo(zone))
    days = (local.date() - datetime.now(ZoneInfo(zone)).date()).days
    assert days in (0, 1), (local, days)
    return f"{('today', 'tomorrow')[days]} {local:%H:%M}"


async def test_outside_hours_the_widget_says_when_and_asks_for_an_email(browser, stack,
                                                                        producer, db):
    gateway = stack["gateway"].url
    # The shop is in Tokyo and opens tomorrow at 09:00 there; the customer is in New York,
    # where that is 19:00 of a day that is today or tomorrow (not Tokyo's date).
    shop = await new_shop(producer, db, timezone="Asia/Tokyo")
    tomorrow = datetime.now(ZoneInfo("Asia/Tokyo")) + timedelta(days=1)
    await set_chat_hours(stack, shop, "hours", [hours_range(tomorrow, "09:00", "17:00")])
    opening = datetime.combine(tomorrow.date(), datetime.min.time().replace(hour=9),
                               ZoneInfo("Asia/Tokyo"))
    customer = await customer_page(browser, f"{gateway}/storefront/demo?shop={shop.shop_id}",
                                   timezone_id="America/New_York", locale="en-GB")
    await customer.locator("button.launcher").click()

    notice = customer.get_by_role("status").filter(has_text="We're away right now.")
    await expect(notice).to_have_text(
        f"We're away right now. Back {seen_from('America/New_York', opening)}.",
        timeout=UI_TIMEOUT_MS)
    await expect(notice.locator("time")).to_have_attribute("datetime", opening.isoformat())
    email = customer.get_by_label("Email", exact=True)
    await expect(email).to_have_attribute("required", "")
    await expect(customer.locator("#chat-email-hint")).to_have_text(AWAY_HINT)
    await expect(email).to_have_attribute("aria-describedby", "chat-email-hint")

    # Without an email, nothing starts: the widget asks for it.
    await customer.get_by_label("Your name").fill("Kenji Mori")
    await customer.locator("#chat-first").fill("Do you ship to Osaka?")
    await customer.get_by_role("button", name="Start chat").click()
    await expect(customer.locator(".status")).to_have_text(EMAIL_NEEDED)
    await expect(email).to_be_focused()
    await expect(customer.locator(".message")).to_have_count(0)

    # With it, the chat starts and the message goes; the notice stays over the conversation.
    address = f"{unique('kenji')}@example.jp"
    await email.fill(address)
    await customer.get_by_role("button", name="Start chat").click()
    await expect(customer.locator(".message.mine")).to_have_text(
        re.compile("Do you ship to Osaka?"), timeout=UI_TIMEOUT_MS)
    await expect(customer.locator(".status")).to_have_text("")
    await expect(notice).to_be_visible()
    row = await eventually(lambda: db.fetchrow(
        "SELECT customer_email, customer_timezone FROM conversations "
        "WHERE shop_id = $1 AND customer_name = 'Kenji Mori'", shop.shop_id))
    assert (row["customer_email"], row["customer_timezone"]) == (address, "America/New_York")


async def test_in_hours_nothing_changes_and_the_widget_follows_the_hours(browser, stack,
                                                                         producer, db):
    gateway = stack["gateway"].url
    shop = await new_shop(producer, db)
    customer = await customer_page(browser, f"{gateway}/storefront/demo?shop={shop.shop_id}",
                                   locale="en-GB", timezone_id="Europe/Berlin")
    launcher = customer.locator("button.launcher")
    notice = customer.locator(".away")
    await launcher.click()
    await expect(customer.get_by_label("Email (optional)")).not_to_have_attribute(
        "required", "")
    await expect(customer.locator("#chat-email-hint")).to_have_text(IN_HOURS_HINT)
    await expect(notice).to_be_hidden()

    # The merchant closes the chat for the rest of today and tomorrow (open the day after):
    # the tab, left open, shows it as soon as the panel opens again.
    later = datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(days=2)
    await set_chat_hours(stack, shop, "hours", [hours_range(later, "10:00", "12:00")])
    await customer.get_by_role("button", name="Close chat").click()
    await launcher.click()
    await expect(notice).to_have_text(f"We're away right now. Back {later:%A} 10:00.",
                                      timeout=UI_TIMEOUT_MS)
    await expect(customer.get_by_label("Email", exact=True)).to_have_attribute("required", "")

    # In hours again: no notice, the email is optional, and a chat starts without one.
    await set_chat_hours(stack, shop, "always")
    await customer.get_by_role("button", name="Close chat").click()
    await launcher.click()
    await expect(notice).to_be_hidden(timeout=UI_TIMEOUT_MS)
    await expect(customer.locator("#chat-email-hint")).to_have_text(IN_HOURS_HINT)
    await customer.get_by_label("Your name").fill("Lena Vogt")
    await customer.locator("#chat-first").fill("Is the beanie warm?")
    await customer.get_by_role("button", name="Start chat").click()
    await expect(customer.locator(".message.mine")).to_have_text(
        re.compile("Is the beanie warm?"), timeout=UI_TIMEOUT_MS)
    row = await eventually(lambda: db.fetchrow(
        "SELECT customer_email FROM conversations WHERE shop_id = $1 AND customer_name = "
        "'Lena Vogt'", shop.shop_id))
    assert row["customer_email"] is None
