"""Bounded retention: the topics' configs on the real broker, and the bookkeeping tables pruned
by age (old rows go, recent ones and those still needed stay)."""

from __future__ import annotations

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from prometheus_client import REGISTRY

from inbox.dev.broker import Broker
from shared.config import KafkaSettings, Settings
from shared.db.pruning import RULES, TABLES, Pruner, keep_seconds, rules_for
from shared.kafka.admin import ensure_topics
from shared.kafka.client import connection_options
from shared.topics import (
    SHOP_SHOPS,
    TOPICS,
    Retention,
    all_topic_names,
    dlq_topic,
    record_lifetime_ms,
    retention_of,
    topic_configs,
)
from tests.conftest import ServiceProcess, eventually
from tests.helpers import unique

DAY_MS = 24 * 3600 * 1000
SHOP_TOPICS = {"shop.shops", "shop.staff", "shop.products", "shop.discounts"}


# --- the rules, without I/O -------------------------------------------------------------------

@pytest.mark.parametrize("name", all_topic_names())
def test_every_topic_has_its_retention_class(name):
    compacted = name in SHOP_TOPICS  # shop data; every DLQ and every other topic: customer data
    assert retention_of(name) is (Retention.SHOP_DATA if compacted else Retention.CUSTOMER_DATA)
    configs = topic_configs(name, 7 * DAY_MS)
    if compacted:
        assert configs["cleanup.policy"] == "compact"
        assert configs["max.compaction.lag.ms"] == str(7 * DAY_MS)
        assert "retention.ms" not in configs
    else:
        assert configs == {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS),
                           "segment.ms": str(DAY_MS)}


def test_the_customer_data_topics_named_in_the_issue_are_bounded():
    for name in ["chat.inbound", "storefront.cart", "storefront.activity", "orders.events",
                 "inbox.commands", "inbox.timeline", "messenger.events", "delivery.results",
                 "classifier.tags", "presence.changes", "outbound.email", "outbound.messenger",
                 dlq_topic("shop.staff"), dlq_topic("chat.inbound")]:
        assert name in all_topic_names()
        assert retention_of(name) is Retention.CUSTOMER_DATA, name
    assert {n for n, t in TOPICS.items() if t.retention is Retention.SHOP_DATA} == SHOP_TOPICS


def test_the_default_retention_is_seven_days():
    assert KafkaSettings().customer_data_retention_ms == 7 * DAY_MS


@pytest.mark.parametrize("retention_ms", [60_000, 3_600_000, DAY_MS, 7 * DAY_MS, 30 * DAY_MS])
def test_an_idempotency_record_outlives_every_copy_of_its_event(retention_ms):
    lifetime = record_lifetime_ms(retention_ms)
    assert lifetime > retention_ms
    # a record waits at most one segment past its retention, and the segment is never longer
    assert lifetime <= retention_ms + min(retention_ms, DAY_MS) + 5 * 60 * 1000
    assert keep_seconds(retention_ms) * 1000 > lifetime


def test_every_table_pruned_is_counted_under_a_known_label():
    assert {r.name for r in RULES} <= set(TABLES)
    assert {r.name for r in rules_for("notifier")} == {"processed_events", "deliveries"}
    assert {r.name for r in rules_for("gateway")} == {"processed_events"}


# --- the topics on the broker -----------------------------------------------------------------

async def described(settings: Settings, names: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(**connection_options(settings, "tests-admin"))
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        await admin.close()
    return {name: {e[0]: e[1] for e in entries}
            for response in responses for _code, _msg, _type, name, entries in response.resources}


async def alter(settings: Settings, name: str, configs: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(**connection_options(settings, "tests-admin"))
    await admin.start()
    try:
        (response,) = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs)])
        assert [r[0] for r in response.resources] == [0], response
    finally:
        await admin.close()


async def test_topics_are_created_with_their_retention(prepared: Settings):
    configs = await described(prepared, all_topic_names())
    retention = str(prepared.kafka.customer_data_retention_ms)
    for name in all_topic_names():
        got = configs[name]
        if name in SHOP_TOPICS:
            assert got["cleanup.policy"] == "compact", name
        else:
            assert (got["cleanup.policy"], got["retention.ms"]) == ("delete", retention), name


