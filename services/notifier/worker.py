"""The delivery worker: takes due deliveries, sends them, records every attempt and the result.

Deliveries are claimed with `FOR UPDATE SKIP LOCKED`, so notifier instances share the work and a
delivery recorded as sent is never attempted again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from services.notifier import queries as q
from services.notifier.breaker import Breaker
from services.notifier.rules import give_up, retry_delay_seconds
from services.notifier.senders import Outcome, RemoteSender, Sender
from shared.contracts import DeliveryResult, OutboundMessage
from shared.contracts.base import error_sentence
from shared.db.outbox import Outbox
from shared.db.pool import TRANSIENT_DB_ERRORS
from shared.pump import Pump
from shared.retry import Retry
from shared.topics import DELIVERY_RESULTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unreadable:
    """A delivery whose stored message cannot be read: what its result needs, and why."""

    message_id: str
    shop_id: str
    conversation_id: str
    channel: str
    reason: str


def readable(row: Mapping[str, Any]) -> OutboundMessage | Unreadable:
    """The delivery's message, or why there is none to send."""
    try:
        return OutboundMessage.model_validate(row["payload"])
    except ValidationError as exc:
        return Unreadable(row["message_id"], row["shop_id"], row["conversation_id"],
                          row["channel"], f"the stored message cannot be read: "
                          f"{error_sentence(exc.errors(), limit=2)}")

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

PAUSED = Gauge(
    "notifier_channel_paused",
    "1 while a remote channel's server cannot be reached and its deliveries wait in PostgreSQL "
    "(the circuit breaker is open or probing), else 0.",
    ["channel"],
)


