"""The life cycle every service shares.

Start: the HTTP side door first (so /healthz answers while dependencies come up), then
PostgreSQL (with migrations), the topics, the producer and the outbox relay; then the service's
`build` function wires its handlers with those at hand, and its consume loops start.
Stop on SIGTERM/SIGINT: stop fetching, finish the batch in flight and commit, drain the outbox,
flush the producer, close the pool.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from fastapi import FastAPI

from shared.config import Settings, get_settings, http_port_for, start_up_problems
from shared.db.migrate import migrate
from shared.db.outbox import Outbox
from shared.db.pool import create_pool, record_pool_usage
from shared.db.pruning import Pruner, keep_seconds, rules_for
from shared.health import Health
from shared.http import HttpServer, side_door
from shared.kafka.admin import BrokerProbe, wait_for_broker
from shared.kafka.consumer import ConsumeLoop, Subscription
from shared.kafka.producer import EventProducer
from shared.kafka.relay import OutboxRelay
from shared.logs import setup_logging
from shared.retry import Retry

log = logging.getLogger(__name__)


class Service:
    def __init__(self, name: str, settings: Settings | None = None, app: FastAPI | None = None):
        self.name = name
        self.settings = settings or get_settings()
        self.health = Health()
        self.app = side_door(app or FastAPI(title=f"inbox {name}"), self.health)
        self.outbox = Outbox(name)
        self.pool: asyncpg.Pool
        self.producer: EventProducer
        self.relay: OutboxRelay
        self._loops: list[ConsumeLoop] = []
        self._loop_specs: list[tuple[str, Sequence[Subscription]]] = []
        self._background: list[Callable[[], Awaitable[None]]] = []
        self._on_applied: list[Callable[[], None]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task] = []
        self._stopped = asyncio.Event()
        port = http_port_for(name, self.settings)
        self.http = HttpServer(self.app, self.settings.http.host, port)
        self.health.register("postgres")
        self.health.register("kafka")

    # --- what a service declares ----------------------------------------------------------------

    def consume(self, subscriptions: Sequence[Subscription], name: str | None = None) -> None:
        self._loop_specs.append((name or self.name, subscriptions))

    async def caught_up(self) -> None:
        """Wait until every consume loop has worked off the backlog it found at start."""
        while len(self._loops) < len(self._loop_specs):
            await asyncio.sleep(0.05)
        for consume_loop in self._loops:
            await consume_loop.caught_up.wait()

    def background(self, task: Callable[[], Awaitable[None]]) -> None:
        self._background.append(task)

    def on_applied(self, callback: Callable[[], None]) -> None:
        """Called once each consumed batch's effects are committed to PostgreSQL (e.g. to wake
        a worker that acts on them)."""
        self._on_applied.append(callback)

    def on_stop(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._on_stop.append(hook)

    # --- running --------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopped.set()

    async def run(self, build: Callable[[Service], Awaitable[None] | None]) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        http_task = asyncio.create_task(self.http.serve(), name="http")
        starting = asyncio.create_task(self._start(build), name="start")
        stopped = asyncio.create_task(self._stopped.wait(), name="stopped")
        try:
            # A stop asked while the start still waits for a dependency ends the wait.
            await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # a start that failed for good raises here
                log.info("%s ready to consume; side door on http://%s:%d",
                         self.name, self.http.host, self.http.port)
                await stopped
        finally:
            for task in (starting, stopped):
                task.cancel()
            await asyncio.gather(starting, stopped, return_exceptions=True)
            await self._shutdown()
            self.http.stop()
            await http_task

    async def _connect_db(self) -> None:
        def unreachable(exc: BaseException, delay: float) -> None:
            self.health.set("postgres", False, str(exc))
            log.warning("PostgreSQL not reachable (%s); retrying in %.1fs", exc, delay)

        # Until it answers: a stop meanwhile cancels the start, and with it this wait.
        connecting = Retry((OSError, asyncpg.PostgresError), initial=0.5, cap=5.0,
                           on_retry=unreachable)
        self.pool = await connecting.call(lambda: create_pool(self.settings))
        if self.settings.database.migrate_on_start:
            async with self.pool.acquire() as conn:
                await migrate(conn)
        self.health.set("postgres", True, "connected")

    def _applied(self) -> None:
        self.relay.wake()
        for callback in self._on_applied:
            callback()

    async def _start(self, build: Callable[[Service], Awaitable[None] | None]) -> None:
        await self._connect_db()
        self._tasks.append(asyncio.create_task(self._watch_db(), name="db-watch"))
        await wait_for_broker(
            self.settings, report=lambda reason: self.health.set("kafka", False, reason))
        self.producer = EventProducer(self.settings, self.name)
        await self.producer.start()
        self.health.set("kafka", True, "producer connected")
        self._tasks.append(asyncio.create_task(self._watch_kafka(), name="kafka-watch"))
        self.relay = OutboxRelay(self.pool, self.producer, self.name)
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        built = build(self)
        if asyncio.iscoroutine(built):
            await built
        for name, subscriptions in self._loop_specs:
            consume_loop = ConsumeLoop(
                name=name,
                settings=self.settings,
                subscriptions=subscriptions,
                producer=self.producer,
                health=self.health,
                pool=self.pool,
                on_applied=self._applied,
            )
            self._loops.append(consume_loop)
            self._tasks.append(asyncio.create_task(consume_loop.run(), name=f"consume-{name}"))
        for task in self._background:
            self._tasks.append(asyncio.create_task(task(), name=getattr(task, "__name__", "bg")))
        # The bookkeeping tables this service owns stay bounded (shared/db/pruning.py).
        pruner = Pruner(self.pool, rules_for(self.name),
                        keep_seconds(self.settings.kafka.customer_data_retention_ms))
        self._tasks.append(asyncio.create_task(pruner.run(), name="pruning"))

    async def _watch(self, check: str, probe: Callable[[], Awaitable[object]],
                     ok_detail: str, after: Callable[[], None] | None = None) -> None:
        """Readiness follows the dependency: `probe` every 5 s while it answers (3 s to answer),
        every second while it does not, so that a recovery shows soon. (Each probe is a request
        the broker and the database serve: at rest they are most of what a service costs.)"""
        while True:
            try:
                async with asyncio.timeout(3):
                    await probe()
                self.health.set(check, True, ok_detail)
                pause = 5.0
            except Exception as exc:
                self.health.set(check, False, f"{type(exc).__name__}: {exc}".rstrip(": "))
                pause = 1.0
            if after is not None:
                after()
            await asyncio.sleep(pause)

    async def _watch_db(self) -> None:
        await self._watch("postgres", lambda: self.pool.fetchval("SELECT 1"), "connected",
                          after=lambda: record_pool_usage(self.pool))

    async def _watch_kafka(self) -> None:
        probe = BrokerProbe(self.settings)
        try:
            await self._watch("kafka", probe.check, "broker answers")
        finally:
            await probe.close()

    async def _shutdown(self) -> None:
        grace = self.settings.shutdown_grace_seconds
        for consume_loop in self._loops:
            consume_loop.stop()
        loop_tasks = [t for t in self._tasks if t.get_name().startswith("consume-")]
        if loop_tasks:
            _, pending = await asyncio.wait(loop_tasks, timeout=grace)
            for task in pending:
                task.cancel()
        for hook in self._on_stop:
            await hook()
        if hasattr(self, "relay"):
            self.relay.stop()
        relay_tasks = [t for t in self._tasks if t.get_name() == "outbox-relay"]
        if relay_tasks:
            await asyncio.wait(relay_tasks, timeout=grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if hasattr(self, "producer"):
            await self.producer.stop()
        if hasattr(self, "pool"):
            await self.pool.close()
        log.info("%s stopped", self.name)


def run_service(
    build: Callable[[Service], Awaitable[None] | None],
    name: str,
    app_factory: Callable[[], FastAPI] | None = None,
) -> None:
    """Entry point of `python -m services.<name>`."""
    settings = get_settings()
    setup_logging(settings, name)
    problems = start_up_problems(settings)
    if problems:
        for problem in problems:
            log.critical("%s cannot start: %s", name, problem)
        raise SystemExit(2)
    service = Service(name, settings, app_factory() if app_factory else None)

    asyncio.run(service.run(build))
