"""Partitions per topic: the busy topics get KAFKA_TOPIC_PARTITIONS, the quiet ones
KAFKA_QUIET_TOPIC_PARTITIONS (each partition a consumer reads costs it in every fetch)."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.kafka.admin import partitions_of, topic_partitions
from shared.topics import all_topic_names, dlq_topic, is_quiet

QUIET = {"shop.shops", "shop.staff", "shop.products", "shop.discounts", "inbox.assignment",
         "privacy.requests", "messenger.events"}
BUSY = {"chat.inbound", "inbox.timeline", "inbox.commands", "classifier.tags",
        "delivery.results", "orders.events", "storefront.cart", "storefront.activity",
        "presence.changes", "outbound.messenger", "outbound.email"}


@pytest.mark.parametrize("name", sorted(QUIET | BUSY))
def test_busy_and_quiet_topics(name):
    assert name in all_topic_names()
    assert is_quiet(name) is (name in QUIET)
    assert is_quiet(dlq_topic(name))  # a dead-letter topic is quiet whatever it backs


def test_quiet_topics_never_get_more_than_the_busy_ones():
    settings = Settings(kafka={"topic_partitions": 2, "quiet_topic_partitions": 3})
    assert partitions_of(settings, "shop.staff") == 2
    assert partitions_of(settings, "chat.inbound") == 2


async def test_topics_are_created_with_their_partitions(prepared: Settings):
    assert prepared.kafka.topic_partitions > 1  # else the test could not tell them apart
    counts: dict[str, int] = {}
    for tp in await topic_partitions(prepared, all_topic_names()):
        counts[tp.topic] = counts.get(tp.topic, 0) + 1
    assert counts == {
        name: 1 if is_quiet(name) else prepared.kafka.topic_partitions
        for name in all_topic_names()
    }
