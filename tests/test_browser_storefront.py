"""The demo storefront as a shop's Online Store, in a real browser (headless Chromium) against
the real stack: a discount link sent in the chat applies its code to the cart, and the merchant
sees it; the customer's time zone and language reach the merchant's profile of them."""

from __future__ import annotations

import re

import pytest

from tests.conftest import eventually
from tests.helpers import new_shop, unique
from tests.test_api_support import client
from tests.test_browser_support import (
    UI_TIMEOUT_MS,
    customer_page,
    expect,
    merchant_page,
    requires_browser,
    start_chat,
)

pytestmark = [requires_browser, pytest.mark.timeout(240)]


async def _conversation_of(db, shop_id: str, name: str) -> str:
    """The id of the conversation `name` started, once the router stored it."""
    return str(await eventually(lambda: db.fetchval(
        "SELECT conversation_id FROM conversations WHERE shop_id = $1 AND customer_name = $2",
        shop_id, name)))


async def test_a_discount_link_in_the_chat_applies_to_the_cart(browser, stack, producer, db):
    gateway = stack["gateway"].url
    # In development the shop's Online Store is the demo storefront: links open there.
    shop = await new_shop(producer, db, with_passwords=True, demo_storefront_of=gateway)
    store = f"{gateway}/storefront/demo/{shop.shop_id}"
    inbox = await merchant_page(browser, gateway, shop, "ava")
    customer = await customer_page(browser, f"{gateway}/storefront/demo?shop={shop.shop_id}")

    await customer.get_by_role("button", name="Add Fjord Rain Anorak to cart").click()
    await expect(customer.locator("#cart-subtotal")).to_have_text("189.00 EUR")
    await expect(customer.locator("#cart-discount")).to_be_hidden()
    await start_chat(customer, "Nora Lind", f"{unique('nora')}@example.se",
                     "Is there a discount for a first order?")
    cid = await _conversation_of(db, shop.shop_id, "Nora Lind")

    # The merchant sends the code (through the merchant API, as an integration would).
    async with client(stack, shop) as ava:
        reply = {"text": "Welcome! 10% off:", "discount_code": "WELCOME10"}
        assert (await ava.post(f"/conversations/{cid}/replies", json=reply)).status_code == 202
    link = customer.locator(".message.theirs a.discount")
    await expect(link).to_have_text("Apply discount WELCOME10", timeout=UI_TIMEOUT_MS)
    await expect(link).to_have_attribute("href", f"{store}/discount/WELCOME10")

    # The customer clicks it: the store opens (a new tab), the code is in the cart, with the
    # reduced subtotal (10 % off 189.00), and the address is the store's own again.
    async with customer.context.expect_page() as opened:
        await link.click()
    tab = await opened.value
    await expect(tab.locator("#notice")).to_have_text(
        "Discount code WELCOME10 applied: 10% off.", timeout=UI_TIMEOUT_MS)
    await expect(tab.locator("#cart-discount")).to_be_visible()
    await expect(tab.locator("#discount-code")).to_have_text("WELCOME10")
    await expect(tab.locator("#discount-amount")).to_have_text("\u221218.90 EUR")
    await expect(tab.locator("#cart-subtotal")).to_have_text("170.10 EUR")
    assert tab.url == f"{gateway}/storefront/demo?shop={shop.shop_id}"
    # The tab the customer chats in shows the same cart (one cart per browser).
    await expect(customer.locator("#cart-subtotal")).to_have_text("170.10 EUR",
                                                                 timeout=UI_TIMEOUT_MS)
    await expect(customer.locator("#discount-code")).to_have_text("WELCOME10")
    await expect(customer.locator("#notice")).to_have_text(
        "Discount code WELCOME10 applied: 10% off.")

    # The merchant's cart header shows the code; the timeline says it was applied.
    row = inbox.locator("a.row", has_text="Nora Lind")
    await expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
    await row.click()
    view = inbox.locator("#view")
    cart = view.locator(".cart")
    await expect(cart).to_contain_text("discount WELCOME10", timeout=UI_TIMEOUT_MS)
    await expect(cart).to_contain_text("170.10")
    await expect(cart).to_contain_text("18.90")
    await expect(cart).to_contain_text("1 \u00d7 Fjord Rain Anorak")
    await expect(view.locator(".cart-event")).to_contain_text(
        "Customer applied the discount code WELCOME10 to the cart")

    # More in the cart: the discount follows it, in the store and in the inbox.
    await tab.get_by_role("button", name="Add Merino Wool Beanie to cart").click()
    await expect(tab.locator("#cart-subtotal")).to_have_text("196.20 EUR")
    await expect(tab.locator("#discount-amount")).to_have_text("\u221221.80 EUR")
    await expect(cart).to_contain_text("196.20", timeout=UI_TIMEOUT_MS)

    # An expired or unknown code applies nothing and says why; the cart keeps its code.
    await tab.goto(f"{store}/discount/SUMMER25")
    await expect(tab.locator("#notice")).to_have_text(
        "Discount not applied: the discount code SUMMER25 has expired.", timeout=UI_TIMEOUT_MS)
    await expect(tab.locator("#discount-code")).to_have_text("WELCOME10")
    await expect(tab.locator("#cart-subtotal")).to_have_text("196.20 EUR")
    await tab.goto(f"{store}/discount/NOPE")
    await expect(tab.locator("#notice")).to_have_text(
        "Discount not applied: there is no discount code NOPE in this store.",
        timeout=UI_TIMEOUT_MS)
    await expect(cart).to_contain_text("discount WELCOME10")


