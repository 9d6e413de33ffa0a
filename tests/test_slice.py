"""The first end-to-end slice through the real stack: a customer message becomes a conversation,
the merchant answers through the API, the answer is delivered on the originating channel."""

from __future__ import annotations

import httpx

from shared.contracts import DeliveryResult, OutboundMessage, TimelineItem
from shared.topics import CHAT_INBOUND, DELIVERY_RESULTS, INBOX_TIMELINE, OUTBOUND_TOPICS
from tests.conftest import eventually, read_topic
from tests.helpers import chat_message, new_shop


async def test_customer_message_to_delivered_reply(stack, producer, db, prepared):
    shop = await new_shop(producer, db)
    message = chat_message(shop.shop_id)
    await producer.send_and_wait(CHAT_INBOUND, message)

    conversation = await eventually(lambda: db.fetchrow(
        "SELECT * FROM conversations WHERE shop_id = $1 AND thread_ref = $2",
        shop.shop_id, message.thread_ref,
    ))
    assert conversation["channel"] == "online_store_chat"
    assert conversation["customer_email"] == "maja@example.se"
    assert conversation["status"] == "open" and conversation["unread"]
    stored = await db.fetch(
        "SELECT text FROM messages WHERE conversation_id = $1", conversation["conversation_id"]
    )
    assert [r["text"] for r in stored] == [message.text]

    conversation_id = str(conversation["conversation_id"])
    timeline = await read_topic(
        prepared, INBOX_TIMELINE, lambda r: conversation_id.encode() in r.value
    )
    item = TimelineItem.model_validate_json(timeline[0].value)
    assert (item.kind, item.text, item.seq) == ("customer_message", message.text, 1)

    gateway = stack["gateway"].url
    headers = {"Authorization": f"Bearer {shop.tokens['ava']}"}
    async with httpx.AsyncClient(base_url=gateway, headers=headers) as api:
        listed = (await api.get("/api/v1/conversations")).json()
        assert [c["conversation_id"] for c in listed["items"]] == [conversation_id]
        response = await api.post(
            f"/api/v1/conversations/{conversation_id}/replies",
            json={"text": "Yes, we ship to Sweden in 2-3 days."},
        )
        assert response.status_code == 202, response.text

        async def delivered() -> dict | None:
            detail = (await api.get(f"/api/v1/conversations/{conversation_id}")).json()
            replies = [i for i in detail["timeline"] if i["kind"] == "merchant_reply"]
            return replies[0] if replies and replies[0]["delivery_status"] == "sent" else None

        reply = await eventually(delivered)
    assert reply["text"] == "Yes, we ship to Sweden in 2-3 days."

    outbound = await read_topic(
        prepared,
        OUTBOUND_TOPICS["online_store_chat"],
        lambda r: conversation_id.encode() in r.value,
    )
    sent = OutboundMessage.model_validate_json(outbound[0].value)
    assert sent.recipient.thread_ref == message.thread_ref
    assert sent.content.text == "Yes, we ship to Sweden in 2-3 days."
    results = await read_topic(
        prepared, DELIVERY_RESULTS, lambda r: sent.message_id.encode() in r.value
    )
    assert DeliveryResult.model_validate_json(results[0].value).status == "sent"
    # The customer's chat widget now holds the reply.
    widget = await db.fetch(
        "SELECT content FROM storefront_chat_messages WHERE shop_id = $1 AND thread_ref = $2",
        shop.shop_id, message.thread_ref,
    )
    assert [w["content"]["text"] for w in widget] == ["Yes, we ship to Sweden in 2-3 days."]


async def test_api_requires_a_valid_token(stack):
    async with httpx.AsyncClient(base_url=stack["gateway"].url) as api:
        assert (await api.get("/api/v1/conversations")).status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert (await api.get("/api/v1/conversations", headers=bad)).status_code == 401
