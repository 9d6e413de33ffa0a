"""Screenshots of the inbox and the chat widget, from a real conversation on the real stack.

In a normal test run they go to a temporary directory (the scenario and the pictures are
checked all the same); `python -m tests.screenshots` writes them to `docs/` for the README.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from shared.topics import CHAT_INBOUND
from tests.helpers import chat_message, new_shop
from tests.test_browser_support import (
    UI_TIMEOUT_MS,
    RequestLog,
    customer_page,
    expect,
    merchant_page,
    requires_browser,
    start_chat,
)

pytestmark = [requires_browser, pytest.mark.timeout(240)]

#: Set by `python -m tests.screenshots`: where the pictures go.
SCREENSHOTS_DIR = "INBOX_SCREENSHOTS_DIR"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DESKTOP = {"viewport": {"width": 1440, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    path = Path(os.environ.get(SCREENSHOTS_DIR) or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, path.name


async def test_screenshots(browser, stack, producer, db, out):
    gateway = stack["gateway"].url
    shop = await new_shop(producer, db, with_passwords=True,
                          demo_storefront_of=gateway)  # as in development
    store = f"{gateway}/storefront/demo?shop={shop.shop_id}"

    # Some other conversations, so the list looks like a working day.
    for name, text, email in (
        ("Lukas Weber", "Kann ich meine Bestellung noch ändern?", "lukas@example.de"),
        ("Chloé Martin", "Do you ship to Lyon? Combien de jours?", None),
        ("Nguyen Thi Lan", "Is the beanie itchy?", "lan@example.vn"),
    ):
        customer = {"name": name, **({"email": email} if email else {})}
        await producer.send_and_wait(CHAT_INBOUND, chat_message(
            shop.shop_id, text=text, customer=customer))

    inbox = await merchant_page(browser, gateway, shop, "ava", **DESKTOP)
    requests = RequestLog(inbox)
    # Maja's browser is in Sweden, in Swedish: the profile shows her time and language.
    customer = await customer_page(browser, store, timezone_id="Europe/Stockholm",
                                   locale="sv-SE", **DESKTOP)
    await customer.get_by_role("button", name="Add Fjord Rain Anorak to cart").click()
    await start_chat(customer, "Maja Berg", "maja.berg@example.com",
                     "Hi! Is the Fjord Rain Anorak warm enough for a Swedish winter?")
    row = inbox.locator("a.row", has_text="Maja Berg")
    await expect(row.locator(".online")).to_be_visible(timeout=UI_TIMEOUT_MS)
    await row.click()
    view = inbox.locator("#view")
    await expect(inbox.locator("#profile")).to_contain_text("Returning customer",
                                                            timeout=UI_TIMEOUT_MS)
    await customer.get_by_role("button", name="Add Merino Wool Beanie to cart").click()
    await expect(view.locator(".cart-event")).to_have_count(1, timeout=UI_TIMEOUT_MS)

    await inbox.locator("#reply-text").fill(
        "Hi Maja! It is a shell: with a wool layer under it, it keeps you warm and dry.")
    await inbox.locator("#reply-text").press("Control+Enter")
    await view.get_by_role("button", name="Product").click()
    await inbox.locator(".picker-item", has_text="Merino Wool Beanie").click()
    await inbox.locator("#reply-text").fill("This beanie goes well with it:")
    await inbox.locator("#reply-text").press("Control+Enter")
    await view.get_by_role("button", name="Discount").click()
    await inbox.locator(".picker-item", has_text="WELCOME10").click()
    await inbox.locator("#reply-text").fill("And 10% off your first order")
    await inbox.locator("#reply-text").press("Control+Enter")
    await inbox.get_by_label("Add a note (staff only)").fill("Asked about winter use; Gothenburg.")
    await inbox.get_by_role("button", name="Add note").click()
    # Accepted by the API first: should the note not show, the toast says which side failed,
    # and the inbox's requests whether the server answered.
    try:
        await expect(inbox.locator("#toast")).to_have_text("Note added.", timeout=UI_TIMEOUT_MS)
    except AssertionError as failed:
        raise AssertionError(f"{failed}\nThe inbox's API requests:\n"
                             f"{await requests.describe()}") from None
    await expect(view.locator(".item.staff .delivery")).to_have_text(
        [re.compile("Sent$")] * 3, timeout=UI_TIMEOUT_MS)
    await expect(inbox.locator(".notes li")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    await expect(customer.locator(".message.theirs")).to_have_count(3, timeout=UI_TIMEOUT_MS)
    # She opens the discount link: the store applies the code, the inbox's cart shows it.
    async with customer.context.expect_page() as opened:
        await customer.locator(".message.theirs a.discount").click()
    tab = await opened.value
    await expect(tab.locator("#discount-code")).to_have_text("WELCOME10", timeout=UI_TIMEOUT_MS)
    await tab.close()
    await expect(customer.locator("#discount-code")).to_have_text("WELCOME10",
                                                                  timeout=UI_TIMEOUT_MS)
    await expect(view.locator(".cart")).to_contain_text("discount WELCOME10",
                                                        timeout=UI_TIMEOUT_MS)
    await expect(inbox.locator("#profile dd.language")).to_have_text("Swedish (Sweden)")
    await expect(inbox.locator("#profile time.local-time")).to_contain_text("Europe/Stockholm")
    await customer.locator("#chat-text").fill("Perfect, thank you!")

    shots = {
        "inbox.png": inbox,
        "storefront-chat.png": customer,
    }
    phone_inbox = await merchant_page(browser, gateway, shop, "ava", **PHONE)
    await phone_inbox.locator("a.row", has_text="Maja Berg").click()
    await expect(phone_inbox.locator(".item.staff")).to_have_count(3, timeout=UI_TIMEOUT_MS)
    shots["inbox-phone.png"] = phone_inbox
    phone_customer = await (await browser.new_context(**PHONE)).new_page()
    await phone_customer.goto(store)
    await phone_customer.locator("button.launcher").click()
    await expect(phone_customer.get_by_label("Your name")).to_be_visible()
    shots["storefront-chat-phone.png"] = phone_customer

    for name, page in shots.items():
        await page.wait_for_timeout(300)  # let transitions settle
        await page.screenshot(path=str(out / name))
        check_png(out / name)