async def test_a_topic_created_before_the_change_is_brought_to_its_configs(
        prepared: Settings, kafka_broker: Broker):
    retention = 3 * DAY_MS
    settings = prepared.model_copy(update={"kafka": prepared.kafka.model_copy(
        update={"customer_data_retention_ms": retention})})
    legacy = unique("legacy.topic")
    admin = AIOKafkaAdminClient(**connection_options(prepared, "tests-admin"))
    await admin.start()
    try:
        # created as before this change: the broker's defaults, and one value an operator set
        await admin.create_topics([NewTopic(legacy, 1, 1,
                                            topic_configs={"max.message.bytes": "500000"})])
    finally:
        await admin.close()

    if kafka_broker.kind == "tansu":
        # Tansu can neither describe nor alter configs the same way: the start goes on anyway.
        assert await ensure_topics(settings, [legacy]) == []
        return

    async def shows(name: str, key: str, value: str) -> dict[str, dict[str, str]] | None:
        # an altered config reaches the broker that describes it moments later (KRaft)
        configs = await described(prepared, [name, legacy, SHOP_SHOPS])
        return configs if configs[name].get(key) == value else None

    await alter(prepared, SHOP_SHOPS, {"cleanup.policy": "delete"})  # as before this change
    await eventually(lambda: shows(SHOP_SHOPS, "cleanup.policy", "delete"))

    assert await ensure_topics(settings, [legacy, SHOP_SHOPS]) == []  # nothing created
    await eventually(lambda: shows(legacy, "retention.ms", str(retention)))
    configs = await eventually(lambda: shows(SHOP_SHOPS, "cleanup.policy", "compact"))
    assert configs[legacy]["cleanup.policy"] == "delete"
    assert configs[legacy]["retention.ms"] == str(retention)
    assert configs[legacy]["segment.ms"] == str(DAY_MS)
    assert configs[legacy]["max.message.bytes"] == "500000"  # the operator's value stays
    assert configs[SHOP_SHOPS]["cleanup.policy"] == "compact"
    assert configs[SHOP_SHOPS]["max.compaction.lag.ms"] == str(retention)

    await ensure_topics(prepared, [SHOP_SHOPS])  # back to the session's settings
    await eventually(lambda: shows(SHOP_SHOPS, "max.compaction.lag.ms",
                                   str(prepared.kafka.customer_data_retention_ms)))


# --- the bookkeeping tables -------------------------------------------------------------------

def pruned(table: str) -> float:
    return REGISTRY.get_sample_value("inbox_pruned_rows_total", {"table": table}) or 0.0


async def test_old_idempotency_records_go_and_recent_ones_stay(db, prepared: Settings):
    keep = keep_seconds(prepared.kafka.customer_data_retention_ms)
    consumer = unique("consumer")
    await db.execute(
        """INSERT INTO processed_events (consumer, event_id, processed_at)
           SELECT $1, 'old-' || i, now() - make_interval(secs => $2 + 3600 + i)
           FROM generate_series(1, 7) i
           UNION ALL
           SELECT $1, 'recent-' || i, now() - make_interval(secs => $2 - 3600)
           FROM generate_series(1, 3) i""",
        consumer, keep)
    before = pruned("processed_events")

    removed = await Pruner(db, rules_for("router"), keep, batch=2).prune()  # in 4 batches

    assert removed["processed_events"] >= 7
    left = await db.fetch("SELECT event_id FROM processed_events WHERE consumer = $1", consumer)
    assert sorted(r["event_id"] for r in left) == ["recent-1", "recent-2", "recent-3"]
    assert pruned("processed_events") - before >= 7


