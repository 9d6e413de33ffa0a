"""Blocking a customer: per shop, on the store chat (403 the widget shows), Messenger and email
(refused with the reason on the DLQ, never shown as new or unread); unblocking lets them back."""

from __future__ import annotations

from shared.topics import CHAT_INBOUND, dlq_topic
from tests.conftest import eventually, read_topic
from tests.helpers import chat_message, new_shop, unique
from tests.messenger_support import messenger_shop, numeric_id
from tests.test_api_support import client
from tests.test_browser_support import (
    UI_TIMEOUT_MS,
    customer_page,
    expect,
    merchant_page,
    requires_browser,
)
from tests.test_browser_support import start_chat as start_widget_chat
from tests.test_storefront_api import SF, bearer, say, start_chat, storefront

#: What a customer's new message would change on the conversation.
STATE = """SELECT unread, last_message_at, last_message_preview,
                  (SELECT count(*) FROM timeline_items t
                    WHERE t.conversation_id = c.conversation_id) AS items
           FROM conversations c WHERE conversation_id = $1::uuid"""


async def _block(stack, shop, conversation_id: str, reason: str) -> None:
    async with client(stack, shop) as ava:
        response = await ava.post(f"/conversations/{conversation_id}/block",
                                  json={"reason": reason})
        assert response.status_code == 202, response.text


async def _blocked(db, conversation_id: str) -> bool:
    return bool(await db.fetchval(
        "SELECT blocked_at IS NOT NULL FROM conversations WHERE conversation_id = $1::uuid",
        conversation_id))


async def _refused(settings, thread_ref: str) -> str:
    [record] = await read_topic(settings, dlq_topic(CHAT_INBOUND),
                                lambda r: thread_ref.encode() in (r.value or b""))
    return dict(record.headers)["dlq.reason"].decode() if "dlq.reason" in dict(
        record.headers) else str(record.headers)


async def test_a_blocked_store_chat_customer_is_refused_in_that_shop_only(stack, producer, db):
    shop, other = await new_shop(producer, db), await new_shop(producer, db)
    visitor, email = unique("visitor"), f"{unique('troll')}@example.se"
    async with storefront(stack) as sf:
        session = await start_chat(sf, shop.shop_id, visitor_id=visitor, email=email)
        await say(sf, session, "You will regret this")
        conversation_id = session["conversation_id"]
        await eventually(lambda: db.fetchval(
            "SELECT 1 FROM conversations WHERE conversation_id = $1::uuid", conversation_id))
        await _block(stack, shop, conversation_id, "abusive messages")
        await eventually(lambda: _blocked(db, conversation_id))

        refused = await sf.post(f"{SF}/chat/messages", json={"text": "Hello?"},
                                headers=bearer(session))
        assert refused.status_code == 403
        assert refused.json()["detail"] == "This shop is not taking messages from you in this chat."
        for fields in ({"visitor_id": visitor}, {"email": email.upper()}):
            body = {"visitor_id": unique("visitor"), "name": "T", **fields}
            again = await sf.post(f"{SF}/shops/{shop.shop_id}/chats", json=body)
            assert again.status_code == 403, (fields, again.text)
        # Another shop does not know of it.
        await start_chat(sf, other.shop_id, visitor_id=visitor, email=email)

        async with client(stack, shop) as ava:
            detail = (await ava.get(f"/conversations/{conversation_id}")).json()
            assert (detail["blocked"], detail["blocked_reason"]) == (True, "abusive messages")
            assert [i["kind"] for i in detail["timeline"]][-1] == "blocked"
            assert (await ava.post(f"/conversations/{conversation_id}/unblock")).status_code == 202
        await eventually(lambda: _not(_blocked(db, conversation_id)))
        await say(sf, session, "Sorry about before")


async def _not(awaitable) -> bool:
    return not await awaitable


async def test_blocked_on_messenger_and_by_email_refused_with_the_reason(
    stack, producer, db, meta, prepared
):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    psid = numeric_id()
    await meta.message(shop.page_id, psid, "First message")
    conversation_id = await eventually(lambda: db.fetchval(
        "SELECT conversation_id::text FROM conversations WHERE shop_id = $1 "
        "AND channel = 'messenger'", shop.shop_id))
    await _block(stack, shop.shop, conversation_id, "spam")
    await eventually(lambda: _blocked(db, conversation_id))
    before = await db.fetchrow(STATE, conversation_id)

    await meta.message(shop.page_id, psid, "Buy cheap followers")
    reason = await _refused(prepared, f"{shop.page_id}:{psid}")
    assert "the customer is blocked in this shop: spam" in reason
    after = await db.fetchrow(STATE, conversation_id)
    assert dict(after) == dict(before)  # nothing new, nothing unread, nothing to notify

    # Email: a blocked address cannot open a new thread either.
    address = f"{unique('spam')}@example.se"
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, unique("mail"), channel="email", visitor_id=None,
        customer={"email": address, "name": "Spammer"}))
    email_conversation = await eventually(lambda: db.fetchval(
        "SELECT conversation_id::text FROM conversations WHERE shop_id = $1 "
        "AND channel = 'email'", shop.shop_id))
    await _block(stack, shop.shop, email_conversation, "phishing")
    await eventually(lambda: _blocked(db, email_conversation))
    thread = unique("mail")
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, thread, channel="email", visitor_id=None,
        customer={"email": address.upper(), "name": "Spammer"}))
    assert "phishing" in await _refused(prepared, thread)
    assert await db.fetchval("SELECT count(*) FROM conversations WHERE shop_id = $1 "
                             "AND channel = 'email'", shop.shop_id) == 1


@requires_browser
async def test_the_widget_says_so_and_the_inbox_shows_the_block(browser, stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    gateway = stack["gateway"].url
    customer = await customer_page(browser, f"{gateway}/storefront/demo?shop={shop.shop_id}")
    await start_widget_chat(customer, "Troll", f"{unique('troll')}@example.se", "First!")
    conversation_id = await eventually(lambda: db.fetchval(
        "SELECT conversation_id::text FROM conversations WHERE shop_id = $1", shop.shop_id))
    inbox = await merchant_page(browser, gateway, shop, "ava")
    await inbox.goto(f"{gateway}/inbox/#/c/{conversation_id}")
    await inbox.get_by_role("button", name="Block").click()
    dialog = inbox.get_by_role("dialog", name="Block this customer")
    await dialog.get_by_label("Why").fill("insults staff")
    await dialog.get_by_role("button", name="Block").click()
    await expect(inbox.locator(".blocked-banner")).to_contain_text(
        "Blocked: insults staff", timeout=UI_TIMEOUT_MS)
    await expect(inbox.get_by_role("button", name="Unblock")).to_be_visible()

    await customer.locator("#chat-text").fill("Still here")
    await customer.locator("#chat-text").press("Enter")
    await expect(customer.locator(".status.error")).to_have_text(
        "Not sent: This shop is not taking messages from you in this chat.",
        timeout=UI_TIMEOUT_MS)
