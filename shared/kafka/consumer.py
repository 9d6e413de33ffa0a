"""The consume loop every service uses.

`getmany` → per partition, in order: validate each record against its topic's contract (invalid →
`<topic>.dlq`) → apply the valid ones → commit `offset + 1` once the effect is durable.

Applying is transactional by default: the event ids are claimed in `processed_events` inside the
same PostgreSQL transaction as the handler's effect, so a redelivered event changes nothing. A
batch is applied in one transaction (throughput); if it fails for a reason other than an
unavailable dependency, each event is retried alone so one poison event cannot hold back the
others: after `handler_max_attempts` it goes to the DLQ with the error, and the partition moves on.
Transient errors (database or broker away) are retried without end, with backoff, and the
service reports not-ready meanwhile; nothing is committed past an event that is not done.

A subscription whose handler's only effects are the events it sends (`exactly_once`) is applied
instead in a Kafka transaction per partition, which holds its sends, its dead letters and the
partition's new offset (shared/kafka/transactions.py): exactly once for read_committed readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError

from shared.config import Settings
from shared.contracts.base import error_sentence
from shared.db import inbox
from shared.db.pool import TRANSIENT_DB_ERRORS
from shared.health import Health
from shared.kafka.client import consumer_options
from shared.kafka.producer import EventProducer
from shared.kafka.transactions import NotOwned, PartitionProducers
from shared.metrics import (
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_PROCESSED,
    HANDLE_SECONDS,
    HANDLER_RETRIES,
    KAFKA_TRANSACTIONS,
    LAST_PROCESSED,
    TOMBSTONES,
)
from shared.retry import Retry, Stopped
from shared.topics import TOPICS, Decoder, dlq_topic

log = logging.getLogger(__name__)

#: Longest wait, before partitions move, for the group to give the offsets our Kafka
#: transactions committed (see ConsumeLoop.until_commits_visible).
COMMITS_VISIBLE_SECONDS = 5.0
#: Below this many records per group, a fetch's partitions are not split into concurrent
#: transactions.
MIN_RECORDS_PER_GROUP = 16

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, KafkaError)


class Rejected(Exception):
    """A valid event the domain refuses for good (e.g. a reply to an unknown conversation).

    It goes to the DLQ with this message as the reason; the partition moves on.
    """


TxHandler = Callable[[asyncpg.Connection, list[Any]], Awaitable[None]]
PlainHandler = Callable[[list[Any]], Awaitable[None]]
#: Sends its output with the producer given: the partition's transactional one, or the
#: service's where the broker has no transactions.
SendingHandler = Callable[[list[Any], EventProducer], Awaitable[None]]


@dataclass
class Subscription:
    topic: str
    handler: TxHandler | PlainHandler | SendingHandler
    #: Transactional handlers get a connection inside a transaction that also claims the ids.
    transactional: bool = True
    #: A SendingHandler, whose sends commit with the offsets in one Kafka transaction where the
    #: broker has them (`kafka.transactions`); at least once elsewhere.
    exactly_once: bool = False
    decode: Decoder | None = None
    idempotency_key: Callable[[Any], str] = field(default=lambda event: event.event_id)

    def decoder(self) -> Decoder:
        return self.decode or TOPICS[self.topic].decode


def _by_topic(
    batches: dict[TopicPartition, list[ConsumerRecord]],
) -> dict[str, list[tuple[TopicPartition, list[ConsumerRecord]]]]:
    grouped: dict[str, list[tuple[TopicPartition, list[ConsumerRecord]]]] = {}
    for tp, records in batches.items():
        if records:
            grouped.setdefault(tp.topic, []).append((tp, records))
    return grouped


@dataclass
class _Item:
    record: ConsumerRecord
    event: Any


def _worth_another_try(exc: BaseException) -> bool:
    """A handler's error other than a refusal or a stop may pass on its own."""
    return isinstance(exc, Exception) and not isinstance(exc, Rejected | Stopped)


def _handler_error_worth_another_try(exc: BaseException) -> bool:
    """In a Kafka transaction: the handler's own errors; the broker's end the transactions."""
    return _worth_another_try(exc) and not isinstance(exc, KafkaError)


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return error_sentence(
            exc.errors(include_url=False), unlocated="message", limit=10, keep_prefix=True
        )
    return f"{type(exc).__name__}: {exc}"[:2000]