async def test_the_profile_shows_the_customers_local_time_and_language(browser, stack,
                                                                       producer, db):
    gateway = stack["gateway"].url
    shop = await new_shop(producer, db, with_passwords=True)
    inbox = await merchant_page(browser, gateway, shop, "ava",
                                timezone_id="America/New_York")
    # The customer's browser is in Zurich, in Swiss German.
    customer = await customer_page(browser, f"{gateway}/storefront/demo?shop={shop.shop_id}",
                                   timezone_id="Europe/Zurich", locale="de-CH")
    await start_chat(customer, "Lea Keller", f"{unique('lea')}@example.ch",
                     "Grüezi! Habt ihr die Jacke in M?")

    row = inbox.locator("a.row", has_text="Lea Keller")
    await expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
    await row.click()
    profile = inbox.locator("#profile")
    await expect(profile).to_contain_text("New customer")
    language = profile.locator("dd.language")
    await expect(language).to_have_text("German (Switzerland)", timeout=UI_TIMEOUT_MS)
    await expect(language).to_have_attribute("title", "de-CH")
    local = profile.locator("time.local-time")
    await expect(local).to_contain_text("(Europe/Zurich)")

    # The time shown is Zurich's now (not the merchant's New York, not the shop's Berlin
    # format), and it keeps ticking: cleared, it is written again by itself.
    zurich_now = """() => new Intl.DateTimeFormat(undefined, {hour: "2-digit",
        minute: "2-digit", weekday: "short", timeZone: "Europe/Zurich"}).format(new Date())"""
    shown = await local.text_content()
    assert re.sub(r" \(Europe/Zurich\)$", "", shown or "") == await inbox.evaluate(zurich_now)
    await local.evaluate("t => { t.textContent = ''; }")
    await expect(local).to_contain_text("(Europe/Zurich)", timeout=UI_TIMEOUT_MS)


#: A browser that reports a time zone the shop does not know (a newer tz database than the
#: shop's, a patched browser).
UNKNOWN_ZONE = """
const resolved = Intl.DateTimeFormat.prototype.resolvedOptions;
Intl.DateTimeFormat.prototype.resolvedOptions = function () {
  return { ...resolved.call(this), timeZone: "Mars/Olympus_Mons" };
};
"""


async def test_a_time_zone_the_shop_does_not_know_never_stops_a_chat(browser, stack,
                                                                      producer, db):
    gateway = stack["gateway"].url
    shop = await new_shop(producer, db)
    context = await browser.new_context(locale="sv-SE")
    await context.add_init_script(UNKNOWN_ZONE)
    customer = await context.new_page()
    await customer.goto(f"{gateway}/storefront/demo?shop={shop.shop_id}")
    await expect(customer.locator("button.launcher")).to_have_text(
        "Chat with Fjord & Pine Outfitters", timeout=UI_TIMEOUT_MS)
    await start_chat(customer, "Mars Rover", f"{unique('rover')}@example.com", "Hello?")
    await expect(customer.locator(".message.mine")).to_have_text(re.compile("Hello?"),
                                                                 timeout=UI_TIMEOUT_MS)
    await expect(customer.locator(".status")).to_have_text("")
    cid = await _conversation_of(db, shop.shop_id, "Mars Rover")
    row = await db.fetchrow("SELECT customer_timezone, customer_locale FROM conversations "
                            "WHERE conversation_id = $1::uuid", cid)
    # Started without what was refused; the language, which was fine, is kept.
    assert (row["customer_timezone"], row["customer_locale"]) == (None, "sv-SE")
