"""A corpus of malformed events for every ingress topic: each lands in `<topic>.dlq` with a
reason, the consumer keeps going, and the valid events around them are not lost. Shop data that
clashes with other records is rejected with the reason, not retried."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.contracts import DiscountUpserted, StaffUpserted
from shared.topics import (
    CHAT_INBOUND,
    INBOX_COMMANDS,
    ORDERS_EVENTS,
    SHOP_DISCOUNTS,
    SHOP_STAFF,
    STOREFRONT_ACTIVITY,
    STOREFRONT_CART,
    dlq_topic,
)
from tests.conftest import eventually, read_topic
from tests.helpers import command, new_shop, open_conversation, unique

NOW = datetime.now(UTC)


def _chat(shop: str, marker: str) -> dict[str, Any]:
    return {"event_id": unique("evt"), "shop_id": shop, "channel": "online_store_chat",
            "thread_ref": f"t-{marker}", "text": f"valid {marker}", "sent_at": NOW.isoformat()}


def _cart(shop: str, marker: str) -> dict[str, Any]:
    return {"event_id": unique("cart"), "shop_id": shop, "visitor_id": f"v-{marker}",
            "action": "add", "product": {"id": "p-anorak", "title": "Anorak", "price": "189.00"},
            "quantity": 1, "cart": {"currency": "EUR", "subtotal": "189.00", "items": [
                {"product_id": "p-anorak", "title": "Anorak", "quantity": 1}]},
            "at": NOW.isoformat()}


def _activity(shop: str, marker: str) -> dict[str, Any]:
    return {"event_id": unique("act"), "shop_id": shop, "visitor_id": f"v-{marker}",
            "type": "heartbeat", "at": NOW.isoformat()}


def _order(shop: str, marker: str) -> dict[str, Any]:
    return {"event_id": unique("ord"), "shop_id": shop, "order_id": f"o-{marker}",
            "order_number": "#1", "type": "created", "at": NOW.isoformat()}


def _command(shop: str, marker: str, conversation_id: str) -> dict[str, Any]:
    return {"command_id": unique("cmd"), "shop_id": shop, "conversation_id": conversation_id,
            "staff_id": "ava", "type": "reply", "text": f"valid {marker}"}


def corpus(valid: dict[str, Any], time_field: str | None, marker: str) -> dict[str, bytes]:
    """Malformed variants of one valid event, each carrying `marker` to be found again."""

    def variant(change: Callable[[dict[str, Any]], None]) -> bytes:
        event = json.loads(json.dumps(valid))
        event["marker"] = marker
        change(event)
        return json.dumps(event).encode()

    first_field = next(iter(valid))
    required = [k for k in valid if k not in ("marker",)]
    cases = {
        "bad json": b'{"event_id": "' + marker.encode() + b'", "shop_id": ',
        "invalid utf-8": b'{"event_id": "\xff\xfe' + marker.encode() + b'"}',
        "not an object": json.dumps([marker]).encode(),
        "missing field": variant(lambda e: e.pop(required[2])),
        "wrong type": variant(lambda e: e.update({required[2]: {"nested": [1, 2]}})),
        "null id": variant(lambda e: e.update({first_field: None})),
        "huge": variant(lambda e: e.update({"padding": "x" * 300_000})),
        "bad shop id": variant(lambda e: e.update({"shop_id": "not a shop id!"})),
    }
    if time_field:
        cases["future"] = variant(
            lambda e: e.update({time_field: (NOW + timedelta(days=2)).isoformat()}))
        cases["ancient"] = variant(lambda e: e.update({time_field: "1999-01-01T00:00:00Z"}))
        cases["no offset"] = variant(lambda e: e.update({time_field: "2026-11-22 10:00:00"}))
    return cases


TOPICS = {
    CHAT_INBOUND: (_chat, "sent_at"),
    STOREFRONT_CART: (_cart, "at"),
    STOREFRONT_ACTIVITY: (_activity, "at"),
    ORDERS_EVENTS: (_order, "at"),
    INBOX_COMMANDS: (None, None),
}


async def _processed(topic: str, db, shop: str, marker: str) -> bool:
    where = {
        CHAT_INBOUND: ("messages", "text = 'valid ' || $2"),
        STOREFRONT_CART: ("carts", "visitor_id = 'v-' || $2"),
        STOREFRONT_ACTIVITY: ("visitors", "visitor_id = 'v-' || $2"),
        ORDERS_EVENTS: ("orders", "order_id = 'o-' || $2"),
        INBOX_COMMANDS: ("messages", "text = 'valid ' || $2"),
    }
    table, condition = where[topic]
    sql = f"SELECT count(*) FROM {table} WHERE shop_id = $1 AND {condition}"
    return await db.fetchval(sql, shop, marker) == 1


@pytest.mark.parametrize("topic", list(TOPICS))
async def test_malformed_events_go_to_the_dlq_and_nothing_valid_is_lost(
    topic, stack, producer, db, prepared
):
    shop = await new_shop(producer, db)
    build, time_field = TOPICS[topic]
    if topic == INBOX_COMMANDS:
        conversation = await open_conversation(producer, db, shop.shop_id)
        cid = str(conversation["conversation_id"])

        def build(s: str, m: str) -> dict[str, Any]:
            return _command(s, m, cid)

    marker = unique("poison")
    cases = corpus(build(shop.shop_id, marker), time_field, marker)
    if topic == CHAT_INBOUND:
        cases["unknown channel"] = json.dumps(
            {**build(shop.shop_id, marker), "channel": "fax", "marker": marker}).encode()
    cases["unknown shop"] = json.dumps(
        {**build(unique("no-such-shop"), marker), "marker": marker}).encode()

    before, after = unique("before"), unique("after")
    await (await producer.send_raw(topic, json.dumps(build(shop.shop_id, before)).encode(),
                                   shop.shop_id))
    for value in cases.values():
        await (await producer.send_raw(topic, value, shop.shop_id))
    await (await producer.send_raw(topic, json.dumps(build(shop.shop_id, after)).encode(),
                                   shop.shop_id))

    await eventually(lambda: _processed(topic, db, shop.shop_id, before), timeout=30)
    await eventually(lambda: _processed(topic, db, shop.shop_id, after), timeout=30)
    dead = await read_topic(prepared, dlq_topic(topic), lambda r: marker.encode() in r.value,
                            expected=len(cases), timeout=30)
    reasons = {r.value: dict(r.headers) for r in dead}
    missing = [name for name, value in cases.items()
               if value[:100_000] not in {v[:100_000] for v in reasons}]
    assert missing == [], f"not dead-lettered: {missing}"
    for headers in reasons.values():
        assert headers["dlq.reason"] and headers["dlq.topic"].decode() == topic
    print(f"{topic}: {len(cases)} malformed events, each dead-lettered with its reason")


async def test_shop_data_breaking_a_unique_constraint_is_rejected_with_its_reason(
    stack, producer, db, prepared
):
    """Two staff members with one token hash, or a discount code again in another letter case:
    retrying cannot help, so the record is `rejected` at once with what it clashes with (never
    `failed` after retries), and the shop data around it is applied."""
    shop = await new_shop(producer, db)
    now = datetime.now(UTC)
    ava_hash = await db.fetchval(
        "SELECT token_sha256 FROM staff WHERE shop_id = $1 AND staff_id = 'ava'", shop.shop_id)
    twin = StaffUpserted(event_id=unique("staff"), shop_id=shop.shop_id, staff_id="eve",
                         name="Eve", email="eve@example.com", token_sha256=ava_hash, at=now)
    after = StaffUpserted(event_id=unique("staff"), shop_id=shop.shop_id, staff_id="finn",
                          name="Finn", email="finn@example.com", at=now)
    folded = DiscountUpserted(event_id=unique("discount"), shop_id=shop.shop_id,
                              code="welcome10", status="active", at=now)
    await producer.send_and_wait(SHOP_STAFF, twin)
    await producer.send_and_wait(SHOP_STAFF, after)
    await producer.send_and_wait(SHOP_DISCOUNTS, folded)

    await eventually(lambda: db.fetchval(
        "SELECT 1 FROM staff WHERE shop_id = $1 AND staff_id = 'finn'", shop.shop_id))
    for topic, event, says in ((SHOP_STAFF, twin, "another staff member already has this API "
                                "token"),
                               (SHOP_DISCOUNTS, folded, "discount code in another letter case")):
        [dead] = await read_topic(prepared, dlq_topic(topic),
                                  lambda r, e=event: e.event_id.encode() in r.value, timeout=30)
        headers = dict(dead.headers)
        assert headers["dlq.kind"] == b"rejected", headers
        assert says in headers["dlq.reason"].decode(), headers
        assert ava_hash.encode() not in headers["dlq.reason"]  # no token hash in the reason
    assert await db.fetchval(
        "SELECT count(*) FROM staff WHERE shop_id = $1 AND staff_id = 'eve'", shop.shop_id) == 0
    assert await db.fetchval(  # ava keeps her token
        "SELECT token_sha256 FROM staff WHERE shop_id = $1 AND staff_id = 'ava'",
        shop.shop_id) == ava_hash


async def test_a_delivery_that_cannot_be_read_fails_with_the_reason_and_stops_nothing(
    stack, producer, db
):
    shop = await new_shop(producer, db)
    conversation_id = str((await open_conversation(producer, db, shop.shop_id))[
        "conversation_id"])
    broken = unique("broken-delivery")
    # A row no notifier could send (corrupt, or its customer's data erased meanwhile).
    await db.execute(
        """INSERT INTO deliveries (message_id, shop_id, conversation_id, channel, payload)
           VALUES ($1, $2, $3, 'online_store_chat', '{}')""",
        broken, shop.shop_id, unique("elsewhere"))
    row = await eventually(lambda: db.fetchrow(
        "SELECT status, last_error FROM deliveries WHERE message_id = $1 AND status = 'failed'",
        broken))
    assert row["last_error"].startswith("the stored message cannot be read")
    # The deliveries after it go out as ever.
    reply = command(shop.shop_id, conversation_id, "reply", text="Still delivering")
    await producer.send_and_wait(INBOX_COMMANDS, reply)
    await eventually(lambda: db.fetchval(
        """SELECT 1 FROM messages WHERE conversation_id = $1::uuid AND author = 'staff'
           AND delivery_status IN ('sent', 'held')""", conversation_id), timeout=30)