class DeliveryWorker:
    """Claims due deliveries in rounds. A local delivery (the storefront chat mailbox, a channel
    not connected) is done in the claiming transaction. A remote one (SMTP, the Send API) is
    sent by a task of its own, after the earlier sends of its conversation: the rounds go on
    meanwhile, so a slow mail server never holds up the deliveries of other conversations.
    At most `max_in_flight` remote deliveries are in hand (plus one round's worth): beyond that
    the rounds claim local deliveries only, and the rest waits in PostgreSQL (backpressure)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        outbox: Outbox,
        senders: dict[str, Sender | RemoteSender],
        results_written: Callable[[], None],
        stale_send_seconds: float,
        batch: int = 100,
        max_in_flight: int = 200,
    ) -> None:
        self._stale_send_seconds = stale_send_seconds
        #: Whose claims are whose: a claim released as stale and taken by another worker is
        #: never sent by this one too.
        self._worker_id = uuid.uuid4().hex
        self._pool = pool
        self._results_written = results_written
        self._outbox = outbox
        self._senders = senders
        self._remote_channels = sorted(
            c for c, sender in senders.items() if isinstance(sender, RemoteSender))
        self._batch = batch
        self._max_in_flight = max_in_flight
        #: The last send scheduled for each conversation: the next one waits for it.
        self._chains: dict[str, asyncio.Task] = {}
        #: The sends in hand, each with its delivery's message id.
        self._in_flight: dict[asyncio.Task, str] = {}
        self._stale_checked = 0.0
        self._breakers = {c: Breaker() for c in self._remote_channels}
        for channel in self._remote_channels:
            PAUSED.labels(channel).set(0)
        self._pump = Pump("delivery worker", self.deliver_due, self._next_due_in, max_idle=5.0)

    def wake(self) -> None:
        self._pump.wake()

    async def run(self) -> None:
        renewing = asyncio.create_task(self._renew_leases(), name="delivery-leases")
        try:
            await self._pump.run()
        finally:
            renewing.cancel()

    async def _renew_leases(self) -> None:
        """Claims and sends in hand are this worker's while it says so: their `updated_at` is
        renewed well within the stale age, so a slow mail server or database never gets a
        live worker's send reported as of unknown outcome (only a dead worker's)."""
        period = max(0.5, self._stale_send_seconds / 3)
        while True:
            await asyncio.sleep(period)
            if not self._in_flight:
                continue
            try:
                async with self._pool.acquire() as conn:
                    await self._renew(conn)
            except Exception as exc:  # the database away: the next period tries again
                log.warning("renewing delivery leases: %s", exc)

    async def _renew(self, conn: asyncpg.Connection) -> None:
        if self._in_flight:
            await q.renew_leases(conn, self._worker_id, list(self._in_flight.values()))

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def drain(self, timeout: float) -> None:
        """Let the sends in hand finish (on shutdown): none is left half recorded."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)

    def _paused(self, now: float) -> list[str]:
        """Remote channels whose server is unreachable: claimed only as a probe."""
        return [c for c, b in self._breakers.items() if b.state(now) != "closed"]

    async def _next_due_in(self) -> float:
        if self.in_flight >= self._max_in_flight:
            return 5.0  # full hands: a finished send wakes the worker
        now = time.monotonic()
        async with self._pool.acquire() as conn:
            due = await q.next_due_in(conn, self._worker_id, self._paused(now))
        # A paused channel's next probe is due when its pause ends.
        reopen = [b.open_until - now for b in self._breakers.values()
                  if b.state(now) == "open"]
        return min([5.0 if due is None else due, *reopen])

    async def deliver_due(self) -> int:
        recovered = await self._fail_stale_sends()
        now = time.monotonic()
        full = self.in_flight >= self._max_in_flight
        # Full hands: claim only what is delivered locally; remote sends wait their turn. An
        # unreachable server's channel: one delivery at a time, as a probe, once its pause ends.
        skip = self._remote_channels if full else self._paused(now)
        probes = [] if full else [c for c, b in self._breakers.items() if b.may_probe(now)]
        remote: list[tuple[OutboundMessage, Sender | RemoteSender, int]] = []
        local: list[tuple[OutboundMessage | Unreadable, int, datetime, Outcome]] = []
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await q.claim_due(conn, self._worker_id, self._batch, skip)
            for channel in probes:
                probe = await q.claim_due(conn, self._worker_id, 1, only_channel=channel)
                if probe:
                    self._breakers[channel].probing = probe[0]["message_id"]
                rows += probe
            chained: set[str] = set(self._chains)
            for row in rows:
                message = readable(row)
                if isinstance(message, Unreadable):
                    # Nothing to send (a corrupt row, or a customer's data erased meanwhile):
                    # failed with the reason, never a stop for the deliveries after it.
                    local.append((message, row["attempts"] + 1, datetime.now(UTC),
                                  Outcome("failed", message.reason, "unreadable")))
                    continue
                sender = self._senders[message.channel]
                attempt = row["attempts"] + 1
                # After a send of its conversation still in hand: in turn, in the chain.
                if isinstance(sender, RemoteSender) or message.conversation_id in chained:
                    remote.append((message, sender, attempt))
                    chained.add(message.conversation_id)
                else:
                    started = datetime.now(UTC)
                    outcome = await self._attempt(sender.send(conn, message), message)
                    local.append((message, attempt, started, outcome))
            await q.mark_claimed(conn, [m.message_id for m, _, _ in remote], self._worker_id)
            await self._record_many(conn, local)
        for item in remote:
            self._schedule(*item)
        if local or recovered:
            self._results_written()
        return len(rows) + recovered

    def _schedule(self, message: OutboundMessage, sender: Sender | RemoteSender,
                  attempt: int) -> None:
        conversation = message.conversation_id
        previous = self._chains.get(conversation)
        task = asyncio.create_task(self._in_turn(previous, message, sender, attempt),
                                   name="delivery-send")
        self._chains[conversation] = task
        self._in_flight[task] = message.message_id
        task.add_done_callback(lambda t: self._sent(conversation, t))

    def _sent(self, conversation: str, task: asyncio.Task) -> None:
        self._in_flight.pop(task, None)
        if self._chains.get(conversation) is task:
            del self._chains[conversation]
        if not task.cancelled() and task.exception() is not None:
            # The database went away mid-send: the claim (or the send in flight) is picked up
            # by the stale checks, as after a crash.
            log.warning("delivery send: %s", task.exception())
        self._results_written()
        self.wake()  # room for more remote sends

    async def _in_turn(
        self,
        previous: asyncio.Task | None,
        message: OutboundMessage,
        sender: Sender | RemoteSender,
        attempt: int,
    ) -> bool:
        """Delivers after the earlier deliveries of its conversation in this worker's hands,
        each recorded before the next leaves (an email cites the ones sent before it). If one
        of them is to be tried again later, this one is put back behind it, untried: a
        conversation's messages arrive in the order they were written. True once done."""
        if previous is not None:
            await asyncio.wait([previous])
            if previous.cancelled() or previous.exception() is not None or not previous.result():
                async with self._pool.acquire() as conn:
                    await q.put_back(conn, message.message_id, self._worker_id)
                self._drop_probe(message)
                return False
        if isinstance(sender, RemoteSender):
            return await self._send_remote(message, sender, attempt)
        async with self._pool.acquire() as conn, conn.transaction():
            if not await q.mark_sending(conn, message.message_id, attempt, self._worker_id):
                return True  # the claim went stale and was released: another round has it
            started = datetime.now(UTC)
            outcome = await self._attempt(sender.send(conn, message), message)
            await self._record(conn, message, attempt, started, outcome)
        return outcome.status != "retry"

    async def _send_remote(self, message: OutboundMessage, sender: RemoteSender,
                           attempt: int) -> bool:
        # Recorded as in flight just before it leaves: after a crash it is never resent.
        marked = False
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                marked = await q.mark_sending(conn, message.message_id, attempt, self._worker_id)
        finally:
            if not marked:
                self._drop_probe(message)
        if not marked:
            return True  # the claim went stale and was released: another round has it
        started = datetime.now(UTC)
        outcome = await self._attempt(sender.send(message), message)
        self._reached(message.channel, outcome)
        await self._record_surely(message, attempt, started, outcome)
        return outcome.status != "retry"

    async def _record_surely(self, message: OutboundMessage, attempt: int, started: datetime,
                             outcome: Outcome) -> None:
        """The outcome of a send that left is known only here: it is recorded once the database
        answers, however long that takes (the lease is renewed meanwhile), never left to be
        reported as of unknown outcome."""
        def failed(exc: BaseException, delay: float) -> None:
            log.warning("recording the outcome of %s: %s; trying again in %.1fs",
                        message.message_id, exc, delay)

        async for record_try in Retry(TRANSIENT_DB_ERRORS, initial=0.5, cap=5.0,
                                      on_retry=failed):
            with record_try:
                try:
                    async with self._pool.acquire() as conn, conn.transaction():
                        await self._record(conn, message, attempt, started, outcome)
                except asyncpg.UniqueViolationError:
                    if record_try.number == 1:
                        raise
                    # The try before committed; only its answer was lost with the connection.

    def _drop_probe(self, message: OutboundMessage) -> None:
        """`message` will not be attempted now: if it was its channel's probe, another may go."""
        if message.channel in self._breakers:
            self._breakers[message.channel].probe_dropped(message.message_id)

    def _reached(self, channel: str, outcome: Outcome) -> None:
        breaker, now = self._breakers[channel], time.monotonic()
        was = breaker.state(now)
        breaker.record(None if outcome.status == "sent" else outcome.error_code, now)
        state = breaker.state(now)
        if (was == "closed") != (state == "closed"):
            PAUSED.labels(channel).set(0 if state == "closed" else 1)
            if state == "closed":
                log.info("%s: the server answers again; its deliveries go on", channel)
            else:
                log.warning("%s: the server cannot be reached (%s); its deliveries wait, one "
                            "probe at a time", channel, outcome.reason)

    @staticmethod
    async def _attempt(sending: Awaitable[Outcome], message: OutboundMessage) -> Outcome:
        try:
            return await sending
        except Exception as exc:  # a sender bug must not stop the other deliveries
            log.exception("sender for %s failed", message.channel)
            return Outcome("retry", reason=f"{type(exc).__name__}: {exc}")

    async def _fail_stale_sends(self) -> int:
        """A send in flight when a notifier died: whether it left is unknown, and sending it
        again could deliver it twice, so it is reported failed with that reason instead.
        Looked for every few seconds, not every round: nothing goes stale faster."""
        now = time.monotonic()
        if now - self._stale_checked < min(5.0, self._stale_send_seconds / 2):
            return 0
        self._stale_checked = now
        async with self._pool.acquire() as conn, conn.transaction():
            # What this worker has in hand is not stale, however long the database was away
            # (the renewals failed meanwhile): renewed first, in the same transaction.
            await self._renew(conn)
            await q.release_stale_claims(conn, self._stale_send_seconds)
            stale = await q.take_stale_sends(conn, self._stale_send_seconds)
            unknown = Outcome("failed", reason=UNKNOWN_OUTCOME, error_code="unknown_outcome")
            await self._record_many(conn, [
                (readable(row), row["attempts"], row["updated_at"], unknown) for row in stale])
        return len(stale)

    async def _record(
        self,
        conn: asyncpg.Connection,
        message: OutboundMessage,
        attempt: int,
        started: datetime,
        outcome: Outcome,
    ) -> None:
        await self._record_many(conn, [(message, attempt, started, outcome)])

    async def _record_many(
        self,
        conn: asyncpg.Connection,
        attempts: list[tuple[OutboundMessage | Unreadable, int, datetime, Outcome]],
    ) -> None:
        """Attempts and their outcomes, a delivery result for each one finished: a few
        statements for the whole list (round trips are what a busy database charges for)."""
        if not attempts:
            return
        tried, retries, finished, results = [], [], [], []
        now = datetime.now(UTC)
        for message, attempt, started, outcome in attempts:
            if outcome.status == "retry" and give_up(attempt):
                outcome = Outcome("failed", outcome.reason, outcome.error_code)
            DELIVERIES.labels(message.channel, outcome.status).inc()
            if outcome.status != "sent":
                FAILURES.labels(message.channel, outcome.error_code or "unknown").inc()
            tried.append((message.message_id, attempt, started, outcome.status,
                          outcome.error_code, outcome.reason))
            if outcome.status == "retry":
                retries.append((message.message_id, attempt, retry_delay_seconds(attempt),
                                outcome.reason or ""))
                continue
            finished.append((message.message_id, outcome.status, attempt, outcome.reason,
                             outcome.provider_message_id))
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
                at=now,
            )
            results.append((DELIVERY_RESULTS, result.key, result))
        await q.record_attempts(conn, tried)
        if retries:
            await q.retry_later(conn, retries)
        if finished:
            await q.finish(conn, finished)
        await self._outbox.add_many(conn, results)
