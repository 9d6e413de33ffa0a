"""Builders the tests share."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from inbox.demo import DemoShop, demo_shop, publish
from shared.contracts import ChatInbound
from shared.kafka.producer import EventProducer
from tests.conftest import eventually


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def new_shop(producer: EventProducer, db: asyncpg.Pool) -> DemoShop:
    """A shop of the test's own, known to the router before the test goes on."""
    shop = demo_shop(unique("shop"), token_seed=uuid.uuid4().hex)
    await publish(producer, shop)

    async def ready() -> bool:
        return bool(await db.fetchval(
            "SELECT count(*) = 3 FROM staff WHERE shop_id = $1", shop.shop_id
        )) and bool(await db.fetchval("SELECT 1 FROM shops WHERE shop_id = $1", shop.shop_id))

    await eventually(ready)
    return shop


def chat_message(shop_id: str, thread_ref: str | None = None, **overrides: Any) -> ChatInbound:
    fields: dict[str, Any] = {
        "event_id": unique("evt"),
        "shop_id": shop_id,
        "channel": "online_store_chat",
        "thread_ref": thread_ref or unique("thread"),
        "text": "Hi! Do you ship the anorak to Sweden?",
        "sent_at": datetime.now(UTC),
        "customer": {"email": "maja@example.se", "name": "Maja Berg"},
        "visitor_id": unique("visitor"),
    }
    fields.update(overrides)
    return ChatInbound.model_validate(fields)
