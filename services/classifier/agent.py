"""The faust agent that tags customer messages: `inbox.timeline` in, `classifier.tags` out.

Items come in batches (`stream.take_events`) so that one vectorised model call classifies many
messages. A record that breaks its contract goes to `inbox.timeline.dlq` (reason and original
bytes, the shape every consumer writes) and the batch goes on.

Each batch ends with a commit made by the agent itself, once its tags (and dead letters) are
with the broker; faust's timer commits are pushed out of the way. Under `exactly_once` that
commit is one Kafka transaction per source partition holding the partition's tags and its new
offset: a tag is sent with the transactional producer of the partition its message came from
(faust would pick the producer of the tag's destination partition, and none at all for a topic
its consumer holds no metadata for), and no batch is half-sent when the transaction commits.
Each of these, left to faust, lets a tag out of its transaction (faust-streaming issues #177,
"Producer is sending messages outside a transaction", and #517, "Duplicate messages despite
exactly_once configuration"); `tests/test_classifier_exactly_once.py` reads the tags back
`read_committed` after SIGKILLs to show that none does here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import faust
from pydantic import ValidationError

from services.classifier.tagging import Tagger
from shared.config import Settings
from shared.health import Health
from shared.kafka.consumer import dead_letter, describe_error
from shared.metrics import (
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_PROCESSED,
    EVENTS_PRODUCED,
    HANDLE_SECONDS,
    LAST_PROCESSED,
)
from shared.topics import CLASSIFIER_TAGS, INBOX_TIMELINE, TOPICS

log = logging.getLogger(__name__)

#: Longest wait for a batch to fill: a lone message is tagged within this.
BATCH_WITHIN_SECONDS = 0.05
#: Most messages in a batch. Larger than a fetch: under `exactly_once` each batch ends with a
#: transaction commit per source partition, a cost a larger batch spreads over more messages.
BATCH_MAX = 2000


class TaggingAgent:
    def __init__(self, app: faust.App, tagger: Tagger, settings: Settings, name: str,
                 health: Health) -> None:
        self.app = app
        self.tagger = tagger
        self.name = name
        self.health = health
        self.health_key = f"kafka:{name}"
        health.register(self.health_key)
        self._max_bytes = settings.max_event_bytes
        self._max_message_bytes = settings.kafka.max_message_bytes
        self._batch = max(BATCH_MAX, settings.kafka.max_poll_records)
        self._decode = TOPICS[INBOX_TIMELINE].decode
        self._stopping = False
        #: Held while a batch is being processed and committed; a stop waits for it.
        self.processing = asyncio.Lock()
        self.timeline = app.topic(INBOX_TIMELINE, key_type=bytes, value_type=bytes,
                                  key_serializer="raw", value_serializer="raw")
        app.agent(self.timeline, name=f"{name}.tagging", concurrency=1)(self._run)
        app.on_partitions_assigned.connect(self._assigned)

    # --- life cycle ---------------------------------------------------------------------------

    def _assigned(self, sender: Any, assigned: set, **_: Any) -> None:
        log.info("%s assigned %d partitions", self.name, len(assigned))
        self.health.set(self.health_key, True, f"consuming ({len(assigned)} partitions)")

    async def start(self) -> None:
        self.health.set(self.health_key, False, "joining the group")
        await self.app.start()

    async def stop(self) -> None:
        """Let the batch in flight finish and commit, take no other, then stop the app."""
        self._stopping = True
        async with self.processing:
            self.health.set(self.health_key, False, "stopped")
        await self.app.stop()

    # --- the agent ----------------------------------------------------------------------------

    async def _run(self, stream: faust.StreamT) -> None:
        try:
            async for events in stream.take_events(self._batch, within=BATCH_WITHIN_SECONDS):
                if self._stopping:
                    await asyncio.Event().wait()  # not acked: the next owner reads them again
                async with self.processing:
                    await self.process(events)
                    for event in events:
                        await stream.ack(event)
                    await self.commit()
        except Exception as exc:
            # Nothing of the batch is committed: whoever takes the partitions next redoes it.
            self.health.set(self.health_key, False, f"agent failed: {describe_error(exc)}")
            raise

    async def commit(self) -> None:
        # A commit already under way (a rebalance's) makes `commit` wait for it and skip ours.
        if not await self.app.consumer.commit():
            await self.app.consumer.commit()

    async def process(self, events: Sequence[faust.EventT]) -> None:
        started = time.perf_counter()
        EVENTS_CONSUMED.labels(INBOX_TIMELINE).inc(len(events))
        items, sends = [], []
        for event in events:
            message = event.message
            try:
                value = message.value
                if not value:
                    raise ValueError("empty message")
                if len(value) > self._max_bytes:
                    raise ValueError(f"event of {len(value)} bytes exceeds the limit "
                                     f"of {self._max_bytes}")
                items.append((message, self._decode(value)))
            except (ValidationError, ValueError, UnicodeDecodeError) as exc:
                sends.append(await self._dead_letter(message, describe_error(exc)))
        partition_of = {id(item): message.partition for message, item in items}
        for item, tag in await self.tagger.tags([item for _, item in items]):
            sends.append(await self._send(CLASSIFIER_TAGS, partition_of[id(item)],
                                          tag.key.encode(), tag.model_dump_json().encode()))
        await asyncio.gather(*sends)
        EVENTS_PROCESSED.labels(INBOX_TIMELINE, "applied").inc(len(items))
        HANDLE_SECONDS.labels(INBOX_TIMELINE).observe(time.perf_counter() - started)
        LAST_PROCESSED.labels(INBOX_TIMELINE).set(time.time())
        self._record_lag(events)

    async def _send(self, topic: str, source_partition: int, key: bytes | None, value: bytes,
                    headers: list[tuple[str, bytes]] | None = None) -> Awaitable[Any]:
        """Send in the transaction of the source partition (exactly once), else plainly; to the
        same partition number (the topics are co-partitioned, keyed alike)."""
        transactional_id = None
        if self.app.in_transaction:
            group = self.app.assignor.group_for_topic(INBOX_TIMELINE)
            transactional_id = f"{self.app.conf.id}-{group}-{source_partition}"
        else:
            await self.app.producer.maybe_start()
        future = await self.app.producer.send(
            topic, key, value, source_partition, None, headers,
            transactional_id=transactional_id)
        return _counted(future, topic)

    async def _dead_letter(self, message: Any, reason: str) -> Awaitable[Any]:
        log.warning("%s: invalid event at %s[%d]@%d to DLQ: %s", self.name, message.topic,
                    message.partition, message.offset, reason[:300])
        topic, value, key, headers = dead_letter(message, "invalid", reason, self.name,
                                                 self._max_message_bytes)
        EVENTS_DEAD_LETTERED.labels(message.topic, "invalid").inc()
        return await self._send(topic, message.partition, key.encode() if key else None, value,
                                headers)

    def _record_lag(self, events: Sequence[faust.EventT]) -> None:
        last: dict[Any, int] = {}
        for event in events:
            last[event.message.tp] = event.message.offset
        for tp, offset in last.items():
            highwater = self.app.consumer.highwater(tp)
            if highwater is not None:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(
                    max(0, highwater - offset - 1))


async def _counted(future: Awaitable[Any], topic: str) -> Any:
    result = await future
    EVENTS_PRODUCED.labels(topic).inc()
    return result
