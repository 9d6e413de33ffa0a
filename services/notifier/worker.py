"""The delivery worker: takes due deliveries, sends them, records every attempt and the result.

Deliveries are claimed with `FOR UPDATE SKIP LOCKED`, so notifier instances share the work and a
delivery recorded as sent is never attempted again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
from prometheus_client import Counter

from services.notifier import queries as q
from services.notifier.rules import give_up, retry_delay_seconds
from services.notifier.senders import Outcome, Sender
from shared.contracts import DeliveryResult, OutboundMessage
from shared.db.outbox import Outbox
from shared.pump import Pump
from shared.topics import DELIVERY_RESULTS

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "notifier_deliveries_total",
    "Delivery attempts by channel and result (sent, failed, retry).",
    ["channel", "result"],
)


class DeliveryWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        outbox: Outbox,
        senders: dict[str, Sender],
        results_written: Callable[[], None],
        batch: int = 100,
    ) -> None:
        self._pool = pool
        self._results_written = results_written
        self._outbox = outbox
        self._senders = senders
        self._batch = batch
        self._pump = Pump("delivery worker", self.deliver_due, self._next_due_in, max_idle=5.0)

    def wake(self) -> None:
        self._pump.wake()

    async def run(self) -> None:
        await self._pump.run()

    async def _next_due_in(self) -> float:
        async with self._pool.acquire() as conn:
            due = await q.next_due_in(conn)
        return 5.0 if due is None else due

    async def deliver_due(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await q.claim_due(conn, self._batch)
            for row in rows:
                await self._deliver(conn, row)
        if rows:
            self._results_written()
        return len(rows)

    async def _deliver(self, conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        message = OutboundMessage.model_validate(row["payload"])
        attempt = row["attempts"] + 1
        started = datetime.now(UTC)
        sender = self._senders[message.channel]
        try:
            outcome = await sender.send(conn, message)
        except Exception as exc:  # a sender bug must not stop the other deliveries
            log.exception("sender for %s failed", message.channel)
            outcome = Outcome("retry", reason=f"{type(exc).__name__}: {exc}")
        if outcome.status == "retry" and give_up(attempt):
            outcome = Outcome("failed", outcome.reason, outcome.error_code)
        DELIVERIES.labels(message.channel, outcome.status).inc()
        await q.record_attempt(
            conn, message.message_id, attempt, started, outcome.status, outcome.error_code,
            outcome.reason,
        )
        if outcome.status == "retry":
            await q.retry_later(
                conn, message.message_id, attempt, retry_delay_seconds(attempt),
                outcome.reason or "",
            )
            return
        await q.finish(
            conn, message.message_id, outcome.status, attempt, outcome.reason,
            outcome.provider_message_id,
        )
        result = DeliveryResult(
            event_id=f"{message.message_id}:result",
            message_id=message.message_id,
            shop_id=message.shop_id,
            conversation_id=message.conversation_id,
            channel=message.channel,
            status=outcome.status,
            reason=outcome.reason,
            error_code=outcome.error_code,
            provider_message_id=outcome.provider_message_id,
            attempts=attempt,
            at=datetime.now(UTC),
        )
        await self._outbox.add(conn, DELIVERY_RESULTS, result)
