"""Conversation rules applied by the router, driven through Kafka against the real stack."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.contracts import OutboundMessage, TimelineItem
from shared.rules import IMAGE_REFUSED
from shared.topics import (
    CHAT_INBOUND,
    INBOX_COMMANDS,
    INBOX_TIMELINE,
    ORDERS_EVENTS,
    OUTBOUND_TOPICS,
    STOREFRONT_CART,
    dlq_topic,
)
from tests.conftest import eventually, read_topic
from tests.helpers import chat_message, command, new_shop, open_conversation, unique


async def _items(db, conversation_id) -> list:
    return await db.fetch(
        "SELECT * FROM timeline_items WHERE conversation_id = $1 ORDER BY seq", conversation_id
    )


async def _dead_reason(prepared, topic: str, command_id: str) -> str:
    dead = await read_topic(prepared, dlq_topic(topic), lambda r: command_id.encode() in r.value)
    return dict(dead[0].headers)["dlq.reason"].decode()


async def _outbound(prepared, channel: str, conversation_id) -> list[OutboundMessage]:
    records = await read_topic(
        prepared, OUTBOUND_TOPICS[channel], lambda r: str(conversation_id).encode() in r.value
    )
    return [OutboundMessage.model_validate_json(r.value) for r in records]


async def test_a_customer_message_reopens_a_closed_conversation_as_unread(stack, producer, db):
    shop = await new_shop(producer, db)
    conversation = await open_conversation(producer, db, shop.shop_id)
    cid = conversation["conversation_id"]
    await producer.send_and_wait(INBOX_COMMANDS, command(shop.shop_id, cid, "reply", text="Hi!"))
    await producer.send_and_wait(
        INBOX_COMMANDS, command(shop.shop_id, cid, "set_status", status="closed")
    )
    await eventually(lambda: db.fetchval(
        "SELECT status = 'closed' AND NOT unread FROM conversations WHERE conversation_id = $1",
        cid,
    ))
    again = chat_message(shop.shop_id, conversation["thread_ref"], text="One more question")
    await producer.send_and_wait(CHAT_INBOUND, again)
    await eventually(lambda: db.fetchval(
        "SELECT status = 'open' AND unread FROM conversations WHERE conversation_id = $1", cid
    ))
    kinds = [i["kind"] for i in await _items(db, cid)]
    assert kinds == ["customer_message", "merchant_reply", "status_changed", "customer_message"]


@pytest.mark.parametrize("channel", ["messenger", "email", "instagram", "shop_app"])
async def test_a_reply_leaves_on_the_channel_the_customer_wrote_from(
    stack, producer, db, prepared, channel
):
    shop = await new_shop(producer, db)
    conversation = await open_conversation(
        producer, db, shop.shop_id, channel=channel, visitor_id=None
    )
    cid = conversation["conversation_id"]
    await producer.send_and_wait(
        INBOX_COMMANDS, command(shop.shop_id, cid, "reply", text="Thanks for writing!")
    )
    [sent] = await _outbound(prepared, channel, cid)
    assert (sent.channel, sent.content.text) == (channel, "Thanks for writing!")
    for other in OUTBOUND_TOPICS:
        if other != channel:
            assert await read_topic(
                prepared, OUTBOUND_TOPICS[other], lambda r: str(cid).encode() in r.value,
                timeout=0.5,
            ) == []


async def test_product_links_only_for_online_store_products(stack, producer, db, prepared):
    shop = await new_shop(producer, db)
    cid = (await open_conversation(producer, db, shop.shop_id))["conversation_id"]
    ok = command(shop.shop_id, cid, "reply", text="This one:", product_id="p-anorak")
    await producer.send_and_wait(INBOX_COMMANDS, ok)
    [sent] = await _outbound(prepared, "online_store_chat", cid)
    assert sent.content.product["title"] == "Fjord Rain Anorak"
    assert sent.content.product["url"].endswith("/products/anorak")

    refused = command(shop.shop_id, cid, "reply", product_id="p-wholesale-kit")
    await producer.send_and_wait(INBOX_COMMANDS, refused)
    reason = await _dead_reason(prepared, INBOX_COMMANDS, refused.command_id)
    assert "not available on the Online Store" in reason
    unknown = command(shop.shop_id, cid, "reply", product_id="p-nope")
    await producer.send_and_wait(INBOX_COMMANDS, unknown)
    assert "does not exist" in await _dead_reason(prepared, INBOX_COMMANDS, unknown.command_id)
    replies = await db.fetchval(
        "SELECT count(*) FROM messages WHERE conversation_id = $1 AND direction = 'outbound'", cid
    )
    assert replies == 1


async def test_discount_codes_only_when_they_exist_and_are_active(stack, producer, db, prepared):
    shop = await new_shop(producer, db)
    cid = (await open_conversation(producer, db, shop.shop_id))["conversation_id"]
    ok = command(shop.shop_id, cid, "reply", text="10% off:", discount_code="welcome10")
    await producer.send_and_wait(INBOX_COMMANDS, ok)
    [sent] = await _outbound(prepared, "online_store_chat", cid)
    assert sent.content.discount == {
        "code": "WELCOME10", "url": f"https://{shop.domain}/discount/WELCOME10"
    }
    expired = command(shop.shop_id, cid, "reply", discount_code="SUMMER25")
    unknown = command(shop.shop_id, cid, "reply", discount_code="FREESTUFF")
    for cmd in (expired, unknown):
        await producer.send_and_wait(INBOX_COMMANDS, cmd)
    assert "expired" in await _dead_reason(prepared, INBOX_COMMANDS, expired.command_id)
    assert "does not exist" in await _dead_reason(prepared, INBOX_COMMANDS, unknown.command_id)


async def test_customer_images_refused_in_store_chat_but_the_text_is_kept(
    stack, producer, db, prepared
):
    shop = await new_shop(producer, db)
    image = {"type": "image", "url": "https://cdn.example.com/photo.jpg"}
    conversation = await open_conversation(
        producer, db, shop.shop_id, text="Is this scratch normal?", attachments=[image]
    )
    cid = conversation["conversation_id"]
    items = await eventually(lambda: _items(db, cid))
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 2 FROM timeline_items WHERE conversation_id = $1", cid))
    items = await _items(db, cid)
    assert [(i["kind"], i["text"]) for i in items] == [
        ("customer_message", "Is this scratch normal?"),
        ("attachment_refused", IMAGE_REFUSED),
    ]
    assert items[0]["data"] == {}  # the image is not kept
    notices = await _outbound(prepared, "online_store_chat", cid)
    assert [(n.kind, n.content.text) for n in notices] == [("automated", IMAGE_REFUSED)]

    on_messenger = await open_conversation(
        producer, db, shop.shop_id, channel="messenger", attachments=[image], visitor_id=None
    )
    kept = await eventually(lambda: _items(db, on_messenger["conversation_id"]))
    assert kept[0]["data"]["attachments"][0]["url"] == image["url"]


def _cart_event(shop_id: str, visitor_id: str, action: str, title: str, items: list[dict],
                subtotal: str) -> dict:
    return {
        "event_id": unique("cart"), "shop_id": shop_id, "visitor_id": visitor_id,
        "action": action, "product": {"id": "p-x", "title": title, "price": "10.00"},
        "quantity": 1, "cart": {"currency": "EUR", "subtotal": subtotal, "items": items},
        "at": datetime.now(UTC).isoformat(),
    }


async def test_cart_events_on_the_timeline_name_only_short_products(stack, producer, db):
    from shared.contracts import CartEvent

    shop = await new_shop(producer, db)
    visitor = unique("visitor")
    conversation = await open_conversation(producer, db, shop.shop_id, visitor_id=visitor)
    title_40, title_41 = "A" * 40, "B" * 41
    item = {"product_id": "p-x", "title": title_40, "quantity": 2}
    for event in (
        _cart_event(shop.shop_id, visitor, "add", title_40, [item], "20.00"),
        _cart_event(shop.shop_id, visitor, "add", title_41, [item], "20.00"),
        _cart_event(shop.shop_id, visitor, "remove", title_40, [], "0.00"),
    ):
        await producer.send_and_wait(STOREFRONT_CART, CartEvent.model_validate(event))
    cid = conversation["conversation_id"]
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 4 FROM timeline_items WHERE conversation_id = $1", cid))
    texts = [i["text"] for i in await _items(db, cid) if i["kind"] == "cart_event"]
    assert texts == [
        f"added {title_40} to the cart",
        "added a product to the cart",
        f"removed {title_40} from the cart",
    ]
    cart = await db.fetchrow(
        "SELECT subtotal, items FROM carts WHERE shop_id = $1 AND visitor_id = $2",
        shop.shop_id, visitor,
    )
    assert cart["items"] == []  # the header follows the latest cart: empty, so no header


async def test_assignment_only_to_staff_with_the_chat_permission(stack, producer, db, prepared):
    shop = await new_shop(producer, db)
    cid = (await open_conversation(producer, db, shop.shop_id))["conversation_id"]
    refused = command(shop.shop_id, cid, "assign", assignee_staff_id="carla")
    await producer.send_and_wait(INBOX_COMMANDS, refused)
    assert "online store chat permission" in await _dead_reason(
        prepared, INBOX_COMMANDS, refused.command_id
    )
    await producer.send_and_wait(
        INBOX_COMMANDS, command(shop.shop_id, cid, "assign", assignee_staff_id="ben")
    )
    await eventually(lambda: db.fetchval(
        "SELECT assignee_staff_id = 'ben' FROM conversations WHERE conversation_id = $1", cid))
    unassign = command(shop.shop_id, cid, "unassign")
    await producer.send_and_wait(INBOX_COMMANDS, unassign)
    await eventually(lambda: db.fetchval(
        "SELECT assignee_staff_id IS NULL FROM conversations WHERE conversation_id = $1", cid))
    # Every timeline change is announced on the timeline topic too.
    item_id = await db.fetchval(
        "SELECT item_id FROM timeline_items WHERE conversation_id = $1 AND kind = 'unassigned'",
        cid,
    )
    [record] = await read_topic(prepared, INBOX_TIMELINE, lambda r: str(item_id).encode()
                                in r.value)
    assert TimelineItem.model_validate_json(record.value).kind == "unassigned"


async def test_subject_notes_and_mark_unread(stack, producer, db):
    shop = await new_shop(producer, db)
    conversation = await open_conversation(producer, db, shop.shop_id)
    cid = conversation["conversation_id"]
    for cmd in (
        command(shop.shop_id, cid, "reply", text="On it."),
        command(shop.shop_id, cid, "set_subject", subject="Sizing of the anorak"),
        command(shop.shop_id, cid, "add_note", text="Prefers email", staff_id="ben"),
        command(shop.shop_id, cid, "mark_unread"),
    ):
        await producer.send_and_wait(INBOX_COMMANDS, cmd)
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 5 FROM timeline_items WHERE conversation_id = $1", cid))
    row = await db.fetchrow("SELECT * FROM conversations WHERE conversation_id = $1", cid)
    assert (row["subject"], row["unread"]) == ("Sizing of the anorak", True)
    notes = await db.fetch(
        "SELECT customer_key, staff_id, text FROM customer_notes WHERE shop_id = $1",
        shop.shop_id,
    )
    assert [tuple(n) for n in notes] == [("email:maja@example.se", "ben", "Prefers email")]
    subject_item = next(i for i in await _items(db, cid) if i["kind"] == "subject_changed")
    assert "Sizing" not in str(dict(subject_item))  # the timeline never shows the subject


async def test_orders_are_kept_with_their_latest_status(stack, producer, db):
    from shared.contracts import OrderEvent

    shop = await new_shop(producer, db)
    order_id = unique("order")
    base = {"shop_id": shop.shop_id, "order_id": order_id, "order_number": "#1001",
            "customer": {"email": "Maja@Example.se", "name": "Maja Berg"},
            "total_price": "218.00", "currency": "EUR"}
    for kind in ("created", "shipped", "delivered"):
        event = OrderEvent.model_validate({**base, "event_id": unique("ord"), "type": kind,
                                           "at": datetime.now(UTC)})
        await producer.send_and_wait(ORDERS_EVENTS, event)
    row = await eventually(lambda: db.fetchrow(
        "SELECT * FROM orders WHERE shop_id = $1 AND status = 'delivered'", shop.shop_id))
    assert (row["order_number"], str(row["total_price"])) == ("#1001", "218.00")


async def test_topic_tags_keep_two_newest_first(stack, producer, db):
    from shared.contracts import TopicTag
    from shared.topics import CLASSIFIER_TAGS

    shop = await new_shop(producer, db)
    cid = (await open_conversation(producer, db, shop.shop_id))["conversation_id"]
    for topic in ("shipping", "returns", "checkout", "returns"):
        await producer.send_and_wait(CLASSIFIER_TAGS, TopicTag(
            event_id=unique("tag"), shop_id=shop.shop_id, conversation_id=str(cid),
            message_id=unique("msg"), topic=topic, probability=0.97, model_version="test",
            at=datetime.now(UTC),
        ))
    await eventually(lambda: db.fetchval(
        "SELECT topics = ARRAY['returns', 'checkout'] FROM conversations "
        "WHERE conversation_id = $1", cid))
