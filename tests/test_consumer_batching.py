"""The consume loop's linger: records that arrive shortly after the first of a fetch are applied
with it (one transaction, one offset commit), on the real broker."""

from __future__ import annotations

import asyncio

from shared.config import Settings
from shared.health import Health
from shared.kafka.admin import ensure_topics, topic_partitions
from shared.kafka.consumer import ConsumeLoop, Subscription
from tests.conftest import eventually
from tests.helpers import unique


def _with_linger(settings: Settings, linger_ms: int) -> Settings:
    kafka = settings.kafka.model_copy(update={"consumer_linger_ms": linger_ms})
    return settings.model_copy(update={"kafka": kafka})


async def _handed_over(loop: ConsumeLoop) -> bool:
    """Whether the loop's consumer has returned a record to it (its position moved)."""
    consumer = loop._consumer
    if consumer is None:
        return False
    return sum([await consumer.position(tp) for tp in consumer.assignment()]) > 0


async def _batches_seen(prepared: Settings, producer, linger_ms: int) -> list[list[str]]:
    """Two records, the second sent once the consumer has fetched the first: how they were
    applied."""
    topic = unique("batching")
    await ensure_topics(prepared, [topic])

    async def described() -> bool:  # else the group may be formed before the topic is known
        return len(await topic_partitions(prepared, [topic])) == prepared.kafka.topic_partitions

    await eventually(described, timeout=30)
    batches: list[list[str]] = []

    async def handler(events: list[str]) -> None:
        batches.append(list(events))

    loop = ConsumeLoop(
        name=unique("batching"), settings=_with_linger(prepared, linger_ms),
        subscriptions=[Subscription(topic, handler, transactional=False,
                                    decode=lambda value: value.decode())],
        producer=producer, health=Health(),
    )
    task = asyncio.create_task(loop.run())
    try:
        await asyncio.wait_for(loop.caught_up.wait(), 60)  # joined, polling an empty topic
        await (await producer.send_raw(topic, b"first", "same-key"))
        await eventually(lambda: _handed_over(loop), timeout=30)
        await (await producer.send_raw(topic, b"second", "same-key"))

        async def both_applied() -> bool:
            return sum(len(b) for b in batches) == 2

        await eventually(both_applied, timeout=30)
    finally:
        loop.stop()
        await asyncio.wait_for(task, 30)
    return batches


async def test_records_within_the_linger_are_applied_in_one_batch(prepared, producer):
    assert await _batches_seen(prepared, producer, linger_ms=2000) == [["first", "second"]]


async def test_without_a_linger_each_fetch_is_applied_as_it_comes(prepared, producer):
    assert await _batches_seen(prepared, producer, linger_ms=0) == [["first"], ["second"]]
