"""The classifier's guarantees, on the broker the session runs.

On Apache Kafka the classifier runs exactly once: SIGKILLed twice while customer messages stream
in, it loses no tag, and a reader with `isolation.level=read_committed` sees each tag once (what
a killed instance wrote belongs to transactions that never commit). Instances come and go in one
group and the ones left go on tagging, whichever partitions come back to them. On Tansu, which
has no transactions, it runs at least once: no tag lost, a repeat allowed. A record that breaks
its contract goes to `inbox.timeline.dlq` with the reason and the original bytes, and the
messages after it are still tagged.
"""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.classifier.model import load_model
from shared.config import Settings
from shared.contracts import TimelineItem, TopicTag
from shared.kafka.admin import topic_partitions
from shared.kafka.client import consumer_options
from shared.topics import CLASSIFIER_TAGS, INBOX_TIMELINE, dlq_topic
from tests.conftest import ServiceProcess, eventually

pytestmark = pytest.mark.timeout(300)

TEXTS = (
    "Where is my order #1043? It still hasn't arrived and tracking shows nothing.",
    "Hej! Kan ni skicka till Norge och vad kostar frakten?",
    "Quisiera devolver las zapatillas, me quedan pequeñas. ¿Cómo hago la devolución?",
    "thanks!",
    "Do you have this jacket in a size M?",
    "My card was charged twice for the same order, can you refund one?",
)
#: Customer messages sent while the classifier is killed twice, and how fast.
MESSAGES = 3000
RATE = 400.0


@pytest.fixture
async def classifiers(prepared: Settings, workdir: Path
                      ) -> AsyncIterator[Callable[[], ServiceProcess]]:
    """Starts classifier instances of the group the stack's (when it runs) belongs to."""
    started: list[ServiceProcess] = []

    def start() -> ServiceProcess:
        service = ServiceProcess("classifier", prepared, workdir, instance=f"-{len(started)}")
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        if service.process.poll() is None:
            service.terminate()


def timeline_item(run: str, n: int, text: str) -> TimelineItem:
    return TimelineItem(
        event_id=f"{run}-m{n}", shop_id=f"shop-{run}", conversation_id=f"{run}-c{n % 97}",
        channel="online_store_chat", seq=n, kind="customer_message", at=datetime.now(UTC),
        message_id=f"{run}-m{n}", author="customer", text=text)


async def ends(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**consumer_options(settings, "tests-ends"))
    await consumer.start()
    try:
        return await consumer.end_offsets(await topic_partitions(settings, [topic]))
    finally:
        await consumer.stop()


async def read_between(settings: Settings, topic: str, start: dict[TopicPartition, int],
                       isolation_level: str) -> list:
    """Every record of `topic` from `start` up to its end now (the last stable offset for a
    read_committed reader)."""
    consumer = AIOKafkaConsumer(**consumer_options(
        settings, "tests-read", isolation_level=isolation_level, max_poll_records=10_000))
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        end = await consumer.end_offsets(list(start))  # the LSO when read_committed
        found: list = []
        while [tp for tp in start if await consumer.position(tp) < end[tp]]:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(records)
        return found
    finally:
        await consumer.stop()


async def committed_to_the_end(settings: Settings, group: str,
                               end: dict[TopicPartition, int]) -> bool:
    # A consumer that names the group only to read its offsets (it joins nothing).
    consumer = AIOKafkaConsumer(**consumer_options(settings, "tests-offsets", group_id=group))
    await consumer.start()
    try:
        for tp, offset in end.items():
            committed = await consumer.committed(tp)
            if committed is None or committed < offset:
                return False
        return True
    finally:
        await consumer.stop()


def tags_of(run: str, records: list) -> collections.Counter:
    tags = [TopicTag.model_validate_json(r.value) for r in records if run.encode() in r.value]
    return collections.Counter(t.message_id for t in tags)


async def test_killed_under_load_no_tag_lost_and_each_committed_once(
    prepared: Settings, producer, classifiers
):
    classifier = classifiers()
    await classifier.wait_ready()
    run = uuid.uuid4().hex[:10]
    model = load_model()
    expected_topics = {t: p.topic for t, p in zip(TEXTS, model.predict(list(TEXTS), 0.9),
                                                  strict=True)}
    tags_start = await ends(prepared, CLASSIFIER_TAGS)
    sent: dict[str, str] = {}

    async def stream_messages() -> None:
        started = time.monotonic()
        for n in range(MESSAGES):
            item = timeline_item(run, n, TEXTS[n % len(TEXTS)])
            await producer.send(INBOX_TIMELINE, item)
            sent[item.message_id or ""] = item.text or ""
            await asyncio.sleep(max(0.0, started + (n + 1) / RATE - time.monotonic()))
        await producer.flush()

    async def kill_twice() -> None:
        for _ in range(2):
            await asyncio.sleep(MESSAGES / RATE / 3)
            classifier.kill()
            classifier.start()
            await classifier.wait_ready()

    await asyncio.gather(stream_messages(), kill_twice())
    want = {m for m, text in sent.items() if expected_topics[text] is not None}
    timeline_end = await ends(prepared, INBOX_TIMELINE)
    # Every consumed offset committed: whatever the classifier does, it has done.
    await eventually(lambda: committed_to_the_end(prepared, "inbox-classifier", timeline_end),
                     timeout=90, interval=0.5)

    committed = tags_of(run, await read_between(prepared, CLASSIFIER_TAGS, tags_start,
                                                "read_committed"))
    written = tags_of(run, await read_between(prepared, CLASSIFIER_TAGS, tags_start,
                                              "read_uncommitted"))
    lost = want - set(committed)
    unexpected = set(committed) - want
    duplicated = sum(n - 1 for n in committed.values() if n > 1)
    print(f"{MESSAGES:,} customer messages at {RATE:g}/s, the classifier SIGKILLed twice: "
          f"{len(want):,} tags expected, {sum(committed.values()):,} committed; lost "
          f"{len(lost)}, duplicated {duplicated} (read_committed); "
          f"{sum(written.values()) - len(written):,} extra copies written by killed instances "
          f"(read_uncommitted)")
    assert not lost and not unexpected
    if prepared.kafka.transactions:
        assert duplicated == 0, "a tag committed twice"
        # And they were transactions: each commit left a marker in the tags' partitions, an
        # offset that no reader is given.
        assert await commit_markers(prepared, CLASSIFIER_TAGS, tags_start) > 0