async def test_finished_deliveries_go_with_their_attempts_and_what_is_needed_stays(
        db, prepared: Settings):
    keep = keep_seconds(prepared.kafka.customer_data_retention_ms)
    conversation = unique("conversation")
    old, recent = keep + 3600, keep - 3600
    rows = [  # (message_id, channel, status, age in seconds)
        ("chat-sent-old", "online_store_chat", "sent", old),
        ("chat-failed-old", "online_store_chat", "failed", old),
        ("email-sent-old", "email", "sent", old + 60),
        ("email-sent-newest", "email", "sent", old),  # a late answer finds its conversation
        ("chat-pending-old", "online_store_chat", "pending", old),  # not finished: never touched
        ("chat-sent-recent", "online_store_chat", "sent", recent),
    ]
    ids = {r[0]: unique(r[0]) for r in rows}
    for message_id, channel, status, age in rows:
        await db.execute(
            # Due only in a day: the session's running notifier leaves these rows alone.
            """INSERT INTO deliveries (message_id, shop_id, conversation_id, channel, payload,
                                       status, created_at, updated_at, next_attempt_at)
               VALUES ($1, 'shop-retention', $2, $3, '{}', $4,
                       now() - make_interval(secs => $5), now() - make_interval(secs => $5),
                       now() + interval '1 day')""",
            ids[message_id], conversation, channel, status, float(age))
        await db.execute(
            """INSERT INTO delivery_attempts (message_id, attempt, started_at, finished_at, result)
               VALUES ($1, 1, now() - make_interval(secs => $2),
                       now() - make_interval(secs => $2), 'sent')""",
            ids[message_id], float(age))
    before = pruned("delivery_attempts")

    removed = await Pruner(db, rules_for("notifier"), keep, batch=1).prune()

    assert removed["deliveries"] >= 3 and removed["delivery_attempts"] >= 3
    left = {r["message_id"] for r in await db.fetch(
        "SELECT message_id FROM deliveries WHERE conversation_id = $1", conversation)}
    assert left == {ids["email-sent-newest"], ids["chat-pending-old"], ids["chat-sent-recent"]}
    attempts = {r["message_id"] for r in await db.fetch(
        "SELECT message_id FROM delivery_attempts WHERE message_id = ANY($1::text[])",
        list(ids.values()))}
    assert attempts == left
    assert pruned("delivery_attempts") - before >= 3


async def test_visitors_long_offline_go_and_the_others_stay(db, prepared: Settings):
    keep = keep_seconds(prepared.kafka.customer_data_retention_ms)
    shop = unique("shop")
    visitors = [("gone", False, keep + 3600), ("online", True, keep + 3600),
                ("lately", False, keep - 3600)]
    for visitor, online, age in visitors:
        await db.execute(
            """INSERT INTO visitors (shop_id, visitor_id, last_seen_at, online)
               VALUES ($1, $2, now() - make_interval(secs => $4), $3)""",
            shop, visitor, online, float(age))
        await db.execute(
            """INSERT INTO visitor_presence (shop_id, visitor_id, online, at)
               VALUES ($1, $2, $3, now() - make_interval(secs => $4))""",
            shop, visitor, online, float(age))

    await Pruner(db, rules_for("presence"), keep).prune()
    await Pruner(db, rules_for("router"), keep).prune()

    for table in ("visitors", "visitor_presence"):
        left = {r["visitor_id"] for r in await db.fetch(
            f"SELECT visitor_id FROM {table} WHERE shop_id = $1", shop)}
        assert left == {"online", "lately"}, table


async def test_a_running_service_prunes_the_tables_it_owns(db, prepared: Settings, workdir):
    keep = keep_seconds(prepared.kafka.customer_data_retention_ms)
    consumer, shop = unique("consumer"), unique("shop")
    await db.execute(
        """INSERT INTO processed_events (consumer, event_id, processed_at)
           VALUES ($1, 'old', now() - make_interval(secs => $2 + 3600)), ($1, 'recent', now())""",
        consumer, keep)
    await db.execute(
        """INSERT INTO visitors (shop_id, visitor_id, last_seen_at, online)
           VALUES ($1, 'gone', now() - make_interval(secs => $2 + 3600), false)""",
        shop, keep)
    presence = ServiceProcess("presence", prepared, workdir)
    presence.log_path = workdir / "presence-pruning.log"
    presence.start()
    try:
        await presence.wait_ready()

        async def pruned_by_the_service() -> bool:
            left = await db.fetch(
                "SELECT event_id FROM processed_events WHERE consumer = $1", consumer)
            gone = not await db.fetchval(
                "SELECT count(*) FROM visitors WHERE shop_id = $1", shop)
            return gone and [r["event_id"] for r in left] == ["recent"]

        await eventually(pruned_by_the_service, timeout=60, interval=0.5)
        async with httpx.AsyncClient(base_url=presence.url) as client:
            metrics = (await client.get("/metrics")).text
        assert 'inbox_pruned_rows_total{table="visitors"}' in metrics
        assert "pruned" in presence.log_tail(200)
    finally:
        assert presence.terminate() == 0
