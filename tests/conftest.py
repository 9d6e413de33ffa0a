"""The test harness: a real broker, a real PostgreSQL and the services as real processes.

One broker and one database per test session (started here, stopped at the end); tests keep out
of each other's way with their own shop ids. The broker is Apache Kafka where Java 17+ and Maven
are present (Tansu otherwise, or with INBOX_BROKER=tansu); the session's first line says which.
PostgreSQL is `DATABASE_URL` when set (a fresh database is created on it and dropped
afterwards), else an embedded server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from inbox.dev.broker import Broker, choose_broker, settings_env, start_broker
from inbox.dev.postgres import start_postgres
from inbox.dev.processes import free_port, spawn, stop
from shared.config import DatabaseSettings, KafkaSettings, Settings
from shared.db.migrate import migrate_database
from shared.db.pool import create_pool
from shared.kafka.admin import ensure_topics, topic_partitions
from shared.kafka.client import consumer_options
from shared.kafka.producer import EventProducer

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
#: Signs the Shopify compliance webhooks the tests send.
SHOPIFY_API_SECRET = "test-shopify-api-secret"
#: Short in tests, so the offline-by-timeout transition is quick to observe.
PRESENCE_TIMEOUT = 3.0


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="inbox-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> str:
    kind, missing = choose_broker()
    name = "Apache Kafka" if kind == "kafka" else "Tansu"
    return f"broker: {name}" + (f" ({missing})" if missing else "")


@pytest.fixture(scope="session")
def kafka_broker(workdir: Path) -> Iterator[Broker]:
    b = start_broker(log_path=workdir / "broker.log")
    yield b
    b.stop()


@pytest.fixture(scope="session")
def broker(kafka_broker: Broker) -> str:
    return kafka_broker.bootstrap_servers


@pytest.fixture(scope="session")
def database_url(workdir: Path) -> Iterator[str]:
    given = os.environ.get("DATABASE_URL")
    if given:
        name = f"inbox_test_{uuid.uuid4().hex[:10]}"

        async def admin(sql: str) -> None:
            conn = await asyncpg.connect(given)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        base, _, _ = given.rpartition("/")
        yield f"{base}/{name}"
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        pg = start_postgres(
            workdir / "pgdata", temporary=True, durable=False, log_path=workdir / "pg.log"
        )
        yield pg.url
        pg.stop()


@pytest.fixture(scope="session")
def settings(kafka_broker: Broker, database_url: str) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers,
                            **kafka_broker.client_settings, topic_partitions=4),
        database=DatabaseSettings(url=database_url),
    )


@pytest.fixture(scope="session")
async def prepared(settings: Settings) -> Settings:
    await migrate_database(settings.database.url)
    await ensure_topics(settings)
    return settings


@pytest.fixture(scope="session")
async def db(prepared: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(prepared, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def producer(prepared: Settings) -> AsyncIterator[EventProducer]:
    p = EventProducer(prepared, "tests")
    await p.start()
    yield p
    await p.stop()


class SmtpCatcher:
    """A real SMTP server (aiosmtpd) the notifier delivers to; tests read what arrived and can
    refuse addresses or take the server down."""

    def __init__(self) -> None:
        import email
        import email.policy

        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.received: list[Any] = []
        self.refused: set[str] = set()
        #: Seconds to take over each message (a slow mail server), 0 for none.
        self.delay = 0.0
        catcher = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, options):
                if address in catcher.refused:
                    return "550 5.1.1 mailbox unavailable"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                if catcher.delay:
                    await asyncio.sleep(catcher.delay)
                catcher.received.append(
                    email.message_from_bytes(envelope.content, policy=email.policy.default)
                )
                return "250 Message accepted"

        # A stopped Controller cannot start again: each start makes a new one.
        self._new_controller = lambda: Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller: Any = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller = self._new_controller()
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def to(self, address: str) -> list[Any]:
        return [m for m in self.received if address in str(m["To"])]


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpCatcher]:
    catcher = SmtpCatcher()
    catcher.start()
    yield catcher
    with contextlib.suppress(Exception):
        catcher.stop()


class ServiceProcess:
    """One service run as `python -m services.<name>`, as in production."""

    def __init__(self, name: str, settings: Settings, workdir: Path, instance: str = "") -> None:
        self.name = name
        self.port = free_port()
        self.log_path = workdir / f"{name}{instance}.log"
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            **settings_env(settings),
            "DATABASE_URL": settings.database.url,
            "INBOX_ENVIRONMENT": "development",
            "KAFKA_TOPIC_PARTITIONS": str(settings.kafka.topic_partitions),
            "HTTP_PORT": str(self.port),
            "PRESENCE_TIMEOUT_SECONDS": str(PRESENCE_TIMEOUT),
            "DELIVERY_STALE_SEND_SECONDS": "5",
            "PYTHONPATH": str(ROOT),
        }
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = spawn(
            [sys.executable, "-m", f"services.{self.name}"],
            env=self.env,
            log_path=self.log_path,
            cwd=ROOT,
        )

    async def wait_ready(self, timeout: float = 60) -> None:
        await wait_answering(f"{self.url}/readyz", self.process, self.name, self.log_tail,
                             timeout)

    def kill(self) -> None:
        import signal

        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        return stop(self.process)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def wait_answering(url: str, process: Any, name: str, log: Callable[[], str],
                         timeout: float) -> None:
    """Until `url` answers 200; fails at once, with `log()`, if the process exits first."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{log()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{name} not ready:\n{log()}")


