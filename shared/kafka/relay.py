"""The outbox relay: publishes what handlers wrote to the `outbox` table (`shared.db.outbox`).

It deletes the events in the same transaction that read them, after the broker acknowledged. One
relay per outbox `relay` name is active at a time (a transaction-scoped advisory lock) and it
publishes in id order, so a conversation's events leave in the order they were written.
"""

from __future__ import annotations

import asyncio
import zlib

import asyncpg

from shared.kafka.producer import EventProducer
from shared.metrics import OUTBOX_PENDING, OUTBOX_PUBLISHED
from shared.pump import Pump


class OutboxRelay:
    def __init__(
        self, pool: asyncpg.Pool, producer: EventProducer, relay: str, batch_size: int = 1000
    ) -> None:
        self._pool = pool
        self._producer = producer
        self.relay = relay
        self._lock_key = zlib.crc32(f"outbox:{relay}".encode())
        self._batch_size = batch_size
        self._contended = False
        # Every write to the outbox wakes its relay: the idle poll is only a safety net, and
        # frequent polls would keep an idle stack busy. A relay that found another instance
        # publishing looks again soon (what that one read may not hold what was just written).
        self._pump = Pump(f"outbox relay {relay}", self.publish_pending,
                          self._next_round_in, max_idle=5.0)

    def wake(self) -> None:
        self._pump.wake()

    def stop(self) -> None:
        self._pump.stop()

    async def run(self) -> None:
        await self._pump.run()

    async def _next_round_in(self) -> float:
        return 0.05 if self._contended else 5.0

    async def publish_pending(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            self._contended = not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock($1)", self._lock_key)
            if self._contended:
                return 0  # another instance of this relay is publishing
            rows = await conn.fetch(
                """DELETE FROM outbox WHERE id IN (
                       SELECT id FROM outbox WHERE relay = $1 ORDER BY id LIMIT $2
                   ) RETURNING id, topic, key, value""",
                self.relay,
                self._batch_size,
            )
            if not rows:
                OUTBOX_PENDING.set(0)
                return 0
            rows = sorted(rows, key=lambda r: r["id"])
            if len(rows) == self._batch_size:  # a backlog: say how large
                OUTBOX_PENDING.set(await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE relay = $1", self.relay) - len(rows))
            else:
                OUTBOX_PENDING.set(0)
            futures = [
                await self._producer.send_raw(r["topic"], r["value"], r["key"]) for r in rows
            ]
            await asyncio.gather(*futures)
            for r in rows:
                OUTBOX_PUBLISHED.labels(r["topic"]).inc()
            return len(rows)
