"""The classifier through the real stack: customer messages in, tags out, the conversation
keeps two topics, newest first."""

from __future__ import annotations

import asyncio
import re

import httpx

from shared.contracts import TopicTag
from shared.topics import CHAT_INBOUND, CLASSIFIER_TAGS
from tests.conftest import eventually, read_topic
from tests.helpers import chat_message, new_shop, open_conversation


async def _topics(db, conversation_id) -> list[str]:
    return list(await db.fetchval(
        "SELECT topics FROM conversations WHERE conversation_id = $1", conversation_id))


async def test_messages_are_tagged_and_the_conversation_keeps_two_topics(
    stack, producer, db, prepared
):
    shop = await new_shop(producer, db)
    conversation = await open_conversation(
        producer, db, shop.shop_id,
        text="Where is my order #1043? It still hasn't arrived and tracking shows nothing.")
    cid = conversation["conversation_id"]
    await eventually(lambda: _topics(db, cid), timeout=30)
    assert await _topics(db, cid) == ["order_status"]

    for text in (
        "Hej! Kan ni skicka till Norge och vad kostar frakten?",  # shipping, in Swedish
        "thanks!",  # no topic: no tag
        "Quisiera devolver las zapatillas, me quedan pequeñas. ¿Cómo hago la devolución?",
    ):
        await producer.send_and_wait(
            CHAT_INBOUND, chat_message(shop.shop_id, conversation["thread_ref"], text=text))
        await asyncio.sleep(0.3)  # one at a time, so "newest" is well defined
    await eventually(lambda: _is(db, cid, ["returns", "shipping"]), timeout=30)
    if prepared.kafka.transactions:  # the tags left in Kafka transactions, which committed
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{stack['classifier'].url}/metrics")).text
        assert re.search(r'^inbox_kafka_transactions_total\{outcome="committed",'
                         r'topic="inbox.timeline"\} [1-9]', text, re.MULTILINE), text[-2000:]

    tags = await read_topic(prepared, CLASSIFIER_TAGS, lambda r: str(cid).encode() in r.value,
                            expected=3)
    decoded = [TopicTag.model_validate_json(t.value) for t in tags]
    assert sorted(t.topic for t in decoded) == ["order_status", "returns", "shipping"]
    assert all(t.probability >= 0.9 and t.model_version for t in decoded)


async def _is(db, cid, expected: list[str]) -> bool:
    return await _topics(db, cid) == expected


async def test_the_model_version_is_visible_in_metrics(stack):
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{stack['classifier'].url}/metrics")).text
    assert 'classifier_model_info{version="' in text
