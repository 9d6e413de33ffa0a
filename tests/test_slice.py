"""The first end-to-end slice through the real stack: a customer message becomes a conversation,
the merchant answers through the API, the answer is delivered on the originating channel.

It runs on the session's broker (Apache Kafka) and again on Tansu, the pip-only fallback, with
a database of its own, so that path stays honest."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from inbox.dev.broker import start_broker
from shared.config import DatabaseSettings, KafkaSettings, Settings
from shared.contracts import DeliveryResult, OutboundMessage, TimelineItem
from shared.db.migrate import migrate_database
from shared.db.pool import create_pool
from shared.kafka.admin import ensure_topics
from shared.kafka.producer import EventProducer
from shared.topics import CHAT_INBOUND, DELIVERY_RESULTS, INBOX_TIMELINE, OUTBOUND_TOPICS
from tests.conftest import GraphApiStandIn, SmtpCatcher, backbone, eventually, read_topic
from tests.helpers import chat_message, new_shop


@pytest.fixture(scope="module")
async def on_tansu(database_url: str, workdir: Path, smtp: SmtpCatcher,
                   graph_api: GraphApiStandIn) -> AsyncIterator[dict[str, Any]]:
    """The backbone on a Tansu broker and a database of its own (the session's services must
    not claim its deliveries)."""
    here = workdir / "tansu"
    here.mkdir(exist_ok=True)
    broker = start_broker(here / "broker.log", kind="tansu")
    base, _, _ = database_url.rpartition("/")
    admin = await asyncpg.connect(database_url)
    await admin.execute("CREATE DATABASE inbox_on_tansu")
    await admin.close()
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers,
                            **broker.client_settings, topic_partitions=4),
        database=DatabaseSettings(url=f"{base}/inbox_on_tansu"))
    await migrate_database(settings.database.url)
    await ensure_topics(settings)
    services = backbone(settings, here, smtp.url, graph_api.url)
    pool = await create_pool(settings, min_size=1, max_size=3)
    producer = EventProducer(settings, "tests-tansu")
    try:
        await producer.start()
        for service in services.values():
            service.start()
        for service in services.values():
            await service.wait_ready()
        yield {"stack": services, "producer": producer, "db": pool, "prepared": settings}
    finally:
        for service in services.values():
            if service.process and service.process.poll() is None:
                service.terminate()
        with contextlib.suppress(Exception):
            await producer.stop()
        await pool.close()
        broker.stop()


@pytest.fixture(params=["kafka", "tansu"])
def on_broker(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "tansu":
        return request.getfixturevalue("on_tansu")
    return {name: request.getfixturevalue(name)
            for name in ("stack", "producer", "db", "prepared")}


async def test_customer_message_to_delivered_reply(on_broker):
    stack, producer, db, prepared = (on_broker[k] for k in ("stack", "producer", "db", "prepared"))
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
