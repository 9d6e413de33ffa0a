"""The inbox and the storefront chat widget in a real browser (headless Chromium), against the
real stack: a customer chats from the demo storefront, the merchant answers from the inbox,
both see each other live; presence decides whether a reply reaches the chat or goes by email;
text is text, never markup."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from shared.contracts import PresenceChanged
from shared.topics import CHAT_INBOUND, PRESENCE_CHANGES
from tests.conftest import eventually, read_topic
from tests.helpers import chat_message, new_shop, unique
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


async def test_a_customer_and_the_merchant_chat_live(browser, stack, producer, db, smtp,
                                                     prepared):
    shop = await new_shop(producer, db, with_passwords=True)
    gateway = stack["gateway"].url
    email = f"{unique('maja')}@example.se"
    # The merchant's browser is in another time zone than the shop: times follow the shop.
    inbox = await merchant_page(browser, gateway, shop, "ava",
                                timezone_id="America/New_York")
    await expect(inbox.locator("#shop-name")).to_have_text("Fjord & Pine Outfitters")
    customer = await customer_page(browser, f"{gateway}/storefront/demo?shop={shop.shop_id}")

    # The customer fills the cart, then asks a question.
    await customer.get_by_role("button", name="Add Fjord Rain Anorak to cart").click()
    await customer.get_by_role("button", name="Add Fjord Rain Anorak to cart").click()
    await customer.get_by_role("button", name="Remove one Fjord Rain Anorak from cart").click()
    await expect(customer.locator("#cart-count")).to_have_text("1")
    await start_chat(customer, "Maja Berg", email, "Is the anorak waterproof?")
    await expect(customer.locator(".message.mine")).to_have_text(
        re.compile("Is the anorak waterproof?"))

    # It appears in the merchant's list by itself, unread, with Online.
    row = inbox.locator("a.row", has_text="Maja Berg")
    await expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
    await expect(row).to_have_class(re.compile("unread"))
    await expect(row.locator(".online")).to_have_text("Online", timeout=UI_TIMEOUT_MS)
    await expect(row).to_contain_text("Is the anorak waterproof?")
    await expect(row).to_contain_text("Unassigned")
    # A desktop notification: a customer message in an unassigned conversation.
    notes = await inbox.evaluate("window.__notifications")
    assert [n["title"] for n in notes] == ["New message from Maja Berg"], notes

    await row.click()
    view = inbox.locator("#view")
    await expect(view.locator("h2#view-title")).to_have_text("Maja Berg")
    await expect(view.locator(".item.customer")).to_have_text(
        re.compile("Is the anorak waterproof?"))
    await expect(view.locator(".cart")).to_contain_text("1 \u00d7 Fjord Rain Anorak",
                                                        timeout=UI_TIMEOUT_MS)
    # Cart changes before the chat make the header; those after it show on the timeline, live.
    await customer.get_by_role("button", name="Add Merino Wool Beanie to cart").click()
    await expect(view.locator(".cart-event")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    await expect(view.locator(".cart-event")).to_contain_text(
        "Customer added Merino Wool Beanie to the cart")
    await expect(view.locator(".cart")).to_contain_text("1 \u00d7 Merino Wool Beanie",
                                                        timeout=UI_TIMEOUT_MS)
    await expect(view.locator(".cart")).to_contain_text("218.00")
    await expect(view.locator(".destination")).to_have_text("Replies go to Online Store chat")
    await expect(inbox.locator("#profile")).to_contain_text("New customer")
    # Times are the shop's (Europe/Berlin), not the browser's (New York).
    stamp = view.locator(".item.customer time")
    shown, expected = await stamp.evaluate("""t => [t.textContent, new Intl.DateTimeFormat(
        undefined, {hour: "2-digit", minute: "2-digit", timeZone: "Europe/Berlin"})
        .format(new Date(t.getAttribute("datetime")))]""")
    assert shown == expected

    # Text, then a discount code from the picker of active codes.
    await inbox.locator("#reply-text").fill("Yes, fully taped seams.")
    await inbox.locator("#reply-text").press("Control+Enter")
    await inbox.get_by_role("button", name="Discount").click()
    dialog = inbox.get_by_role("dialog", name="Share a discount code")
    await expect(dialog.get_by_role("button")).to_have_text(["\u00d7", re.compile("WELCOME10")])
    await dialog.get_by_role("button", name=re.compile("WELCOME10")).click()
    await expect(inbox.locator(".attachment")).to_contain_text("Discount: WELCOME10")
    await inbox.locator("#reply-text").fill("Here is 10% off")
    await inbox.get_by_role("button", name="Send").click()
    replies = view.locator(".item.staff")
    await expect(replies).to_have_count(2, timeout=UI_TIMEOUT_MS)
    await expect(replies.locator(".delivery")).to_have_text(
        [re.compile("Sent$"), re.compile("Sent$")], timeout=UI_TIMEOUT_MS)
    await expect(row).not_to_have_class(re.compile("unread"))  # answered

    # The customer sees both, live, with a link that applies the code.
    theirs = customer.locator(".message.theirs")
    await expect(theirs).to_have_count(2, timeout=UI_TIMEOUT_MS)
    await expect(theirs.nth(0)).to_contain_text("Yes, fully taped seams.")
    await expect(theirs.nth(1)).to_contain_text("Here is 10% off")
    link = theirs.nth(1).locator("a.discount")
    await expect(link).to_have_text("Apply discount WELCOME10")
    await expect(link).to_have_attribute("href", f"https://{shop.domain}/discount/WELCOME10")

    # Heartbeats keep the customer Online well past the presence timeout.
    await asyncio.sleep(4)
    await expect(row.locator(".online")).to_be_visible()

    # The customer leaves the store: the page sends `left` as it goes.
    conversation_id = await row.get_attribute("data-id")
    visitor_id = await db.fetchval(
        "SELECT visitor_id FROM conversations WHERE conversation_id = $1::uuid", conversation_id)
    await customer.goto("about:blank")
    left = await read_topic(prepared, PRESENCE_CHANGES, lambda r: visitor_id.encode() in r.value
                            and PresenceChanged.model_validate_json(r.value).reason == "left")
    assert left
    await expect(view.locator(".destination")).to_have_text(
        f"The customer left the store: replies go by email to {email}", timeout=UI_TIMEOUT_MS)
    await expect(row.locator(".online")).to_have_count(0)

    # The next reply goes by email, and the inbox says so.
    await inbox.locator("#reply-text").fill("We also have it in green.")
    await inbox.locator("#reply-text").press("Control+Enter")
    await expect(replies).to_have_count(3, timeout=UI_TIMEOUT_MS)
    await expect(replies.nth(2).locator(".delivery")).to_have_text(
        re.compile("Sent by email"), timeout=UI_TIMEOUT_MS)
    [mail] = await eventually(lambda: _value(smtp.to(email)))
    text = mail.get_body(("plain",)).get_content()
    assert "We also have it in green." in text

    # The email's link brings the customer back into the same conversation, on a new device.
    continue_link = re.search(r"\S+/chat/continue\?\S+", text).group(0)
    continue_link = gateway + continue_link[continue_link.index("/chat/continue"):]
    back = await (await browser.new_context()).new_page()
    await back.goto(continue_link)
    messages = back.locator(".message")
    await expect(messages).to_have_count(4, timeout=UI_TIMEOUT_MS)
    await expect(messages.nth(3)).to_contain_text("We also have it in green.")
    await expect(messages.nth(3).locator(".meta")).to_contain_text("sent by email")
    assert "#continue" not in back.url  # the link's secret does not stay in the address bar
    await back.locator("#chat-text").fill("Green it is!")
    await back.locator("#chat-text").press("Enter")
    await expect(view.locator(".item.customer")).to_have_count(2, timeout=UI_TIMEOUT_MS)
    await expect(view.locator(".item.customer").nth(1)).to_have_text(re.compile("Green it is!"))
    await expect(row.locator(".online")).to_be_visible(timeout=UI_TIMEOUT_MS)  # back in store
    await expect(view.locator(".destination")).to_have_text("Replies go to Online Store chat",
                                                            timeout=UI_TIMEOUT_MS)


async def _value(value: Any) -> Any:
    return value


HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


async def test_customer_text_is_shown_as_text(browser, stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    gateway = stack["gateway"].url
    inbox = await merchant_page(browser, gateway, shop, "ben")
    customer = await customer_page(browser, f"{gateway}/storefront/demo?shop={shop.shop_id}")
    await start_chat(customer, "<b>Eve</b>", f"{unique('eve')}@example.com", HOSTILE)

    mine = customer.locator(".message.mine .text")
    await expect(mine).to_have_text(HOSTILE)
    row = inbox.locator("a.row").first
    await expect(row).to_contain_text(HOSTILE, timeout=UI_TIMEOUT_MS)
    await expect(row.locator(".row-name")).to_have_text("<b>Eve</b>")
    await row.click()
    await expect(inbox.locator("#view .item.customer .text")).to_have_text(HOSTILE)
    await expect(inbox.locator("#view-title")).to_have_text("<b>Eve</b>")
    # Nothing of it became markup or ran, on either side.
    for page in (inbox, customer):
        assert await page.evaluate("window.__pwned") is None
        assert await page.locator("img[src=x]").count() == 0
    assert await inbox.locator("#view b").count() == 0
    # A note with markup is text as well.
    await inbox.get_by_label("Add a note (staff only)").fill("<i>VIP</i> customer")
    await inbox.get_by_role("button", name="Add note").click()
    await expect(inbox.locator(".notes .text")).to_have_text("<i>VIP</i> customer",
                                                             timeout=UI_TIMEOUT_MS)
    assert await inbox.locator("#profile i").count() == 0


async def test_notifications_only_for_my_or_unassigned_conversations(browser, stack, producer,
                                                                       db):
    shop = await new_shop(producer, db, with_passwords=True)
    inbox = await merchant_page(browser, stack["gateway"].url, shop, "ava")
    thread = unique("thread")

    async def customer_writes(text: str) -> None:
        await producer.send_and_wait(CHAT_INBOUND, chat_message(
            shop.shop_id, thread_ref=thread, text=text, customer={"name": "Sven Ek"}))
        await expect(inbox.locator("a.row", has_text=text)).to_be_visible(timeout=UI_TIMEOUT_MS)

    async def titles() -> list[str]:
        await asyncio.sleep(0.5)  # the notification follows a look-up of the conversation
        return [n["body"] for n in await inbox.evaluate("window.__notifications")]

    await customer_writes("first, unassigned")
    assert await titles() == ["first, unassigned"]
    cid = await db.fetchval("SELECT conversation_id FROM conversations WHERE thread_ref = $1",
                            thread)
    async with client(stack, shop) as ava:
        assert (await ava.post(f"/conversations/{cid}/assign", json={"staff_id": "ben"})
                ).status_code == 202
        await eventually(lambda: db.fetchval(
            "SELECT assignee_staff_id = 'ben' FROM conversations WHERE conversation_id = $1", cid))
        await customer_writes("second, assigned to Ben")
        assert await titles() == ["first, unassigned"]
        assert (await ava.post(f"/conversations/{cid}/assign", json={"staff_id": "ava"})
                ).status_code == 202
        await eventually(lambda: db.fetchval(
            "SELECT assignee_staff_id = 'ava' FROM conversations WHERE conversation_id = $1", cid))
        await customer_writes("third, assigned to me")
        assert await titles() == ["first, unassigned", "third, assigned to me"]


async def test_inbox_filters_actions_and_keyboard(browser, stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    gateway = stack["gateway"].url
    threads = {name: unique("thread") for name in ("Olga Open", "Carl Closed")}
    for name, thread in threads.items():
        await producer.send_and_wait(CHAT_INBOUND, chat_message(
            shop.shop_id, thread, text=f"Hello from {name}", customer={"name": name}))
    inbox = await merchant_page(browser, gateway, shop, "ava")
    rows = inbox.locator("a.row")
    await expect(rows).to_have_count(2, timeout=UI_TIMEOUT_MS)

    # Keyboard only: into the list, down to the second row, open it; the focus survives the
    # list's live refreshes.
    names = await rows.locator(".row-name").all_text_contents()
    await rows.first.focus()
    await inbox.keyboard.press("ArrowDown")
    await expect(rows.nth(1)).to_be_focused()
    await inbox.keyboard.press("Enter")
    view = inbox.locator("#view")
    await expect(view.locator("#view-title")).to_have_text(names[1])
    await inbox.locator("a.row", has_text="Carl Closed").click()
    await expect(view.locator("#view-title")).to_have_text("Carl Closed")
    await view.get_by_role("button", name="Close", exact=True).focus()
    await inbox.keyboard.press("Enter")
    await expect(rows).to_have_count(1, timeout=UI_TIMEOUT_MS)  # moved to Closed
    await inbox.get_by_role("tab", name="Closed").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Carl Closed")
    await inbox.get_by_role("tab", name="Open").click()

    # Assign to me from the searchable staff list; the "assigned to me" filter finds it.
    await inbox.locator("a.row", has_text="Olga Open").click()
    await view.get_by_role("button", name="Assign").click()
    dialog = inbox.get_by_role("dialog", name="Assign to")
    await dialog.get_by_label("Search staff by name or email").fill("lindq")
    await expect(dialog.locator(".picker-item")).to_have_count(1)
    await dialog.locator(".picker-item").press("Enter")
    await expect(view.locator(".assignee-line")).to_have_text("Assigned to Ava Lindqvist",
                                                              timeout=UI_TIMEOUT_MS)
    await inbox.get_by_label("Assigned to me").check()
    await expect(rows).to_have_count(1)
    await inbox.get_by_label("Unassigned").check()  # the two exclude each other
    await expect(inbox.get_by_label("Assigned to me")).not_to_be_checked()
    await expect(rows).to_have_count(0)
    await inbox.get_by_label("Unassigned").uncheck()
    await inbox.get_by_label("Search conversations").fill("Olga")
    await expect(rows).to_have_count(1)
    await inbox.get_by_label("Search conversations").fill("")

    # Subject (Ava has the messaging permission), mark unread, a saved reply by shortcut.
    await view.get_by_label("Subject").fill("Sizing question")
    await view.get_by_role("button", name="Save subject").click()
    await expect(view.locator(".item.event").last).to_contain_text("changed the subject",
                                                                   timeout=UI_TIMEOUT_MS)
    await view.get_by_role("button", name="Mark unread").click()
    await expect(view.locator(".unread-badge")).to_be_visible(timeout=UI_TIMEOUT_MS)
    await inbox.get_by_role("button", name="Saved replies").click()
    manager = inbox.get_by_role("dialog", name="Saved replies")
    await manager.get_by_label("Shortcut").fill("hello")
    await manager.get_by_label("Text").fill("Hi {{ customer_first_name }}, happy to help!")
    await manager.get_by_role("button", name="Add saved reply").click()
    await expect(manager.locator(".saved-item")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    await inbox.keyboard.press("Escape")
    await view.get_by_role("button", name="Saved reply").click()
    await inbox.get_by_label("Type a shortcut").fill("hel")
    await inbox.locator(".picker-item", has_text="/hello").click()
    await expect(inbox.locator("#reply-text")).to_have_value("Hi Olga, happy to help!")

    # A product from the picker: only Online Store products are offered.
    await view.get_by_role("button", name="Product").click()
    products = inbox.get_by_role("dialog", name="Share a product").locator(".picker-main")
    await expect(products).to_have_count(3)
    assert "Retailer Sample Kit (not sold online)" not in await products.all_text_contents()
    await inbox.keyboard.press("Escape")

    # A note being typed keeps the keyboard while the customer writes again (a live update
    # re-renders the conversation and its profile).
    note = inbox.get_by_label("Add a note (staff only)")
    await note.focus()
    await inbox.keyboard.type("Prefers ")
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, threads["Olga Open"], text="One more thing", customer={"name": "Olga Open"}))
    await expect(view.locator(".item.customer").last).to_contain_text("One more thing",
                                                                      timeout=UI_TIMEOUT_MS)
    await inbox.keyboard.type("email")
    await expect(note).to_be_focused()
    await expect(note).to_have_value("Prefers email")

    # Without the messaging permission there is no subject at all.
    ben = await merchant_page(browser, gateway, shop, "ben")
    await ben.locator("a.row", has_text="Olga Open").click()
    await expect(ben.locator("#view-title")).to_have_text("Olga Open")
    await expect(ben.get_by_label("Subject")).to_have_count(0)


async def test_phone_sized_screens(browser, stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    gateway = stack["gateway"].url
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, text="Hi from my phone", customer={"name": "Pia Phone"}))
    inbox = await merchant_page(browser, gateway, shop, "ava", **phone)
    row = inbox.locator("a.row", has_text="Pia Phone")
    await expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
    await expect(inbox.locator("#view")).to_be_hidden()  # one pane at a time
    await row.click()
    await expect(inbox.locator(".list-pane")).to_be_hidden()
    await expect(inbox.locator("#reply-text")).to_be_visible()
    await inbox.get_by_role("button", name="\u2190 Conversations").click()
    await expect(row).to_be_visible()
    width = await inbox.evaluate("document.documentElement.scrollWidth")
    assert width <= 390

    customer = await customer_page(browser, f"{gateway}/storefront/demo?shop={shop.shop_id}",
                                   **phone)
    await customer.locator("button.launcher").click()
    panel = customer.locator("#chat-panel")
    box = await panel.bounding_box()
    assert box is not None and box["width"] == 390  # the chat takes the whole screen
    await customer.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    assert await customer.evaluate("document.documentElement.scrollWidth") <= 390


async def test_failed_and_held_replies_say_why(browser, stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    # A channel with no connection: the reply fails, with the reason.
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, channel="instagram", text="Hi from Instagram",
        customer={"name": "Ines Insta"}))
    # An online store chat whose customer left without giving an email: the reply waits.
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, text="Bye for now", customer={"name": "Noah Nomail"}))
    inbox = await merchant_page(browser, stack["gateway"].url, shop, "ava")
    view = inbox.locator("#view")

    await inbox.locator("a.row", has_text="Ines Insta").click()
    await expect(view.locator(".destination")).to_have_text("Replies go to Instagram")
    await inbox.locator("#reply-text").fill("Thanks for writing!")
    await inbox.locator("#reply-text").press("Control+Enter")
    await expect(view.locator(".item.failure")).to_have_text(
        re.compile("Not delivered on Instagram: the instagram channel is not connected"),
        timeout=UI_TIMEOUT_MS)
    await expect(view.locator(".item.staff .delivery")).to_have_text(
        re.compile("Failed: the instagram channel is not connected"), timeout=UI_TIMEOUT_MS)

    await inbox.locator("a.row", has_text="Noah Nomail").click()
    # Past the presence timeout (3 s in the tests) the customer counts as gone.
    await expect(view.locator(".destination")).to_have_text(
        re.compile("Replies wait for the customer: .*gave no email"), timeout=UI_TIMEOUT_MS)
    await inbox.locator("#reply-text").fill("We will be here when you are back.")
    await inbox.locator("#reply-text").press("Control+Enter")
    await expect(view.locator(".item.staff .delivery")).to_have_text(
        re.compile("Held: .*gave no email"), timeout=UI_TIMEOUT_MS)


async def test_the_next_reply_is_written_while_one_is_sent_and_a_refused_one_comes_back(
        browser, stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, text="Do you have it in green?",
        customer={"name": "Gus Green", "email": f"{unique('gus')}@example.com"}))
    inbox = await merchant_page(browser, stack["gateway"].url, shop, "ava")
    view = inbox.locator("#view")
    composer = inbox.locator("#reply-text")
    await inbox.locator("a.row", has_text="Gus Green").click()

    # A slow network: the first reply's request is held on its way to the (real) server
    # until the merchant has written the next one.
    held: asyncio.Queue[Any] = asyncio.Queue()
    await inbox.route("**/replies", held.put_nowait)
    await composer.fill("Yes, in moss green.")
    await composer.press("Control+Enter")
    first = await asyncio.wait_for(held.get(), timeout=UI_TIMEOUT_MS / 1000)
    await expect(composer).to_have_value("")
    await view.get_by_role("button", name="Product").click()
    await inbox.locator(".picker-item", has_text="Merino Wool Beanie").click()
    await composer.fill("And a beanie to match:")
    await first.continue_()
    await inbox.unroute("**/replies")
    await expect(view.locator(".item.staff")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    # What was written meanwhile is still there, with its product, and goes as written.
    await expect(composer).to_have_value("And a beanie to match:")
    await expect(view.locator(".composer .attachment")).to_contain_text("Merino Wool Beanie")
    await composer.press("Control+Enter")
    await expect(view.locator(".item.staff .text")).to_have_text(
        ["Yes, in moss green.", "And a beanie to match:"], timeout=UI_TIMEOUT_MS)
    await expect(view.locator(".item.staff .product-card")).to_have_count(1)

    # The code expires while the merchant writes: the server refuses the reply, which comes
    # back into the composer with the reason, to be mended rather than written again.
    await view.get_by_role("button", name="Discount").click()
    await inbox.locator(".picker-item", has_text="WELCOME10").click()
    await composer.fill("Here is 10% off")
    await db.execute("UPDATE discount_codes SET status = 'expired' WHERE shop_id = $1",
                     shop.shop_id)
    await composer.press("Control+Enter")
    await expect(view.locator(".composer .error")).to_have_text(
        "discount code 'WELCOME10' is expired and cannot be shared", timeout=UI_TIMEOUT_MS)
    await expect(composer).to_have_value("Here is 10% off")
    await expect(view.locator(".composer .attachment")).to_contain_text("WELCOME10")
    await expect(view.locator(".item.staff")).to_have_count(2)
