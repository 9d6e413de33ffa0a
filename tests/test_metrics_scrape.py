"""After real traffic, every running service's /metrics shows the documented metrics with
sensible values."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.contracts import ActivityEvent
from shared.topics import INBOX_COMMANDS, STOREFRONT_ACTIVITY
from tests.conftest import eventually
from tests.helpers import command, new_shop, open_conversation, unique

DOC = (Path(__file__).resolve().parent.parent / "deploy" / "METRICS.md").read_text()
DOCUMENTED = set(re.findall(r"^\| `([a-z_]+)` \|", DOC, flags=re.MULTILINE))


async def _samples(url: str) -> dict[tuple[str, frozenset], float]:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics")).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def test_metrics_after_traffic(stack, producer, db):
    shop = await new_shop(producer, db)
    visitor = unique("visitor")
    conversation = await open_conversation(
        producer, db, shop.shop_id, visitor_id=visitor,
        text="Where is my order #1001? It has not arrived yet.")
    await producer.send_and_wait(STOREFRONT_ACTIVITY, ActivityEvent(
        event_id=unique("act"), shop_id=shop.shop_id, visitor_id=visitor, type="heartbeat",
        at=datetime.now(UTC)))
    await producer.send_and_wait(INBOX_COMMANDS, command(
        shop.shop_id, conversation["conversation_id"], "reply", text="Let me check!"))
    await eventually(lambda: db.fetchval(
        "SELECT delivery_status = 'sent' FROM messages WHERE conversation_id = $1 "
        "AND text = 'Let me check!'", conversation["conversation_id"]), timeout=30)

    scraped = {name: await _samples(stack[name].url) for name in stack}
    for name, samples in scraped.items():
        ours = {n for n, _ in samples if n.startswith(("inbox_", name + "_"))}
        base = {re.sub(r"_(bucket|sum|count|created)$", "", n) for n in ours}
        undocumented = {n for n in base if n not in DOCUMENTED and n + "_total" not in DOCUMENTED}
        assert not undocumented, (name, undocumented)
        assert _value(samples, "inbox_db_pool_connections", state="max") > 0, name

    router, notifier = scraped["router"], scraped["notifier"]
    assert _value(router, "router_customer_messages_total", channel="online_store_chat") >= 1
    assert _value(router, "inbox_events_consumed_total", topic="chat.inbound") >= 1
    assert _value(router, "inbox_events_processed_total", topic="chat.inbound",
                  outcome="applied") >= 1
    assert _value(router, "inbox_handle_duration_seconds_count", topic="chat.inbound") >= 1
    assert _value(router, "router_replies_total", channel="online_store_chat") >= 1
    assert _value(router, "inbox_outbox_published_total", topic="inbox.timeline") >= 1
    assert _value(notifier, "notifier_deliveries_total", channel="online_store_chat",
                  result="sent") >= 1
    assert _value(scraped["presence"], "presence_changes_total", online="true") >= 1
    classifier = scraped["classifier"]
    assert _value(classifier, "classifier_model_info") == 1
    assert _value(classifier, "classifier_probability_count") >= 1
    lag = [v for (n, _), v in router.items() if n == "inbox_consumer_lag_messages"]
    assert lag and all(v >= 0 for v in lag)
