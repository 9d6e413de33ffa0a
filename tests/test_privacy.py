"""Privacy: Shopify's compliance webhooks (signed, queued, handled once), a customer's data
export, their erasure (nothing identifying left in PostgreSQL), a shop's erasure, and the
merchant API's privacy requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from inbox.dev.postgres import _bin
from shared.topics import CHAT_INBOUND, SHOP_SHOPS, SHOP_STAFF
from tests.conftest import SHOPIFY_API_SECRET, eventually, read_topic
from tests.helpers import chat_message, new_shop, unique
from tests.messenger_support import messenger_shop, numeric_id, order_event, publish_order
from tests.test_api_support import client
from tests.test_browser_support import UI_TIMEOUT_MS, expect, merchant_page, requires_browser

PATH = "/webhooks/shopify/compliance"


def signature(body: bytes, secret: str = SHOPIFY_API_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


async def webhook(stack: dict, topic: str, payload: dict[str, Any], *,
                  webhook_id: str | None = None, sign_with: str | None = SHOPIFY_API_SECRET
                  ) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": topic,
               "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
               "X-Shopify-Shop-Domain": payload.get("shop_domain", "")}
    if sign_with is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature(body, sign_with)
    async with httpx.AsyncClient(base_url=stack["gateway"].url, timeout=20) as shopify:
        return await shopify.post(PATH, content=body, headers=headers)


async def request_state(db, request_id: str, timeout: float = 60) -> Any:
    return await eventually(lambda: db.fetchrow(
        "SELECT * FROM privacy_requests WHERE request_id = $1", request_id), timeout=timeout)


def pg_dump(database_url: str) -> str:
    # The embedded server's own pg_dump first: a system one may be older than the server.
    embedded = _bin("pg_dump")
    binary = embedded if Path(embedded).exists() else shutil.which("pg_dump") or "pg_dump"
    return subprocess.run([binary, "--data-only", "--dbname", database_url],
                          capture_output=True, text=True, check=True, timeout=120).stdout


async def test_a_customer_on_three_channels_is_exported_then_erased(stack, producer, db, meta,
                                                                   prepared):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    email = f"{unique('maja')}@example.se"
    sentence = f"Please send it to my summer house {unique('words')}"
    customer = {"name": "Maja Berg", "email": email}
    chat, mail = unique("thread"), unique("mail-thread")
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, chat, text=f"{sentence} (chat)", customer=customer))
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, mail, channel="email", text=f"{sentence} (email)", customer=customer,
        visitor_id=None))
    # Checkout with the Messenger box ticked: an order with the opt-in, a consent, a thread.
    psid, user_ref, order_id = numeric_id(), unique("ref"), numeric_id()
    assert (await meta.optin(shop.page_id, psid, user_ref))["status"] == 200
    await publish_order(producer, order_event(
        shop.shop_id, order_id, f"#{order_id[:5]}", "created", customer=customer,
        messenger_optin={"user_ref": user_ref, "page_id": shop.page_id}))
    await eventually(lambda: db.fetchval(
        """SELECT count(*) = 1 FROM messenger_order_consents WHERE shop_id = $1""", shop.shop_id))
    conversations = await eventually(lambda: _three(db, shop.shop_id))
    chat_id = next(c["conversation_id"] for c in conversations
                   if c["channel"] == "online_store_chat")
    async with client(stack, shop.shop) as ava:
        note = await ava.post(f"/conversations/{chat_id}/notes",
                              json={"text": f"Maja prefers {email}"})
        assert note.status_code == 202, note.text
        await eventually(lambda: db.fetchval(
            "SELECT count(*) = 1 FROM customer_notes WHERE shop_id = $1", shop.shop_id))

        # Shopify asks for the customer's data: the export holds everything, within a minute.
        domain = shop.shop.domain
        asked = await webhook(stack, "customers/data_request", {
            "shop_id": 1, "shop_domain": domain, "orders_requested": [int(order_id)],
            "customer": {"id": 4242, "email": email, "phone": "+46 70 123 45 67"},
            "data_request": {"id": 9001}})
        assert asked.status_code == 200, asked.text
        download = await eventually(
            lambda: _ok(ava.get("/privacy/requests/9001/export")), timeout=60)
        exported = download.json()
        text = json.dumps(exported)
        assert email in text and f"{sentence} (chat)" in text and f"{sentence} (email)" in text
        assert {c["channel"] for c in exported["conversations"]} == {
            "online_store_chat", "email", "messenger"}
        assert [o["order_id"] for o in exported["orders"]] == [order_id]
        assert exported["messenger_consents"][0]["history"][0]["change"] == "opted_in"
        assert [n["text"] for n in exported["notes"]] == [f"Maja prefers {email}"]
        assert email in pg_dump(prepared.database.url)

        # Then the erasure, timed from the webhook to the recorded completion.
        started = time.monotonic()
        erased = await webhook(stack, "customers/redact", {
            "shop_id": 1, "shop_domain": domain,
            "customer": {"id": 4242, "email": email, "phone": ""},
            "orders_to_redact": [int(order_id)]}, webhook_id="redact-" + unique("w"))
        assert erased.status_code == 200, erased.text
        request = await eventually(lambda: db.fetchrow(
            """SELECT * FROM privacy_requests WHERE shop_id = $1 AND kind = 'customer_redact'""",
            shop.shop_id), timeout=60)
        took = time.monotonic() - started
        recorded = (request["completed_at"] - request["received_at"]).total_seconds()
        print(f"customers/redact: webhook to erasure {took:.2f} s (recorded {recorded:.2f} s)")
        assert (request["state"], request["conversations"]) == ("completed", 3)
        dump = pg_dump(prepared.database.url)
        assert email not in dump and sentence not in dump and user_ref not in dump

        # The inbox shows the conversations as a redacted customer's; search finds nothing.
        detail = (await ava.get(f"/conversations/{chat_id}")).json()
        assert detail["customer"]["name"] is None and detail["customer"]["redacted"] is True
        assert all(item.get("text") is None for item in detail["timeline"])
        assert (await ava.get("/conversations", params={"q": "summer house"})).json()[
            "items"] == []
        assert (await ava.get("/privacy/requests/9001/export")).status_code == 404
        listed = (await ava.get("/privacy/requests")).json()["items"]
        assert {(r["kind"], r["state"]) for r in listed} == {
            ("customer_data_request", "completed"), ("customer_redact", "completed")}


async def _three(db, shop_id: str) -> list[Any] | None:
    rows = await db.fetch(
        "SELECT conversation_id, channel FROM conversations WHERE shop_id = $1", shop_id)
    return rows if len(rows) == 3 else None


async def _ok(response_awaitable) -> httpx.Response | None:
    response = await response_awaitable
    return response if response.status_code == 200 else None


async def test_only_signed_webhooks_count_and_each_is_handled_once(stack, producer, db):
    shop = await new_shop(producer, db)
    payload = {"shop_id": 7, "shop_domain": shop.domain,
               "customer": {"id": 1, "email": "nobody@example.se", "phone": None},
               "orders_to_redact": []}
    for sign_with in (None, "another-secret"):
        refused = await webhook(stack, "customers/redact", payload, sign_with=sign_with,
                                webhook_id="unsigned-" + shop.shop_id)
        assert refused.status_code == 401
        assert "X-Shopify-Hmac-Sha256" in refused.json()["detail"]
    odd = await webhook(stack, "orders/create", payload)
    assert odd.status_code == 400 and "X-Shopify-Topic" in odd.json()["detail"]
    broken = await webhook(stack, "customers/redact", {"shop_domain": shop.domain})
    assert broken.status_code == 400 and "customers/redact" in broken.json()["detail"]

    # A customer nobody knows: answered 200, recorded, nothing erased. Delivered again (the
    # same webhook id): still one request.
    webhook_id = "again-" + shop.shop_id
    for _ in range(2):
        assert (await webhook(stack, "customers/redact", payload,
                              webhook_id=webhook_id)).status_code == 200
    request = await request_state(db, f"shopify:{webhook_id}")
    assert (request["state"], request["shop_id"]) == ("no_customer", shop.shop_id)
    # An unknown shop too.
    unknown = await webhook(stack, "shop/redact", {"shop_id": 8, "shop_domain": "nowhere.example"},
                            webhook_id="unknown-" + shop.shop_id)
    assert unknown.status_code == 200
    assert (await request_state(db, f"shopify:unknown-{shop.shop_id}"))["state"] == "no_shop"
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 1 FROM privacy_requests WHERE request_id = $1",
        f"shopify:{webhook_id}"))
    assert await db.fetchval("SELECT count(*) FROM privacy_requests WHERE request_id LIKE $1",
                             f"shopify:unsigned-{shop.shop_id}%") == 0


async def test_shop_erasure_removes_every_row_of_the_shop(stack, producer, db, prepared):
    shop = await new_shop(producer, db)
    await producer.send_and_wait(CHAT_INBOUND, chat_message(shop.shop_id))
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 1 FROM conversations WHERE shop_id = $1", shop.shop_id))
    async with client(stack, shop) as ava:
        assert (await ava.post("/saved-replies", json={"shortcut": "hi", "body": "Hello!"})
                ).status_code == 201
    assert (await webhook(stack, "shop/redact", {"shop_id": 9, "shop_domain": shop.domain},
                          webhook_id="shop-" + shop.shop_id)).status_code == 200
    assert (await request_state(db, f"shopify:shop-{shop.shop_id}"))["state"] == "completed"
    tables = [r["table_name"] for r in await db.fetch(
        """SELECT table_name FROM information_schema.columns
           WHERE column_name = 'shop_id' AND table_schema = 'public'
             AND table_name <> 'privacy_requests'""")]
    left = {t: await db.fetchval(f"SELECT count(*) FROM {t} WHERE shop_id = $1", shop.shop_id)
            for t in tables}
    assert set(left.values()) == {0}, left
    async with client(stack, shop) as ava:
        assert (await ava.get("/me")).status_code == 401  # the staff's tokens went too
    # The compacted shop-data topics get a tombstone for each of the shop's keys, which every
    # consumer reads past (the router is still consuming shop data afterwards).
    tombstones = await read_topic(prepared, SHOP_STAFF, lambda r: r.value is None and (
        r.key or b"").decode().startswith(f"{shop.shop_id}:"), expected=3)
    assert sorted(r.key.decode() for r in tombstones) == [
        f"{shop.shop_id}:{staff}" for staff in ("ava", "ben", "carla")]
    assert len(await read_topic(prepared, SHOP_SHOPS, lambda r: r.value is None
                                and r.key == shop.shop_id.encode())) == 1
    again = await new_shop(producer, db)
    assert await db.fetchval("SELECT count(*) FROM staff WHERE shop_id = $1", again.shop_id) == 3


async def test_staff_ask_for_an_erasure_and_a_waiting_reply_is_never_sent(stack, producer, db):
    shop = await new_shop(producer, db)
    # A customer who gave no address and left: a reply to them waits for their return (held).
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, text="Do you have it in blue?", sent_at=datetime.now(UTC) - timedelta(
            minutes=10), customer={"name": "Olga", "customer_id": "c-olga"}))
    conversation_id = await eventually(lambda: db.fetchval(
        "SELECT conversation_id FROM conversations WHERE shop_id = $1", shop.shop_id))
    async with client(stack, shop, "ben") as ben, client(stack, shop) as ava:
        reply = await ava.post(f"/conversations/{conversation_id}/replies",
                               json={"text": "Yes, in blue!"})
        assert reply.status_code == 202, reply.text
        await eventually(lambda: db.fetchval(
            """SELECT 1 FROM messages WHERE conversation_id = $1 AND author = 'staff'
               AND delivery_status = 'held'""", conversation_id))

        refused = await ben.post("/privacy/customers/redact", json={"customer_id": "c-olga"})
        assert refused.status_code == 403 and "customer_privacy" in refused.json()["detail"]
        assert (await ben.get("/privacy/requests")).status_code == 403
        assert (await ava.post("/privacy/customers/redact", json={})).status_code == 422
        accepted = await ava.post("/privacy/customers/redact", json={"customer_id": "c-olga"})
        assert accepted.status_code == 202, accepted.text
        request = await request_state(db, accepted.json()["request_id"])
        assert (request["state"], request["source"], request["requested_by_staff_id"]) == (
            "completed", "merchant", "ava")
        conversation = await db.fetchrow(
            "SELECT * FROM conversations WHERE conversation_id = $1", conversation_id)
        assert conversation["customer_name"] is None and conversation["redacted_at"]
        held = await db.fetchrow(
            """SELECT text, delivery_status, delivery_reason FROM messages
               WHERE conversation_id = $1 AND author = 'staff'""", conversation_id)
        assert dict(held) == {"text": None, "delivery_status": "failed",
                              "delivery_reason": "cancelled: the customer's data was erased"}
        row = (await ava.get("/conversations", params={"status": "open"})).json()["items"]
        assert [r["customer"] for r in row] == [
            {"name": None, "email": None, "redacted": True}]


@requires_browser
async def test_the_inbox_shows_a_redacted_customer(browser, stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, text="Call me on my private line", customer={
            "name": "Nils Holm", "email": f"{unique('nils')}@example.se", "customer_id": "c-nils"}))
    await eventually(lambda: db.fetchval(
        "SELECT 1 FROM conversations WHERE shop_id = $1", shop.shop_id))
    async with client(stack, shop) as ava:
        accepted = await ava.post("/privacy/customers/redact", json={"customer_id": "c-nils"})
        await request_state(db, accepted.json()["request_id"])
    inbox = await merchant_page(browser, stack["gateway"].url, shop, "ava")
    row = inbox.locator("a.row")
    await expect(row).to_have_count(1, timeout=UI_TIMEOUT_MS)
    await expect(row).to_contain_text("Redacted customer")
    await expect(row).not_to_contain_text("Nils")
    await row.click()
    await expect(inbox.locator("#view-title")).to_have_text("Redacted customer")
    await expect(inbox.locator("#view")).not_to_contain_text("private line")
