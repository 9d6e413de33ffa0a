"""Order updates on Messenger against the real stack and Meta's stand-in: the checkout opt-in,
the window moving under a controlled clock, the customer's and the merchant's turn-off, and a
removed channel."""

from __future__ import annotations

import asyncio

from shared.ids import derived_id
from shared.messenger import ORDER_UPDATE_SETTINGS, ORDER_UPDATES_OFF, user_ref_thread
from shared.topics import MESSENGER_EVENTS
from tests.conftest import eventually, read_topic
from tests.helpers import unique
from tests.messenger_support import (
    accepted,
    messenger_shop,
    numeric_id,
    order_event,
    publish_order,
    template_of,
    text_of,
)


def _to(send: dict, **recipient: str) -> bool:
    return send["recipient"] == recipient


async def _order_processed(db, shop_id: str, order_id: str, status: str) -> None:
    await eventually(lambda: db.fetchval(
        "SELECT status = $3 FROM orders WHERE shop_id = $1 AND order_id = $2",
        shop_id, order_id, status))


async def _consent(db, shop_id: str, order_id: str, state: str) -> dict:
    return await eventually(lambda: db.fetchrow(
        """SELECT * FROM messenger_order_consents WHERE shop_id = $1 AND order_id = $2
           AND state = $3""", shop_id, order_id, state))


async def _changes(db, shop_id: str, order_id: str) -> list[tuple[str, str]]:
    rows = await db.fetch(
        """SELECT change, actor FROM messenger_consent_changes
           WHERE shop_id = $1 AND order_id = $2 ORDER BY at, change""", shop_id, order_id)
    return [(r["change"], r["actor"]) for r in rows]


async def test_confirmation_then_a_template_30_h_later_then_the_customer_turns_updates_off(
    stack, producer, db, meta, clock
):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    psid, user_ref, order_id = numeric_id(), unique("ref"), unique("order")
    number = f"#{numeric_id()[:5]}"
    # Checkout: the customer ticks the Messenger box (Meta's opt-in webhook), the shop platform
    # publishes the order with the opt-in reference.
    assert (await meta.optin(shop.page_id, psid, user_ref))["status"] == 200
    await publish_order(producer, order_event(
        shop.shop_id, order_id, number, "created",
        messenger_optin={"user_ref": user_ref, "page_id": shop.page_id}))

    [confirmation] = await accepted(meta, shop.page_id,
                                    lambda s: number in text_of(s))
    assert confirmation["recipient"] == {"user_ref": user_ref}  # no PSID known yet
    assert confirmation["messaging_type"] == "UPDATE"
    consent = await _consent(db, shop.shop_id, order_id, "active")
    conversation = await db.fetchrow(
        "SELECT * FROM conversations WHERE conversation_id = $1", consent["conversation_id"])
    assert conversation["channel"] == "messenger"
    assert conversation["thread_ref"] == user_ref_thread(shop.page_id, user_ref)
    confirmation_id = await eventually(lambda: db.fetchval(
        """SELECT message_id FROM messages WHERE conversation_id = $1 AND author = 'system'
           AND delivery_status = 'sent' AND text LIKE '%' || $2 || '%'""",
        conversation["conversation_id"], number))

    # 30 hours later (for the notifier's planner and for Meta alike) the order ships.
    await clock.advance(30)
    await publish_order(producer, order_event(
        shop.shop_id, order_id, number, "shipped",
        tracking={"carrier": "DHL", "number": "JJD0099887766", "url": "https://dhl.example/t/1"}))
    [shipped] = await accepted(meta, shop.page_id,
                               lambda s: (template_of(s) or {}).get("name") == "order_shipped")
    assert shipped["messaging_type"] == "UTILITY" and "tag" not in shipped["request"]
    params = [p["text"] for p in template_of(shipped)["components"][0]["parameters"]]
    assert params == [number, "JJD0099887766"]  # placeholders only: no carrier, no link
    timeline = await db.fetch(
        """SELECT t.kind, t.author, t.text, m.delivery_status FROM timeline_items t
           LEFT JOIN messages m ON m.message_id = t.message_id
           WHERE t.conversation_id = $1 ORDER BY t.seq""", conversation["conversation_id"])
    assert [(t["kind"], t["author"]) for t in timeline][:2] == [
        ("merchant_reply", "system"), ("merchant_reply", "system")]
    assert "DHL" in timeline[1]["text"]  # the merchant sees the full update on the timeline
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 2 FROM messages WHERE conversation_id = $1 AND "
        "delivery_status = 'sent'", conversation["conversation_id"]))
    assert confirmation_id is not None

    # The customer opens the menu: "Order update settings" -> prompt -> "Turn off".
    assert (await meta.postback(shop.page_id, psid, ORDER_UPDATE_SETTINGS))["status"] == 200
    [prompt] = await accepted(meta, shop.page_id,
                              lambda s: bool((s["message"] or {}).get("quick_replies")))
    assert prompt["recipient"] == {"id": psid} and prompt["messaging_type"] == "RESPONSE"
    assert [q["payload"] for q in prompt["message"]["quick_replies"]] == [
        "ORDER_UPDATES_OFF", "ORDER_UPDATES_KEEP"]
    answer = await meta.message(shop.page_id, psid, "Turn off updates",
                                quick_reply_payload=ORDER_UPDATES_OFF)
    assert answer["status"] == 200
    await _consent(db, shop.shop_id, order_id, "off_by_customer")
    await accepted(meta, shop.page_id, lambda s: "turned off" in text_of(s))
    assert await _changes(db, shop.shop_id, order_id) == [
        ("opted_in", "customer"), ("turned_off", "customer")]
    assert await db.fetchval(
        """SELECT count(*) FROM timeline_items WHERE conversation_id = $1
           AND kind = 'order_updates_off' AND author = 'customer'""",
        conversation["conversation_id"]) == 1
    # The quick reply is a setting, not a message for the merchant.
    assert await db.fetchval(
        "SELECT count(*) FROM messages WHERE source_id = $1 AND direction = 'inbound'",
        f"messenger:{answer['mid']}") == 0

    # The delivery update is not sent.
    sends_before = len(await meta.sends(shop.page_id))
    update = order_event(shop.shop_id, order_id, number, "delivery_update",
                         tracking={"number": "JJD0099887766", "status": "out for delivery"})
    await publish_order(producer, update)
    await _order_processed(db, shop.shop_id, order_id, "in_transit")
    await asyncio.sleep(1.5)
    assert len(await meta.sends(shop.page_id)) == sends_before
    assert await db.fetchval("SELECT count(*) FROM messages WHERE message_id = $1",
                             derived_id("order_update", shop.shop_id, update.event_id)) == 0


