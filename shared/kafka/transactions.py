"""Exactly once from a topic to topics: one transactional producer per input partition owned.

A consume loop whose handler's only effects are the events it sends (the classifier: messages
in, tags out) commits those events and the input offsets they answer in one Kafka transaction,
so a reader with `isolation.level=read_committed` sees each output once, whatever the crashes.

Why a producer per partition, with an id derived from the group, topic and partition (Kafka
Streams' first exactly-once scheme, and faust's): whoever takes a partition next starts a
producer with the same transactional id, which fences the previous owner (a zombie's commit is
refused) and aborts the transaction it left open, at once rather than after the transaction
timeout, so read_committed readers of the outputs are not held up by a killed instance.
(The broker-side alternative, KIP-447's group-generation check, needs a TxnOffsetCommit aiokafka
does not send.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from shared.config import Settings
from shared.kafka.producer import EventProducer
from shared.retry import Retry

log = logging.getLogger(__name__)


class NotOwned(KafkaError):
    """A partition's records came with no producer for them (its start failed at the
    assignment): the consumer rejoins the group to learn whose the partition is."""


def transactional_id(group_id: str, tp: TopicPartition) -> str:
    return f"{group_id}.{tp.topic}.{tp.partition}"


class PartitionProducers:
    """The transactional producers of the input partitions a consumer owns."""

    def __init__(self, settings: Settings, name: str, group_id: str) -> None:
        self._settings = settings
        self._name = name
        self.group_id = group_id
        self._producers: dict[TopicPartition, EventProducer] = {}

    async def own(self, assigned: Iterable[TopicPartition]) -> None:
        """After a rebalance: producers for the partitions assigned, none for the others. Each
        starts now, so that a previous owner is fenced and its open transaction aborted at once
        (rather than holding back read_committed readers until the transaction timeout)."""
        assigned = set(assigned)
        for tp in [tp for tp in self._producers if tp not in assigned]:
            await self.drop(tp)
        await asyncio.gather(*(self._start(tp) for tp in assigned if tp not in self._producers))

    def get(self, tp: TopicPartition) -> EventProducer | None:
        return self._producers.get(tp)

    async def _start(self, tp: TopicPartition) -> None:
        """Start the partition's producer; after a few seconds of failing (the transaction
        coordinator is not there yet on a new cluster) leave it: the partition's next batch
        finds none and the consumer rejoins the group (NotOwned)."""

        async def start() -> None:
            producer = EventProducer(
                self._settings, f"{self._name}-{tp.topic}-{tp.partition}",
                transactional_id=transactional_id(self.group_id, tp))
            try:
                await producer.start()  # initialises the transactional id: the fencing
            except BaseException:
                await producer.stop()
                raise
            self._producers[tp] = producer

        try:
            await Retry(KafkaError, initial=0.2, cap=1.0, deadline=5.0).call(start)
        except KafkaError as exc:
            log.warning("%s: no transactional producer for %s: %s", self._name, tp, exc)

    async def drop(self, tp: TopicPartition) -> None:
        """Stop the partition's producer (the partition moved elsewhere)."""
        producer = self._producers.pop(tp, None)
        if producer is not None:
            try:
                await producer.stop()
            except Exception as exc:
                log.debug("%s: stopping the producer of %s: %s", self._name, tp, exc)

    async def stop(self) -> None:
        for tp in list(self._producers):
            await self.drop(tp)
