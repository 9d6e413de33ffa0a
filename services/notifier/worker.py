"""The delivery worker: takes due deliveries, sends them, records every attempt and the result.

Deliveries are claimed with `FOR UPDATE SKIP LOCKED`, so notifier instances share the work and a
delivery recorded as sent is never attempted again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from prometheus_client import Counter

from services.notifier import queries as q
from services.notifier.rules import give_up, retry_delay_seconds
from services.notifier.senders import Outcome, RemoteSender, Sender
from shared.contracts import DeliveryResult, OutboundMessage
from shared.db.outbox import Outbox
from shared.pump import Pump
from shared.topics import DELIVERY_RESULTS

log = logging.getLogger(__name__)

UNKNOWN_OUTCOME = (
    "the notifier stopped while sending; it is not sent again, to avoid a duplicate"
)

DELIVERIES = Counter(
    "notifier_deliveries_total",
    "Delivery attempts by channel and result (sent, failed, retry).",
    ["channel", "result"],
)
FAILURES = Counter(
    "notifier_delivery_failures_total",
    "Failed or retried delivery attempts by channel and error code (e.g. smtp_550, 551).",
    ["channel", "error_code"],
)


class DeliveryWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        outbox: Outbox,
        senders: dict[str, Sender | RemoteSender],
        results_written: Callable[[], None],
        stale_send_seconds: float,
        batch: int = 100,
    ) -> None:
        self._stale_send_seconds = stale_send_seconds
        #: Whose claims are whose: a claim released as stale and taken by another worker is
        #: never sent by this one too.
        self._worker_id = uuid.uuid4().hex
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
        recovered = await self._fail_stale_sends()
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await q.claim_due(conn, self._batch)
            remote = []
            for row in rows:
                message = OutboundMessage.model_validate(row["payload"])
                sender = self._senders[message.channel]
                attempt = row["attempts"] + 1
                if isinstance(sender, RemoteSender):
                    await q.mark_claimed(conn, message.message_id, self._worker_id)
                    remote.append((message, sender, attempt))
                else:
                    started = datetime.now(UTC)
                    outcome = await self._attempt(sender.send(conn, message), message)
                    await self._record(conn, message, attempt, started, outcome)
        # Conversations in parallel; within one, in order, each recorded before the next leaves
        # (an email cites the ones sent before it).
        threads: dict[str, list[tuple[OutboundMessage, RemoteSender, int]]] = defaultdict(list)
        for item in remote:
            threads[item[0].conversation_id].append(item)
        await asyncio.gather(*(self._send_remote(items) for items in threads.values()))
        if rows or recovered:
            self._results_written()
        return len(rows) + recovered

    async def _send_remote(self, items: list[tuple[OutboundMessage, RemoteSender, int]]) -> None:
        for message, sender, attempt in items:
            # Recorded as in flight just before it leaves: after a crash it is never resent.
            async with self._pool.acquire() as conn, conn.transaction():
                if not await q.mark_sending(conn, message.message_id, attempt, self._worker_id):
                    continue  # the claim went stale and was released: another round sends it
            started = datetime.now(UTC)
            outcome = await self._attempt(sender.send(message), message)
            async with self._pool.acquire() as conn, conn.transaction():
                await self._record(conn, message, attempt, started, outcome)

    @staticmethod
    async def _attempt(sending: Awaitable[Outcome], message: OutboundMessage) -> Outcome:
        try:
            return await sending
        except Exception as exc:  # a sender bug must not stop the other deliveries
            log.exception("sender for %s failed", message.channel)
            return Outcome("retry", reason=f"{type(exc).__name__}: {exc}")

    async def _fail_stale_sends(self) -> int:
        """A send in flight when a notifier died: whether it left is unknown, and sending it
        again could deliver it twice, so it is reported failed with that reason instead."""
        async with self._pool.acquire() as conn, conn.transaction():
            await q.release_stale_claims(conn, self._stale_send_seconds)
            stale = await q.take_stale_sends(conn, self._stale_send_seconds)
            for row in stale:
                message = OutboundMessage.model_validate(row["payload"])
                await self._record(conn, message, row["attempts"], row["updated_at"], Outcome(
                    "failed", reason=UNKNOWN_OUTCOME, error_code="unknown_outcome"))
        return len(stale)

    async def _record(
        self,
        conn: asyncpg.Connection,
        message: OutboundMessage,
        attempt: int,
        started: datetime,
        outcome: Outcome,
    ) -> None:
        if outcome.status == "retry" and give_up(attempt):
            outcome = Outcome("failed", outcome.reason, outcome.error_code)
        DELIVERIES.labels(message.channel, outcome.status).inc()
        if outcome.status != "sent":
            FAILURES.labels(message.channel, outcome.error_code or "unknown").inc()
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