async def test_the_merchant_turns_off_one_order_and_a_new_order_needs_a_new_optin(
    stack, producer, db, meta
):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    psid = numeric_id()
    orders = {}
    for name in ("a", "b"):
        user_ref, order_id = unique(f"ref-{name}"), unique(f"order-{name}")
        number = f"#{name.upper()}{numeric_id()[:4]}"
        await meta.optin(shop.page_id, psid, user_ref)
        await publish_order(producer, order_event(
            shop.shop_id, order_id, number, "created",
            messenger_optin={"user_ref": user_ref, "page_id": shop.page_id}))
        orders[name] = (order_id, number, user_ref)
    for _, number, _ in orders.values():
        await accepted(meta, shop.page_id, lambda s, n=number: n in text_of(s))
    order_a, number_a, _ = orders["a"]
    consent_a = await _consent(db, shop.shop_id, order_a, "active")

    response = await shop.api.post(
        f"/conversations/{consent_a['conversation_id']}/turn-off-order-updates",
        json={"order_id": order_a})
    assert response.status_code == 202, response.text
    await _consent(db, shop.shop_id, order_a, "off_by_merchant")
    # A third order, no opt-in this time: nothing about it may reach the customer.
    order_c, number_c = unique("order-c"), f"#C{numeric_id()[:4]}"
    await publish_order(producer, order_event(shop.shop_id, order_c, number_c, "created"))
    for order_id, number, _ in (*orders.values(), (order_c, number_c, None)):
        await publish_order(producer, order_event(
            shop.shop_id, order_id, number, "shipped", tracking={"number": "00340434"}))
    number_b = orders["b"][1]
    await accepted(meta, shop.page_id, lambda s: number_b in text_of(s) and "shipped" in
                   text_of(s))
    for order_id, *_ in (*orders.values(), (order_c,)):
        await _order_processed(db, shop.shop_id, order_id, "shipped")
    await asyncio.sleep(1.5)
    texts = [text_of(s) for s in await meta.sends(shop.page_id)]
    assert not [t for t in texts if number_a in t and "shipped" in t]
    assert not [t for t in texts if number_c in t]
    assert await db.fetchval(
        "SELECT count(*) FROM messenger_order_consents WHERE shop_id = $1 AND order_id = $2",
        shop.shop_id, order_c) == 0

    trail = await shop.api.get(f"/channels/messenger/orders/{order_a}")
    assert trail.status_code == 200, trail.text
    body = trail.json()
    assert body["state"] == "off_by_merchant" and body["updates_enabled"] is False
    assert [(h["change"], h["actor"], h["staff_id"]) for h in body["history"]] == [
        ("opted_in", "customer", None), ("turned_off", "staff", "ava")]
    assert (await shop.api.get(f"/channels/messenger/orders/{order_c}")).status_code == 404


