"""Builders the tests share."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from inbox.demo import DemoShop, demo_shop, publish, shop_stored_in
from shared.contracts import ChatInbound
from shared.kafka.producer import EventProducer
from tests.conftest import eventually


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def new_shop(
    producer: EventProducer, db: asyncpg.Pool, with_passwords: bool = False,
    demo_storefront_of: str | None = None, timezone: str = "Europe/Berlin",
) -> DemoShop:
    """A shop of the test's own (in `timezone`), known to the router before the test goes on.
    With passwords,
    its staff have addresses of their own too (they sign in with them). With
    `demo_storefront_of` (a gateway's address), its Online Store is that gateway's demo
    storefront, as in development."""
    shop_id = unique("shop")
    store = f"{demo_storefront_of}/storefront/demo/{shop_id}" if demo_storefront_of else None
    shop = demo_shop(shop_id, token_seed=uuid.uuid4().hex, with_passwords=with_passwords,
                     storefront_url=store, timezone=timezone,
                     **({"email_domain": f"{shop_id}.example"} if with_passwords else {}))
    await publish(producer, shop, shop_stored_in(db, shop.shop_id))

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


def command(shop_id: str, conversation_id: Any, type: str, staff_id: str = "ava", **fields: Any):
    """A merchant command of the given type, with a fresh command_id."""
    from shared.contracts import INBOX_COMMAND

    return INBOX_COMMAND.validate_python({
        "command_id": unique("cmd"), "shop_id": shop_id, "conversation_id": str(conversation_id),
        "staff_id": staff_id, "type": type, **fields,
    })


async def open_conversation(producer: EventProducer, db: asyncpg.Pool, shop_id: str,
                            **overrides: Any) -> asyncpg.Record:
    """Send a customer message and return its conversation once the router stored it."""
    from shared.topics import CHAT_INBOUND

    message = chat_message(shop_id, **overrides)
    await producer.send_and_wait(CHAT_INBOUND, message)
    return await eventually(lambda: db.fetchrow(
        "SELECT * FROM conversations WHERE shop_id = $1 AND channel = $2 AND thread_ref = $3",
        shop_id, message.channel, message.thread_ref,
    ))


def register_all_metrics() -> None:
    """Import every service module, so that every metric the project defines is registered."""
    import importlib
    import pkgutil

    import services

    for module in pkgutil.walk_packages(services.__path__, "services."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    importlib.import_module("shared.metrics")