#: The Messenger app's secrets in the tests; the Graph API stand-in signs webhooks with them.
MESSENGER_APP_SECRET = "test-messenger-app-secret"
MESSENGER_VERIFY_TOKEN = "test-messenger-verify-token"


class GraphApiStandIn:
    """Meta's Graph API stand-in (`python -m inbox.dev.graph_api`), a real process the notifier
    reaches through MESSENGER_GRAPH_URL and that sends signed webhooks to the gateway."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log_path = workdir / "graph_api.log"
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = spawn(
            [sys.executable, "-m", "inbox.dev.graph_api", "--port", str(self.port),
             "--app-secret", MESSENGER_APP_SECRET, "--verify-token", MESSENGER_VERIFY_TOKEN],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            log_path=self.log_path,
            cwd=ROOT,
        )

    async def wait_ready(self, timeout: float = 30) -> None:
        await wait_answering(f"{self.url}/healthz", self.process, "graph API stand-in",
                             lambda: str(self.log_path), timeout)


@pytest.fixture(scope="session")
async def graph_api(workdir: Path) -> AsyncIterator[GraphApiStandIn]:
    stand_in = GraphApiStandIn(workdir)
    stand_in.start()
    try:
        await stand_in.wait_ready()
        yield stand_in
    finally:
        stop(stand_in.process)


@pytest.fixture
async def meta(graph_api: GraphApiStandIn) -> Any:
    """Meta's side of the stand-in: a customer writing, the sends the Page made."""
    from tests.messenger_support import Meta  # it imports this module

    return Meta(graph_api.url)


@pytest.fixture
async def clock(stack: dict[str, ServiceProcess], meta: Any) -> AsyncIterator[Any]:
    """The notifier's and Meta's clocks, moved together; put back after the test."""
    from tests.messenger_support import Clock

    moved = Clock(stack["notifier"].url, meta)
    yield moved
    await moved.set(0)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium, one per test module."""
    from tests.test_browser_support import launch

    async for b in launch():
        yield b


def backbone(settings: Settings, workdir: Path, smtp_url: str, graph_api_url: str
             ) -> dict[str, ServiceProcess]:
    """Every service, configured as the tests run them (not started)."""
    services = {
        name: ServiceProcess(name, settings, workdir)
        for name in ("router", "notifier", "gateway", "presence", "classifier")
    }
    for service in services.values():
        service.env["SMTP_URL"] = smtp_url
        service.env["EMAIL_FROM_ADDRESS"] = "inbox@shop-mail.example"
    services["notifier"].env["INBOUND_SMTP_PORT"] = str(free_port())
    services["notifier"].env.update({
        "MESSENGER_GRAPH_URL": graph_api_url,
        "DEV_CLOCK_CONTROL": "true",  # the Messenger tests move the planner's clock
        "MESSENGER_RATE_LIMIT_PAUSE_SECONDS": "1",
    })
    services["gateway"].env.update({
        "MESSENGER_APP_SECRET": MESSENGER_APP_SECRET,
        "MESSENGER_VERIFY_TOKEN": MESSENGER_VERIFY_TOKEN,
        "SHOPIFY_API_SECRET": SHOPIFY_API_SECRET,
        # Every test signs in from 127.0.0.1 (the fuzz test too): limit per address only.
        "SIGN_IN_ATTEMPTS_PER_CLIENT": "100000",
        "STOREFRONT_CHAT_STARTS_PER_MINUTE": "100000",
    })
    return services


@contextlib.asynccontextmanager
async def running(services: dict[str, ServiceProcess], graph_api: GraphApiStandIn
                  ) -> AsyncIterator[dict[str, ServiceProcess]]:
    """Start `services` with the stand-in's webhooks going to their gateway; stop them after."""
    for service in services.values():
        service.start()
    try:
        async with httpx.AsyncClient() as client:
            await client.put(f"{graph_api.url}/admin/webhook",
                             json={"url": f"{services['gateway'].url}/webhooks/messenger"})
        await asyncio.gather(*(s.wait_ready() for s in services.values()))
        yield services
    finally:
        for service in services.values():
            if service.process and service.process.poll() is None:
                service.terminate()


@pytest.fixture(scope="session")
async def stack(
    prepared: Settings, workdir: Path, smtp: SmtpCatcher, graph_api: GraphApiStandIn
) -> AsyncIterator[dict[str, ServiceProcess]]:
    async with running(backbone(prepared, workdir, smtp.url, graph_api.url), graph_api) as s:
        yield s


async def eventually(
    probe: Callable[[], Awaitable[T]], timeout: float = 20.0, interval: float = 0.1
) -> T:
    """Await `probe` until it returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    value: T = await probe()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def read_topic(
    settings: Settings,
    topic: str,
    match: Callable[[Any], bool],
    expected: int = 1,
    timeout: float = 20.0,
    **options: Any,
) -> list[Any]:
    """Read `topic` from the start (all partitions) until `expected` records match; `options`
    for the consumer (e.g. `isolation_level`)."""
    consumer = AIOKafkaConsumer(**consumer_options(settings, "tests-read", **options))
    await consumer.start()
    try:
        tps = await topic_partitions(settings, [topic])
        assert tps, f"topic {topic} does not exist"
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(found) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                found.extend(r for r in records if match(r))
        return found
    finally:
        await consumer.stop()