async def commit_markers(settings: Settings, topic: str, start: dict[TopicPartition, int]
                         ) -> int:
    """Offsets of `topic` since `start` that hold no record: transactions' commit and abort
    markers (a topic written without transactions has none)."""
    consumer = AIOKafkaConsumer(**consumer_options(settings, "tests-markers",
                                                   max_poll_records=10_000))
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        end = await consumer.end_offsets(list(start))
        records = 0
        while [tp for tp in start if await consumer.position(tp) < end[tp]]:
            for tp, batch in (await consumer.getmany(timeout_ms=200)).items():
                records += sum(1 for r in batch if r.offset < end[tp])
        return sum(end[tp] - start[tp] for tp in start) - records
    finally:
        await consumer.stop()


async def test_instances_come_and_go_and_the_one_left_tags_every_partition(
    prepared: Settings, producer, classifiers
):
    """Partitions move to a new instance and back (its producers fence ours, ours fence it
    when they come back): the instance left tags messages of every partition."""
    first, second = classifiers(), classifiers()
    await asyncio.gather(first.wait_ready(), second.wait_ready())
    run = uuid.uuid4().hex[:10]
    tags_start = await ends(prepared, CLASSIFIER_TAGS)
    partitions = len(tags_start)
    rounds = 0

    async def all_tagged(count: int) -> None:
        """`count` messages over every partition of the timeline, each tagged once."""
        nonlocal rounds
        rounds += 1
        items = [timeline_item(f"{run}-{rounds}", n, TEXTS[0]) for n in range(count)]
        for item in items:
            await producer.send(INBOX_TIMELINE, item)
        await producer.flush()

        async def tagged() -> bool:
            found = tags_of(f"{run}-{rounds}-", await read_between(
                prepared, CLASSIFIER_TAGS, tags_start, "read_committed"))
            return len(found) == count

        await eventually(tagged, timeout=60, interval=0.5)

    await all_tagged(4 * partitions)
    second.kill()  # its partitions go to the first (and to the stack's, when it runs)
    await all_tagged(4 * partitions)
    second.start()  # some come back to a new instance
    await second.wait_ready()
    await all_tagged(4 * partitions)
    assert second.terminate() == 0  # and back again, to instances that had them before
    await all_tagged(4 * partitions)
    tags = tags_of(run, await read_between(prepared, CLASSIFIER_TAGS, tags_start,
                                           "read_committed"))
    assert sum(tags.values()) == 16 * partitions
    if prepared.kafka.transactions:
        assert set(tags.values()) == {1}, "a tag committed twice"


async def test_a_record_breaking_its_contract_goes_to_the_dlq_and_the_rest_is_tagged(
    prepared: Settings, producer, classifiers
):
    await classifiers().wait_ready()
    run = uuid.uuid4().hex[:10]
    tags_start = await ends(prepared, CLASSIFIER_TAGS)
    dlq_start = await ends(prepared, dlq_topic(INBOX_TIMELINE))
    broken = b'{"event_id": "' + run.encode() + b'", "kind": "customer_message"}'
    good = timeline_item(run, 1, TEXTS[0])
    await (await producer.send_raw(INBOX_TIMELINE, broken, good.key))
    await producer.send_and_wait(INBOX_TIMELINE, good)

    async def tagged() -> list:
        records = await read_between(prepared, CLASSIFIER_TAGS, tags_start, "read_committed")
        return [r for r in records if run.encode() in r.value]

    assert len(await eventually(tagged, timeout=30)) == 1

    async def dead_lettered() -> list:
        records = await read_between(prepared, dlq_topic(INBOX_TIMELINE), dlq_start,
                                     "read_committed")
        return [r for r in records if r.value == broken]

    [letter] = await eventually(dead_lettered, timeout=30)
    headers = dict(letter.headers)
    assert headers["dlq.kind"] == b"invalid"
    assert b"shop_id" in headers["dlq.reason"]  # the reason names a missing field
    assert headers["dlq.topic"] == INBOX_TIMELINE.encode()


async def test_sigterm_stops_cleanly(prepared: Settings, classifiers):
    classifier = classifiers()
    await classifier.wait_ready()
    async with httpx.AsyncClient() as client:
        ready = (await client.get(f"{classifier.url}/readyz")).json()
    assert ready["checks"]["kafka:classifier"]["ok"], ready
    assert classifier.terminate() == 0
    assert "classifier stopped" in classifier.log_tail()
