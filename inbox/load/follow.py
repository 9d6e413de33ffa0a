"""Following events to their effects: the effect topics read from their end, each effect matched
to the event that caused it (by the ids the services derive), latencies counted from the time
the event was *due* (see schedule.py), duplicates and dead letters noticed.

`Tracker` is the bookkeeping (pure, no I/O); `Follower` feeds it from Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from inbox.load.report import PathResult
from inbox.load.traffic import DELIVERY, PATHS, TAG, TIMELINE, Expect
from shared.config import Settings
from shared.kafka.admin import topic_partitions
from shared.kafka.client import consumer_options
from shared.topics import (
    CHAT_INBOUND,
    CLASSIFIER_TAGS,
    DELIVERY_RESULTS,
    INBOX_COMMANDS,
    INBOX_TIMELINE,
    ORDERS_EVENTS,
    SHOP_DISCOUNTS,
    SHOP_PRODUCTS,
    SHOP_SHOPS,
    SHOP_STAFF,
    STOREFRONT_ACTIVITY,
    STOREFRONT_CART,
    dlq_topic,
)

log = logging.getLogger(__name__)

EFFECT_TOPICS = (INBOX_TIMELINE, CLASSIFIER_TAGS, DELIVERY_RESULTS)
#: Where a refused event of ours would end up.
DLQ_TOPICS = tuple(dlq_topic(t) for t in (
    CHAT_INBOUND, INBOX_COMMANDS, STOREFRONT_CART, STOREFRONT_ACTIVITY, ORDERS_EVENTS,
    SHOP_SHOPS, SHOP_STAFF, SHOP_PRODUCTS, SHOP_DISCOUNTS,
))


class Tracker:
    """Expected effects, by (effect, id): pending until seen; seen twice is a duplicate."""

    def __init__(self, paths: Iterable[str] = PATHS) -> None:
        self._path_names = tuple(paths)
        #: (effect, id) -> (path, due time)
        self.pending: dict[tuple[str, str], tuple[str, float]] = {}
        #: (effect, id) -> path, for everything seen once (duplicates are counted against it)
        self.done: dict[tuple[str, str], tuple[str, str | None]] = {}
        self.paths: dict[str, PathResult] = {}
        self.seen_total = 0
        self.phase_started = 0.0
        self.last_seen = 0.0
        self.begin_phase(0.0)

    def begin_phase(self, now: float) -> None:
        """Fresh figures; what is still pending stays pending, what was seen stays seen."""
        self.paths = {p: PathResult(p) for p in self._path_names}
        self.phase_started = now
        self.last_seen = now

    def expect(self, expects: Iterable[Expect], due: float) -> None:
        for e in expects:
            self.pending[(e.effect, e.effect_id)] = (e.path, due)
            self.paths.setdefault(e.path, PathResult(e.path)).expected += 1

    def forget(self, expects: Iterable[Expect]) -> None:
        """The event never left (the producer refused it): expect nothing from it."""
        for e in expects:
            if self.pending.pop((e.effect, e.effect_id), None) is not None:
                self.paths[e.path].expected -= 1

    def observe(self, effect: str, effect_id: str, at: float, outcome: str | None = None,
                event_id: str | None = None) -> bool:
        """An effect arrived at `at` in the event `event_id`; True when it was one we expected
        (first or again). The same event again is a redelivery (Kafka is at-least-once and
        every consumer skips it); another event for the same effect is a duplicate."""
        key = (effect, effect_id)
        expected = self.pending.pop(key, None)
        if expected is not None:
            path, due = expected
            result = self.paths.setdefault(path, PathResult(path))
            result.seen += 1
            latency = max(0.0, at - due)
            result.latencies.append(latency)
            if outcome:
                result.outcomes.setdefault(outcome, []).append(latency)
            self.done[key] = (path, event_id)
            self.seen_total += 1
            self.last_seen = max(self.last_seen, at)
            return True
        first = self.done.get(key)
        if first is not None:
            path, first_event = first
            result = self.paths.setdefault(path, PathResult(path))
            if event_id is not None and event_id == first_event:
                result.redelivered += 1
            else:
                result.duplicated += 1
            return True
        return False

    def oldest_pending(self, now: float) -> float:
        """Age in seconds of the oldest effect still awaited (0 when none)."""
        for _path, due in self.pending.values():
            return max(0.0, now - due)
        return 0.0

    def close_phase(self) -> dict[str, PathResult]:
        """Whatever is still pending is lost; the figures of the phase."""
        for path, _due in self.pending.values():
            self.paths.setdefault(path, PathResult(path)).lost += 1
        self.pending.clear()
        for result in self.paths.values():
            elapsed = self.last_seen - self.phase_started
            result.throughput = result.seen / elapsed if elapsed > 0 else 0.0
        return self.paths


def read_effect(topic: str, value: bytes) -> tuple[str, str, str | None, dict[str, Any]] | None:
    """(effect, id, outcome, record) of one effect-topic record; None for what is not followed."""
    record = json.loads(value)
    if topic == INBOX_TIMELINE:
        return TIMELINE, record["event_id"], record.get("kind"), record
    if topic == CLASSIFIER_TAGS:
        return TAG, record["message_id"], None, record
    if topic == DELIVERY_RESULTS:
        outcome = record.get("status", "?")
        if outcome == "failed":
            outcome = f"failed:{record.get('error_code') or 'unknown'}"
        return DELIVERY, record["message_id"], f"{record.get('channel')} {outcome}", record
    return None


class Follower:
    """Reads every partition of the effect topics and the ingress dead-letter topics from their
    end (no consumer group, nothing committed) and feeds the tracker with what is ours."""

    def __init__(
        self,
        settings: Settings,
        tracker: Tracker,
        marker: str,
        *,
        on_conversation: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.settings = settings
        self.tracker = tracker
        #: Something every record of ours contains (the run id is in our shop and event ids).
        self._marker = marker.encode()
        self._on_conversation = on_conversation
        self._clock = clock
        self.errors: list[dict[str, Any]] = []
        self.records = 0
        self._consumers: list[AIOKafkaConsumer] = []
        self._tasks: list[asyncio.Task] = []
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        # Effects: read as soon as they are there. Dead letters only count errors: a slow poll.
        wait = self.settings.kafka.fetch_max_wait_ms
        for topics, fetch_wait in ((EFFECT_TOPICS, wait), (DLQ_TOPICS, 500)):
            consumer, partitions = await self._consumer_for(topics, fetch_wait)
            self._consumers.append(consumer)
            self._partitions += partitions
            self._tasks.append(asyncio.create_task(self._run(consumer), name="load-follow"))

    async def _consumer_for(self, topics: tuple[str, ...], fetch_wait: int
                            ) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
        consumer = AIOKafkaConsumer(**consumer_options(
            self.settings, "load-follow", fetch_max_wait_ms=fetch_wait, max_poll_records=10_000))
        await consumer.start()
        try:
            found = await topic_partitions(self.settings, topics)  # creates none
            for topic in set(topics) & set(EFFECT_TOPICS) - {tp.topic for tp in found}:
                raise RuntimeError(f"topic {topic} does not exist: is the stack running?")
            consumer.assign(found)
            await consumer.seek_to_end(*found)
            for tp in found:  # resolve the end offsets now, before anything is sent
                await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        return consumer, found

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for consumer in self._consumers:
            await consumer.stop()

    async def lag(self) -> int:
        """Records on the followed topics not read yet."""
        total = 0
        for consumer in self._consumers:
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    total += max(0, highwater - await consumer.position(tp))
        return total

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=100)
            except KafkaError as exc:
                self.errors.append({"kind": "follow", "error": f"{type(exc).__name__}: {exc}"})
                await asyncio.sleep(0.5)
                continue
            now = self._clock()
            for tp, records in batches.items():
                self.records += len(records)
                for record in records:
                    if record.value and self._marker in record.value:
                        self.handle(tp.topic, record.value, now, record.headers)

    def handle(self, topic: str, value: bytes, now: float,
               headers: Iterable[tuple[str, bytes]] = ()) -> None:
        if topic.endswith(".dlq"):
            reason = dict(headers).get("dlq.reason", b"").decode("utf-8", "replace")
            try:
                original = json.loads(value)
                event_id = original.get("event_id") or original.get("command_id")
            except (ValueError, AttributeError):
                event_id = None
            self.errors.append({"kind": "dead_letter", "topic": topic, "event_id": event_id,
                                "reason": reason[:300]})
            return
        try:
            effect = read_effect(topic, value)
        except (ValueError, KeyError) as exc:
            self.errors.append({"kind": "unreadable_effect", "topic": topic, "error": str(exc)})
            return
        if effect is None:
            return
        kind, effect_id, outcome, record = effect
        if kind == TIMELINE:
            if outcome == "customer_message" and self._on_conversation:
                self._on_conversation(record["conversation_id"])
            outcome = None
        self.tracker.observe(kind, effect_id, now, outcome, record.get("event_id"))