class _RevokeListener(ConsumerRebalanceListener):
    def __init__(self, loop: ConsumeLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Let the batch in flight finish and commit before the partitions move elsewhere.
        async with self._loop.processing:
            self._loop.rebalancing = True
            await self._loop.until_commits_visible(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("%s assigned %d partitions", self._loop.name, len(assigned))
        await self._loop.owned(assigned)


class ConsumeLoop:
    def __init__(
        self,
        *,
        name: str,
        settings: Settings,
        subscriptions: Sequence[Subscription],
        producer: EventProducer,
        health: Health,
        pool: asyncpg.Pool | None = None,
        on_applied: Callable[[], None] | None = None,
        group_id: str | None = None,
        partitions: Sequence[TopicPartition] | None = None,
    ) -> None:
        self.name = name
        self._settings = settings
        self._subs = {s.topic: s for s in subscriptions}
        self._decoders = {s.topic: s.decoder() for s in subscriptions}
        self._producer = producer
        self._health = health
        self._pool = pool
        self._on_applied = on_applied
        self._group_id = group_id or f"inbox-{name}"
        self._partitions = partitions
        self._stopping = asyncio.Event()
        #: Set once a fetch comes back empty: the backlog present at start has been worked off.
        self.caught_up = asyncio.Event()
        self.processing = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._lag_checked = 0.0
        self._health_key = f"kafka:{name}"
        health.register(self._health_key)
        if any(s.transactional for s in subscriptions) and pool is None:
            raise ValueError("transactional subscriptions need a database pool")
        #: Topics applied in Kafka transactions (needs a group: its offsets go in them).
        self._in_transactions = {s.topic for s in subscriptions if s.exactly_once} if (
            settings.kafka.transactions and not partitions) else set()
        self._partition_producers = PartitionProducers(settings, name, self._group_id)
        #: Assignments so far: records fetched under an earlier one are not applied in a
        #: transaction (their partitions were reset to the committed offsets meanwhile).
        self._assignments = 0
        #: Between a revocation and the next assignment: whose the partitions will be is not
        #: known, and a transaction committed now could commit what the next owner reads again.
        self.rebalancing = False
        #: The offset each partition's last transaction committed, until the group shows it.
        self._committed: dict[TopicPartition, int] = {}

    def stop(self) -> None:
        self._stopping.set()

    # --- life cycle ---------------------------------------------------------------------------

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(**consumer_options(
            self._settings, self.name, group_id=None if self._partitions else self._group_id))

    async def run(self) -> None:
        reconnecting = Retry(KafkaError, initial=0.5, cap=5.0, stopping=self._stopping,
                             on_retry=self._broker_lost)
        with contextlib.suppress(Stopped):
            async for attempt in reconnecting:
                with attempt:
                    await self._connect_and_poll(attempt.restart_backoff)
        self._health.set(self._health_key, False, "stopped")

    async def owned(self, assigned: list[TopicPartition]) -> None:
        """After a rebalance: the transactional producers follow the partitions."""
        self._assignments += 1
        self.rebalancing = False
        if self._in_transactions:
            await self._partition_producers.own(
                tp for tp in assigned if tp.topic in self._in_transactions)

    async def until_commits_visible(self, partitions: Iterable[TopicPartition]) -> None:
        """Before partitions move (a rebalance, a stop): wait until the group gives the offsets
        our transactions committed on them. A commit returns before its markers are written,
        and until the group has them an offset fetch gives the previous offset (the broker
        waits for them only when asked, KIP-447, which aiokafka's fetch does not ask); the next
        owner would then apply the last batch again. Bounded: a broker gone away is the
        broker's own error path."""
        consumer = self._consumer
        waiting = {tp: self._committed.pop(tp) for tp in list(partitions) if tp in self._committed}
        if consumer is None or not waiting:
            return
        deadline = time.monotonic() + COMMITS_VISIBLE_SECONDS
        with contextlib.suppress(KafkaError):
            while waiting and time.monotonic() < deadline:
                for tp, offset in list(waiting.items()):
                    seen = await consumer.committed(tp)
                    if seen is not None and seen >= offset:
                        del waiting[tp]
                if waiting:
                    await asyncio.sleep(0.01)
        if waiting:
            log.warning("%s: offsets of %s not visible in the group after %.0fs", self.name,
                        sorted(waiting), COMMITS_VISIBLE_SECONDS)

    async def _connect_and_poll(self, connected: Callable[[], None]) -> None:
        consumer = self._new_consumer()
        try:
            await consumer.start()
            if self._partitions:
                consumer.assign(list(self._partitions))
            else:
                consumer.subscribe(list(self._subs), listener=_RevokeListener(self))
            self._consumer = consumer
            connected()
            await self._poll(consumer)
            await self.until_commits_visible(consumer.assignment())
        finally:
            self._consumer = None
            try:
                await consumer.stop()
            except Exception as exc:
                log.debug("%s: stopping consumer: %s", self.name, exc)
            # A new consumer is a new member: its assignment brings fresh producers.
            await self._partition_producers.stop()

    def _broker_lost(self, exc: BaseException, delay: float) -> None:
        self._health.set(self._health_key, False, f"kafka: {exc}")
        log.warning("%s: broker error %s; reconnecting in %.1fs", self.name, exc, delay)

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            self._health.set(self._health_key, True, "consuming")
            if not batches:
                if not self.caught_up.is_set() and await self._at_end(consumer):
                    self.caught_up.set()
            else:
                fetched_under = self._assignments
                if self._settings.kafka.consumer_linger_ms:
                    await self._gather_more(consumer, batches)
                async with self.processing:
                    offsets: dict[TopicPartition, int] = {}
                    try:
                        for topic, fetched in _by_topic(batches).items():
                            if topic in self._in_transactions:
                                # A rebalance while lingering set the positions back to the
                                # committed offsets: these records come again; applied now, a
                                # transaction would commit them twice.
                                if fetched_under == self._assignments and not self.rebalancing:
                                    await self._process_in_transactions(consumer, topic,
                                                                        fetched)
                                continue  # their offsets are committed in the transactions
                            await self._process_concurrently(topic, fetched)
                            for tp, records in fetched:
                                offsets[tp] = records[-1].offset + 1
                    finally:
                        if offsets:
                            await self._commit(consumer, offsets)
            await self._record_lag(consumer)

    async def _gather_more(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        """Records that arrive within `kafka.consumer_linger_ms` of the first join its batch.

        Under load a fetch brings one or two events, each batch paying for a transaction and
        an offset commit; waiting a few milliseconds for more amortises both (the producer's
        linger, on the reading side). Never under `processing`: aiokafka's `getmany` waits for
        a rebalance in progress to finish, and the rebalance waits for `processing` (the revoke
        listener), which would deadlock. Records of a partition revoked meanwhile are applied
        anyway and their commit refused, as after any rebalance: the idempotent handlers make
        the new owner's second reading harmless. (Exactly-once topics: not applied at all, see
        `_poll`.)"""
        await asyncio.sleep(self._settings.kafka.consumer_linger_ms / 1000)
        more = await consumer.getmany(timeout_ms=0)
        for tp, records in more.items():
            batches.setdefault(tp, []).extend(records)

    async def _at_end(self, consumer: AIOKafkaConsumer) -> bool:
        """Every assigned partition read up to its end: the backlog found at start is done.
        (An empty fetch alone proves nothing: the first ones come back empty while positions
        are still being set up.)"""
        assignment = consumer.assignment()
        if not assignment:
            return False
        ends = await consumer.end_offsets(list(assignment))
        for tp in assignment:
            if await consumer.position(tp) < ends[tp]:
                return False
        return True

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        if self._partitions:
            return  # manual assignment (tests, tools): the caller tracks its own position
        try:
            await consumer.commit(offsets)
        except CommitFailedError as exc:
            # The partitions moved during a rebalance: their new owner re-reads from the last
            # commit and the idempotent handlers skip what was already applied.
            log.warning("%s: commit failed after rebalance: %s", self.name, exc)

    async def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        if now - self._lag_checked < 2.0:
            return
        self._lag_checked = now
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue  # not fetched yet
            position = await consumer.position(tp)
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))

    # --- one partition's batch ----------------------------------------------------------------

    async def _process_concurrently(
        self, topic: str, fetched: list[tuple[TopicPartition, list[ConsumerRecord]]]
    ) -> None:
        """The fetched partitions of a topic in up to `kafka.consumer_concurrency` groups, each
        applied in a transaction of its own, the groups at the same time: a handler waiting on
        the database does not hold up the other partitions. A conversation's events share a
        partition, so they stay in order."""
        records = sum(len(r) for _tp, r in fetched)
        # A transaction costs about as much CPU as a few events: a small fetch is applied in one.
        width = max(1, min(self._settings.kafka.consumer_concurrency, len(fetched),
                           records // MIN_RECORDS_PER_GROUP))
        groups = [fetched[i::width] for i in range(width)]
        if width == 1:
            await self._process_topic(topic, fetched)
            return
        outcomes = await asyncio.gather(*(self._process_topic(topic, g) for g in groups),
                                        return_exceptions=True)
        for outcome in outcomes:  # every group has finished: now a stop or a bug may surface
            if isinstance(outcome, BaseException):
                raise outcome

    async def _process_topic(
        self, topic: str, fetched: list[tuple[TopicPartition, list[ConsumerRecord]]]
    ) -> None:
        """Records of one or more partitions of a topic, each partition's in order, applied
        together (one transaction: fewer commits, larger set-based statements)."""
        sub = self._subs[topic]
        started = time.perf_counter()
        items, invalid = self._decode(topic, [r for _tp, records in fetched for r in records])
        for record, reason in invalid:
            await self._dead_letter(record, "invalid", reason)
        if items:
            await self._apply(sub, items)
            if self._on_applied:
                # The effects are durable: whoever publishes or sends them may go now, without
                # waiting for the rest of the fetch or the offset commit.
                self._on_applied()
        HANDLE_SECONDS.labels(topic).observe(time.perf_counter() - started)
        LAST_PROCESSED.labels(topic).set(time.time())

    def _decode(self, topic: str, records: list[ConsumerRecord]
                ) -> tuple[list[_Item], list[tuple[ConsumerRecord, str]]]:
        """The records' events, and the records that break the topic's contract, with why."""
        decode = self._decoders[topic]
        EVENTS_CONSUMED.labels(topic).inc(len(records))
        items: list[_Item] = []
        invalid: list[tuple[ConsumerRecord, str]] = []
        for record in records:
            if record.value is None:
                # A tombstone: its key was removed (a shop's erasure on a compacted topic),
                # which whoever wrote it did to the state already. Nothing to apply.
                TOMBSTONES.labels(topic).inc()
                continue
            try:
                if not record.value:
                    raise ValueError("empty message")
                if len(record.value) > self._settings.max_event_bytes:
                    raise ValueError(f"event of {len(record.value)} bytes exceeds the limit "
                                     f"of {self._settings.max_event_bytes}")
                items.append(_Item(record, decode(record.value)))
            except (ValidationError, ValueError, UnicodeDecodeError) as exc:
                invalid.append((record, describe_error(exc)))
        return items, invalid

    async def _apply(self, sub: Subscription, items: list[_Item]) -> None:
        try:
            await self._until_done(sub, items)
            return
        except (Stopped, asyncio.CancelledError):
            raise
        except Exception as exc:
            if len(items) > 1:
                log.info("%s: batch failed (%s); applying one by one", self.name, exc)
        for item in items:
            await self._apply_one(sub, item)

    async def _apply_one(self, sub: Subscription, item: _Item) -> None:
        """A few tries (a handler's error may pass), then the DLQ; a refusal goes there at once."""
        policy = Retry(_worth_another_try, initial=0.2, cap=5.0,
                       attempts=self._settings.handler_max_attempts, stopping=self._stopping)
        try:
            await policy.call(lambda: self._until_done(sub, [item]))
        except Rejected as exc:
            await self._dead_letter(item.record, "rejected", str(exc))
        except Stopped:
            raise
        except Exception as exc:
            log.exception("%s: giving up on %s", self.name, sub.topic)
            await self._dead_letter(item.record, "failed", describe_error(exc))

    async def _until_done(self, sub: Subscription, items: list[_Item]) -> None:
        """Apply; on a transient error wait and try again until it works or we stop."""

        def retrying(exc: BaseException, delay: float) -> None:
            HANDLER_RETRIES.labels(sub.topic).inc()
            self._health.set(self._health_key, False, f"retrying: {describe_error(exc)}")
            log.warning("%s: transient error, retrying in %.1fs: %s", self.name, delay, exc)

        async for attempt in Retry(TRANSIENT_ERRORS, initial=0.2, cap=5.0,
                                   stopping=self._stopping, on_retry=retrying):
            with attempt:
                if self._stopping.is_set():
                    raise Stopped
                await self._apply_once(sub, items)

    async def _apply_once(self, sub: Subscription, items: list[_Item]) -> None:
        events = [i.event for i in items]
        if sub.exactly_once:  # without transactions here: at least once
            await sub.handler(events, self._producer)  # type: ignore[call-arg]
            EVENTS_PROCESSED.labels(sub.topic, "applied").inc(len(events))
            return
        if not sub.transactional:
            await sub.handler(events)  # type: ignore[call-arg]
            EVENTS_PROCESSED.labels(sub.topic, "applied").inc(len(events))
            return
        assert self._pool is not None
        async with self._pool.acquire() as conn, conn.transaction():
            keys = [sub.idempotency_key(e) for e in events]
            fresh_keys = await inbox.claim(conn, self.name, keys)
            fresh = []
            for key, event in zip(keys, events, strict=True):
                if key in fresh_keys:
                    fresh_keys.discard(key)  # a second copy in the same batch is a duplicate
                    fresh.append(event)
            if fresh:
                await sub.handler(conn, fresh)  # type: ignore[call-arg]
        EVENTS_PROCESSED.labels(sub.topic, "applied").inc(len(fresh))
        EVENTS_PROCESSED.labels(sub.topic, "duplicate").inc(len(events) - len(fresh))

    def _dead_letter_message(
        self, record: ConsumerRecord, kind: str, reason: str
    ) -> tuple[str, bytes, str | None, list[tuple[str, bytes]]]:
        """The DLQ record of `record`: topic, value, key and headers (why, and where from)."""
        log.warning(
            "%s: %s event at %s[%d]@%d to DLQ: %s",
            self.name, kind, record.topic, record.partition, record.offset, reason[:300],
        )
        headers = [
            ("dlq.reason", reason.encode("utf-8", "replace")[:4000]),
            ("dlq.kind", kind.encode()),
            ("dlq.topic", record.topic.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
            ("dlq.consumer", self.name.encode()),
        ]
        key = record.key.decode("utf-8", "replace") if record.key else None
        value = record.value or b""
        if len(value) > self._settings.kafka.max_message_bytes:
            value = value[: self._settings.kafka.max_message_bytes]
            headers.append(("dlq.truncated", b"true"))
        return dlq_topic(record.topic), value, key, headers

    async def _dead_letter(self, record: ConsumerRecord, kind: str, reason: str) -> None:
        message = self._dead_letter_message(record, kind, reason)

        async def publish() -> None:
            await (await self._producer.send_raw(*message))

        def failed(exc: BaseException, delay: float) -> None:
            log.warning("%s: DLQ publish failed, retrying in %.1fs: %s", self.name, delay, exc)

        await Retry(KafkaError, initial=0.2, cap=5.0, stopping=self._stopping,
                    on_retry=failed).call(publish)
        EVENTS_DEAD_LETTERED.labels(record.topic, kind).inc()

    # --- exactly once: a partition's records in a Kafka transaction ----------------------------

    async def _process_in_transactions(
        self, consumer: AIOKafkaConsumer, topic: str,
        fetched: list[tuple[TopicPartition, list[ConsumerRecord]]],
    ) -> None:
        """Each partition's records in a transaction of its own, the partitions at once. Only
        partitions still owned: records fetched before a rebalance took theirs away are left to
        the new owner (whose producer has fenced ours)."""
        owned = consumer.assignment()
        outcomes = await asyncio.gather(
            *(self._process_partition_in_transaction(tp, records)
              for tp, records in fetched if tp in owned),
            return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _process_partition_in_transaction(
        self, tp: TopicPartition, records: list[ConsumerRecord]
    ) -> None:
        sub = self._subs[tp.topic]
        started = time.perf_counter()
        items, invalid = self._decode(tp.topic, records)
        handler: SendingHandler = sub.handler  # type: ignore[assignment]

        async def whole_batch(producer: EventProducer) -> None:
            for record, reason in invalid:
                await self._dead_letter_in(producer, record, "invalid", reason)
            if items:
                await handler([i.event for i in items], producer)

        try:
            await self._transact(tp, records[-1].offset + 1, whole_batch)
            EVENTS_PROCESSED.labels(tp.topic, "applied").inc(len(items))
        except (Stopped, KafkaError):
            raise
        except Exception as exc:
            log.info("%s: batch of %s failed (%s); applying one by one", self.name, tp, exc)
            await self._one_by_one_in_transactions(tp, handler, records, items, invalid)
        HANDLE_SECONDS.labels(tp.topic).observe(time.perf_counter() - started)
        LAST_PROCESSED.labels(tp.topic).set(time.time())

    async def _one_by_one_in_transactions(
        self, tp: TopicPartition, handler: SendingHandler, records: list[ConsumerRecord],
        items: list[_Item], invalid: list[tuple[ConsumerRecord, str]],
    ) -> None:
        """Each record in its own transaction: a few tries, then the DLQ (as `_apply_one`)."""
        events = {id(i.record): i.event for i in items}
        refused = {id(record): reason for record, reason in invalid}
        for record in records:
            if id(record) in refused:
                kind, reason = "invalid", refused[id(record)]
            elif id(record) in events:
                event = events[id(record)]
                policy = Retry(_handler_error_worth_another_try, initial=0.2, cap=5.0,
                               attempts=self._settings.handler_max_attempts,
                               stopping=self._stopping)
                try:
                    await policy.call(lambda e=event, r=record: self._transact(
                        tp, r.offset + 1, lambda producer: handler([e], producer)))
                    EVENTS_PROCESSED.labels(tp.topic, "applied").inc()
                    continue
                except Rejected as exc:
                    kind, reason = "rejected", str(exc)
                except (Stopped, KafkaError):
                    raise
                except Exception as exc:
                    log.exception("%s: giving up on %s", self.name, tp.topic)
                    kind, reason = "failed", describe_error(exc)
            else:
                continue  # a tombstone: the next record's offset covers it
            await self._transact(tp, record.offset + 1, lambda producer, r=record, k=kind,
                                 why=reason: self._dead_letter_in(producer, r, k, why))

    async def _transact(self, tp: TopicPartition, next_offset: int,
                        work: Callable[[EventProducer], Awaitable[None]]) -> None:
        """`work`'s sends and the partition's offset `next_offset`, committed in one
        transaction (aborted if `work` fails).

        The broker's errors, a fencing among them, end every transaction: the loop reconnects
        and the next assignment brings fresh producers. A producer is never started again
        while a batch is in hand: the partition may have moved meanwhile (a session lost while
        the broker was away), and ours would fence its new owner and commit what it has
        committed already; only an assignment says whose it is."""
        producer = self._partition_producers.get(tp)
        if producer is None:
            raise NotOwned(f"{tp.topic}[{tp.partition}] has no transactional producer here")
        try:
            async with producer.transaction():
                await work(producer)
                await producer.send_offsets({tp: next_offset}, self._partition_producers.group_id)
        except BaseException as exc:
            KAFKA_TRANSACTIONS.labels(tp.topic, "aborted").inc()
            if isinstance(exc, KafkaError):
                await self._partition_producers.stop()
            raise
        KAFKA_TRANSACTIONS.labels(tp.topic, "committed").inc()
        self._committed[tp] = next_offset

    async def _dead_letter_in(self, producer: EventProducer, record: ConsumerRecord, kind: str,
                              reason: str) -> None:
        """Dead-letter `record` in the producer's transaction."""
        await (await producer.send_raw(*self._dead_letter_message(record, kind, reason)))
        EVENTS_DEAD_LETTERED.labels(record.topic, kind).inc()