async def test_a_removed_channel_keeps_updates_for_existing_optins_but_refuses_new_ones(
    stack, producer, db, meta, prepared
):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    psid, user_ref, order_id, number = numeric_id(), unique("ref"), unique("order"), "#R1"
    await meta.optin(shop.page_id, psid, user_ref)
    await publish_order(producer, order_event(
        shop.shop_id, order_id, number, "created",
        messenger_optin={"user_ref": user_ref, "page_id": shop.page_id}))
    await accepted(meta, shop.page_id, lambda s: number in text_of(s))

    carla = await shop.api.delete("/channels/messenger", headers={
        "Authorization": f"Bearer {shop.shop.tokens['carla']}"})
    assert carla.status_code == 403  # configuring the channel needs the messaging permission
    removed = await shop.api.delete("/channels/messenger")
    assert removed.status_code == 200 and removed.json()["state"] == "removed"

    # The opted-in customer still gets their order's updates, and can still turn them off.
    await publish_order(producer, order_event(shop.shop_id, order_id, number, "shipped"))
    await accepted(meta, shop.page_id, lambda s: number in text_of(s) and "shipped" in text_of(s))
    await meta.postback(shop.page_id, psid, ORDER_UPDATE_SETTINGS)
    await accepted(meta, shop.page_id, lambda s: bool((s["message"] or {}).get("quick_replies")))

    # A new opt-in: refused by the gateway (webhook) and by the router (order event).
    new_ref, new_order = unique("ref"), unique("order")
    assert (await meta.optin(shop.page_id, numeric_id(), new_ref))["status"] == 200
    [refused] = await read_topic(prepared, MESSENGER_EVENTS,
                                 lambda r: new_ref.encode() in r.value)
    assert b'"type":"refused"' in refused.value and b"removed" in refused.value
    await publish_order(producer, order_event(
        shop.shop_id, new_order, "#R2", "created",
        messenger_optin={"user_ref": new_ref, "page_id": shop.page_id}))
    consent = await _consent(db, shop.shop_id, new_order, "refused")
    assert "removed" in consent["state_reason"]
    assert await _changes(db, shop.shop_id, new_order) == [("refused", "system")]
    # A new customer's message is refused with the reason; no conversation is opened.
    stranger = numeric_id()
    sent = await meta.message(shop.page_id, stranger, "Hi, is this open?")
    assert sent["status"] == 200  # Meta gets its 200; the refusal is recorded
    [event] = await read_topic(prepared, MESSENGER_EVENTS,
                               lambda r: sent["mid"].encode() in r.value)
    assert b'"refused_kind":"message"' in event.value
    await asyncio.sleep(1)
    assert not [s for s in await meta.sends(shop.page_id) if "#R2" in text_of(s)]
    assert await db.fetchval(
        "SELECT count(*) FROM conversations WHERE shop_id = $1 AND thread_ref LIKE $2",
        shop.shop_id, f"%{stranger}") == 0


async def test_re_adding_the_same_page_resumes_its_conversations_another_page_starts_fresh(
    stack, producer, db, meta
):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    psid = numeric_id()
    await meta.message(shop.page_id, psid, "Do you have the anorak in M?")
    first = await eventually(lambda: db.fetchrow(
        "SELECT * FROM conversations WHERE shop_id = $1 AND thread_ref = $2",
        shop.shop_id, f"{shop.page_id}:{psid}"))

    assert (await shop.api.delete("/channels/messenger")).status_code == 200
    refused = await meta.message(shop.page_id, psid, "Hello? (channel removed)")
    await shop.connect()  # the same Page again
    assert (await shop.channel())["state"] == "connected"
    await meta.message(shop.page_id, psid, "Back again")
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 2 FROM messages WHERE conversation_id = $1 AND direction = 'inbound'",
        first["conversation_id"]))
    assert await db.fetchval("SELECT count(*) FROM messages WHERE source_id = $1",
                             f"messenger:{refused['mid']}") == 0

    other_page, other_token = numeric_id(), f"token-{unique('page')}"
    await meta.page(other_page, other_token)
    await shop.connect(page_id=other_page, token=other_token)
    await meta.message(other_page, psid, "Writing to the new Page")
    second = await eventually(lambda: db.fetchrow(
        "SELECT * FROM conversations WHERE shop_id = $1 AND thread_ref = $2",
        shop.shop_id, f"{other_page}:{psid}"))
    assert second["conversation_id"] != first["conversation_id"]
    # A reply in the old Page's conversation cannot go: that Page is no longer the channel's.
    response = await shop.api.post(f"/conversations/{first['conversation_id']}/replies",
                                   json={"text": "Sorry for the wait"})
    assert response.status_code == 202
    failed = await eventually(lambda: db.fetchrow(
        """SELECT delivery_reason FROM messages WHERE conversation_id = $1
           AND text = 'Sorry for the wait' AND delivery_status = 'failed'""",
        first["conversation_id"]))
    assert f"not connected to Page {shop.page_id}" in failed["delivery_reason"]
