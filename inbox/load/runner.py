"""A load session against a running stack: shops first, a warm-up, then phases of open-loop
traffic, each followed to its effects and checked in PostgreSQL.

    async with LoadSession(settings, shops=5) as session:
        report = await session.phase(rate=200, duration=30, mix=Mix())

The benchmarks run several phases in one session (e.g. stepping the rate up).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from inbox.demo import demo_shop, publish
from inbox.load.follow import Follower, Tracker
from inbox.load.messenger import STAFF as MESSENGER_STAFF
from inbox.load.messenger import connect_pages
from inbox.load.report import LoadReport
from inbox.load.schedule import OpenLoop, Pacing, run_open_loop
from inbox.load.traffic import Mix, Planned, Traffic, heldout_texts
from shared.config import Settings
from shared.kafka.producer import EventProducer
from shared.topics import ORDERS_EVENTS

#: Texts whose probability is this close to the threshold are left out of the traffic: the
#: classifier's batches may round differently, and the generator must know what gets tagged.
_MARGIN = 0.002


def tagging_oracle(threshold: float) -> tuple[Callable[[str], bool] | None, dict[str, Any], str]:
    """Which texts the classifier tags (the same model, run here), the texts to use, a note."""
    texts = heldout_texts()
    try:
        from services.classifier.model import load_model

        model = load_model()
    except Exception as exc:  # the model is part of the project; without it, tags are not followed
        return None, dict(texts), f"tags not followed: the model did not load ({exc})"
    usable: dict[str, list[str]] = {}
    tagged: set[str] = set()
    for lang, found in texts.items():
        predictions = model.predict(list(found), threshold)
        for text, p in zip(found, predictions, strict=True):
            if abs(p.probability - threshold) < _MARGIN:
                continue
            usable.setdefault(lang, []).append(text)
            if p.topic is not None:
                tagged.add(text)
    share = len(tagged) / max(1, sum(len(v) for v in usable.values()))
    return tagged.__contains__, usable, f"model {model.version}: {share:.0%} of the texts tagged"


class LoadSession:
    def __init__(
        self,
        settings: Settings,
        *,
        shops: int = 5,
        seed: int = 1,
        new_thread_share: float = 0.3,
        progress: bool = True,
        out: Callable[[str], object] = print,
        run_id: str | None = None,
        gateway_url: str | None = None,
        graph_url: str | None = None,
    ) -> None:
        """With `gateway_url` and `graph_url` (Meta's Graph API stand-in), each shop's Messenger
        channel is connected to its Page there, so replies on Messenger are really sent."""
        if shops < 1:
            raise ValueError("at least one shop")
        self.settings = settings
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.shop_ids = [f"load-{self.run_id}-{i:02d}" for i in range(shops)]
        self.progress = progress
        self.out = out
        tagged, texts, self.model_note = tagging_oracle(settings.classifier_threshold)
        self.traffic = Traffic(self.shop_ids, run_id=self.run_id, seed=seed, tagged=tagged,
                               texts=texts, new_thread_share=new_thread_share)
        self.tracker = Tracker()
        self.follower = Follower(settings, self.tracker, self.run_id,
                                 on_conversation=self.traffic.confirm)
        self.gateway_url, self.graph_url = gateway_url, graph_url
        #: shop id -> the API token of its staff member with the messaging permission
        self.staff_tokens: dict[str, str] = {}
        self.producer = EventProducer(settings, "load")
        self.pool: asyncpg.Pool | None = None
        self.produce_errors: list[dict[str, Any]] = []
        #: Events the producer refused (they never left): nothing is expected of them, in
        #: PostgreSQL either.
        self._refused_ids: set[str] = set()
        self._refused_orders_created = 0
        self._unacked = 0

    # --- life cycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> LoadSession:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, warmup: bool = True, shop_timeout: float = 60.0) -> None:
        self.pool = await asyncpg.create_pool(self.settings.database.url, min_size=1, max_size=2)
        await self.producer.start()
        await self.follower.start()
        await self._create_shops(shop_timeout)
        if self.gateway_url and self.graph_url:
            await connect_pages(self.gateway_url, self.graph_url,
                                {s.shop_id: s.page_id for s in self.traffic.shops},
                                self.staff_tokens, self.run_id)
        if warmup:
            await self._warm_up()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.producer.stop()
        await self.follower.stop()
        if self.pool is not None:
            await self.pool.close()

    async def _create_shops(self, timeout: float) -> None:
        """Shops, staff, products and discount codes on the shop-data topics, as the shop
        platform publishes them; then wait until the router has stored them all."""
        for shop_id in self.shop_ids:
            shop = demo_shop(shop_id, token_seed=f"load-{self.run_id}")
            self.staff_tokens[shop_id] = shop.tokens[MESSENGER_STAFF]
            # The demo's two past orders would race their shop (rejected as an unknown shop):
            # a load shop's orders are the ones the traffic places.
            shop.events = [(topic, e) for topic, e in shop.events if topic != ORDERS_EVENTS]
            await publish(self.producer, shop)
        assert self.pool is not None
        n = len(self.shop_ids)
        deadline = time.monotonic() + timeout
        while True:
            row = await self.pool.fetchrow(
                """SELECT (SELECT count(*) FROM shops WHERE shop_id = ANY($1)) AS shops,
                          (SELECT count(*) FROM staff WHERE shop_id = ANY($1)) AS staff,
                          (SELECT count(*) FROM products WHERE shop_id = ANY($1)) AS products,
                          (SELECT count(*) FROM discount_codes WHERE shop_id = ANY($1)) AS codes""",
                self.shop_ids,
            )
            if (row["shops"], row["staff"], row["products"], row["codes"]) == (n, 3 * n, 4 * n,
                                                                                2 * n):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the router did not store the {n} shops within {timeout:.0f}s "
                                   f"({dict(row)}): is the stack running?")
            await asyncio.sleep(0.2)

    async def _warm_up(self, timeout: float = 90.0) -> None:
        """One online-store chat per shop and one reply, each followed to its effects: proves
        every service consumes (group joins done) and gives replies conversations to go to."""
        texts = [t for lang in ("en", "de") for t in self.traffic.texts.get(lang, ())
                 if self.traffic.tagged(t)] or [None]
        for i, shop in enumerate(self.traffic.shops):
            thread = self.traffic.new_thread(shop, channel="online_store_chat")
            await self._send(self.traffic.message(thread, texts[i % len(texts)]),
                             time.perf_counter())
        await self._settle(timeout, "warm-up messages")
        await self._send(self.traffic.reply(), time.perf_counter())
        await self._settle(timeout, "warm-up reply")

    async def _settle(self, timeout: float, what: str) -> None:
        await self.producer.flush()
        deadline = time.monotonic() + timeout
        while self.tracker.pending:
            if time.monotonic() > deadline:
                paths = sorted({p for p, _ in self.tracker.pending.values()})
                raise TimeoutError(f"{what}: no {', '.join(paths)} within {timeout:.0f}s: are the "
                                   "router, classifier and notifier running?"
                                   + self._error_hint())
            await asyncio.sleep(0.05)

    def _error_hint(self) -> str:
        errors = self.follower.errors + self.produce_errors
        return f" (first error: {errors[0]})" if errors else ""

    # --- sending --------------------------------------------------------------------------------

    async def _send(self, planned: Planned, due: float) -> None:
        self.tracker.expect(planned.expects, due)
        try:
            future = await self.producer.send_raw(planned.topic, planned.value, planned.key)
        except Exception as exc:
            self._refused(planned)
            self.produce_errors.append({"kind": "produce", "topic": planned.topic,
                                        "error": f"{type(exc).__name__}: {exc}"})
            return
        self._unacked += 1
        future.add_done_callback(lambda f, p=planned: self._acked(f, p))

    def _acked(self, future: asyncio.Future, planned: Planned) -> None:
        self._unacked -= 1
        if future.cancelled() or future.exception() is not None:
            self._refused(planned)
            self.produce_errors.append({
                "kind": "produce", "topic": planned.topic,
                "error": "cancelled" if future.cancelled() else repr(future.exception())})

    def _refused(self, planned: Planned) -> None:
        self.tracker.forget(planned.expects)
        self._refused_ids.add(planned.event_id)
        if planned.kind == "order" and json.loads(planned.value).get("type") == "created":
            self._refused_orders_created += 1

    def _orders_expected(self) -> int:
        return self.traffic.orders_created() - self._refused_orders_created

    # --- one phase ------------------------------------------------------------------------------

    async def phase(
        self,
        rate: float,
        duration: float,
        mix: Mix | None = None,
        *,
        grace: float = 15.0,
        settle: float = 1.0,
        check_database: bool = True,
    ) -> LoadReport:
        """Send at `rate` events/s for `duration` s (open loop), then wait up to `grace` s for
        the effects still awaited and `settle` s more for duplicates."""
        self.traffic.mix = mix or self.traffic.mix
        counts_before = dict(self.traffic.counts)
        errors_before = len(self.follower.errors), len(self.produce_errors)
        message_ids: list[str] = []
        plan = OpenLoop(rate, duration)
        started = time.perf_counter()
        self.tracker.begin_phase(started)

        async def send(_i: int, due: float) -> None:
            planned = self.traffic.next()
            if planned.kind == "message":
                message_ids.append(planned.event_id)
            await self._send(planned, due)

        pacing = Pacing()
        progress = asyncio.create_task(self._progress(started, plan, lambda: pacing.sent))
        try:
            await run_open_loop(plan, send, pacing=pacing)
            await self.producer.flush()
            deadline = time.perf_counter() + grace
            while self.tracker.pending and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            if settle > 0:
                await asyncio.sleep(settle)
        finally:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
        paths = self.tracker.close_phase()
        database = await self.check_database(message_ids, grace) if check_database else {}
        sent = {k: self.traffic.counts[k] - counts_before[k] for k in self.traffic.counts}
        notes = [self.model_note]
        if pacing.max_late > 0.1:
            notes.append(f"the generator fell {pacing.max_late * 1000:,.0f} ms behind its "
                         "schedule at worst (latencies still count from the due times)")
        return LoadReport(
            target_rate=rate, duration=duration, mix=str(self.traffic.mix),
            shops=len(self.shop_ids), sent=sent, achieved_rate=pacing.achieved_rate,
            max_send_late_ms=pacing.max_late * 1000,
            paths={name: p for name, p in paths.items() if p.expected or p.duplicated},
            errors=self.follower.errors[errors_before[0]:]
            + self.produce_errors[errors_before[1]:],
            database=database, notes=notes,
        )

    async def _progress(self, started: float, plan: OpenLoop, sent: Callable[[], int]) -> None:
        if not self.progress:
            return
        last_seen, tick = self.tracker.seen_total, 1
        while True:
            await asyncio.sleep(max(0.0, started + tick - time.perf_counter()))
            now = time.perf_counter()
            seen = self.tracker.seen_total
            oldest = self.tracker.oldest_pending(now) * 1000
            state = (f"sent {sent():>8,}" if tick <= plan.duration + 0.5
                     else f"{'draining':>13}")
            self.out(
                f"[{tick:>4}s] {state} | effects seen {seen - last_seen:>6,}/s | in flight "
                f"{len(self.tracker.pending):>6,} (oldest {oldest:>6,.0f} ms)"
                f" | follow lag {await self.follower.lag():>5,} | errors "
                f"{len(self.follower.errors) + len(self.produce_errors)}"
            )
            last_seen, tick = seen, tick + 1

    # --- PostgreSQL -----------------------------------------------------------------------------

    async def check_database(self, message_ids: list[str], patience: float = 10.0
                             ) -> dict[str, Any]:
        """Customer messages stored once each (by source id), timeline items once per message,
        orders stored: waits up to `patience` s for the last of them. (What the producer
        refused never left: it is not expected.)"""
        assert self.pool is not None
        message_ids = [i for i in message_ids if i not in self._refused_ids]
        deadline = time.monotonic() + patience
        while True:
            row = await self.pool.fetchrow(
                """SELECT
                     (SELECT count(DISTINCT source_id) FROM messages
                      WHERE shop_id = ANY($1) AND source_id = ANY($2)) AS stored,
                     (SELECT count(*) FROM orders
                      WHERE shop_id = ANY($1) AND order_id LIKE $3) AS orders""",
                self.shop_ids, message_ids, f"{self.run_id}-o%",
            )
            done = (row["stored"] == len(set(message_ids))
                    and row["orders"] == self._orders_expected())
            if done or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        duplicates = await self.pool.fetchrow(
            """SELECT
                 (SELECT count(*) FROM (
                    SELECT 1 FROM messages WHERE shop_id = ANY($1) AND source_id LIKE $2
                    GROUP BY shop_id, source_id HAVING count(*) > 1) d) AS messages,
                 (SELECT count(*) FROM (
                    SELECT 1 FROM timeline_items t JOIN conversations c USING (conversation_id)
                    WHERE c.shop_id = ANY($1) AND t.message_id IS NOT NULL
                      AND t.kind IN ('customer_message', 'merchant_reply')
                    GROUP BY t.message_id, t.kind HAVING count(*) > 1) d) AS items""",
            self.shop_ids, f"{self.run_id}-%",
        )
        return {
            "messages_expected": len(set(message_ids)),
            "messages_stored": row["stored"],
            "missing": len(set(message_ids)) - row["stored"],
            "orders_expected": self._orders_expected(),
            "orders_stored": row["orders"],
            "missing_orders": self._orders_expected() - row["orders"],
            "duplicate_messages": duplicates["messages"],
            "duplicate_timeline_items": duplicates["items"],
        }
