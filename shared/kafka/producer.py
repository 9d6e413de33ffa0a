"""The one Kafka producer wrapper: JSON events, size limits, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.producer.producer import TransactionContext
from pydantic import BaseModel

from shared.config import Settings
from shared.kafka.client import producer_options
from shared.metrics import EVENTS_PRODUCED


class MessageTooLarge(ValueError):
    pass


class EventProducer:
    def __init__(self, settings: Settings, client_id: str,
                 transactional_id: str | None = None) -> None:
        self._max_bytes = settings.kafka.max_message_bytes
        self._producer = AIOKafkaProducer(
            **producer_options(settings, client_id, transactional_id=transactional_id))

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send_raw(
        self,
        topic: str,
        value: bytes | None,
        key: str | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future:
        """Queue one message (a None value: a tombstone, which compaction turns into the key's
        removal); the returned future resolves when the broker has it."""
        if value is not None and len(value) > self._max_bytes:
            # The development broker does not enforce message.max.bytes: the producer does.
            raise MessageTooLarge(f"{len(value)} bytes to {topic} exceeds {self._max_bytes}")
        future = await self._producer.send(
            topic,
            value=value,
            key=key.encode() if key is not None else None,
            headers=list(headers) if headers else None,
        )
        future.add_done_callback(
            lambda f: f.cancelled() or f.exception() or EVENTS_PRODUCED.labels(topic).inc()
        )
        return future

    async def send(self, topic: str, event: BaseModel, key: str | None = None) -> asyncio.Future:
        if key is None:
            key = event.key  # type: ignore[attr-defined]
        return await self.send_raw(topic, event.model_dump_json().encode(), key)

    async def send_and_wait(self, topic: str, event: BaseModel, key: str | None = None) -> None:
        await (await self.send(topic, event, key))

    async def flush(self) -> None:
        await self._producer.flush()

    # --- transactions (a producer made with a transactional id; see shared/kafka/transactions)

    def transaction(self) -> TransactionContext:
        """Begins a transaction; commits it at the block's end, aborts it on an error."""
        return self._producer.transaction()

    async def send_offsets(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
        """Commit the group's `offsets` with the transaction in progress."""
        await self._producer.send_offsets_to_transaction(offsets, group_id)
