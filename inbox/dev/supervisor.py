"""`inbox dev`: the whole system on one machine, with nothing installed beforehand.

Starts the broker (Apache Kafka, data kept in .inbox/kafka; Tansu where Java or Maven is
missing), PostgreSQL (embedded unless DATABASE_URL is set), a mail catcher, a stand-in for Meta's
Graph API (Messenger) and every service as its own process; restarts a service (or the broker)
that crashes; loads the demo shop (its Messenger channel connected to a demo Page); prints where
to look. Ctrl-C or SIGTERM stops everything, services first, the broker last.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from inbox.demo import (
    DEMO_PAGE_ID,
    DEMO_PAGE_TOKEN,
    DemoShop,
    connect_demo_messenger,
    demo_shop,
    publish,
    shop_stored_in,
    turn_on_demo_instant_answer,
)
from inbox.dev.broker import TANSU_COST, Broker, choose_broker, start_broker
from inbox.dev.kafka import DEV_JVM_OPTIONS
from inbox.dev.postgres import EmbeddedPostgres, start_postgres
from inbox.dev.processes import free_port, spawn, stop, wait_for_port
from inbox.dev.prometheus import find_prometheus, prometheus_args, scrape_config
from shared.config import (
    SERVICE_PORTS,
    DatabaseSettings,
    KafkaSettings,
    MailSettings,
    Settings,
)
from shared.db.migrate import migrate_database
from shared.kafka.admin import ensure_topics
from shared.kafka.producer import EventProducer

SERVICES = ("router", "notifier", "presence", "classifier", "gateway")
STATE_DIR = Path(".inbox")
DEV_ENV_FILE = STATE_DIR / "dev.env"
#: Partitions of each topic the stack creates (KAFKA_TOPIC_PARTITIONS overrides; production's
#: default is 8, as in docker-compose.yml): one machine needs little parallelism, and every
#: consumer's idle long poll names each partition it reads, which is most of the broker's work
#: at rest.
DEV_TOPIC_PARTITIONS = "2"
#: One machine's traffic needs few broker threads, and each idle one wakes every 300 ms.
DEV_BROKER_PROPERTIES = {"num.network.threads": "1", "num.io.threads": "2"}
#: The development Messenger app: the Graph API stand-in signs webhooks with this secret.
DEV_MESSENGER_APP_SECRET = "development-messenger-app-secret"
DEV_MESSENGER_VERIFY_TOKEN = "development-messenger-verify-token"
#: The development Shopify app: compliance webhooks are signed with this secret.
DEV_SHOPIFY_API_SECRET = "development-shopify-api-secret"


def say(text: str) -> None:
    print(f"[inbox dev] {text}", flush=True)


@dataclass
class Supervised:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    process: subprocess.Popen | None = None
    restarts: int = 0
    restart_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)

    def start(self) -> None:
        self.process = spawn(self.args, env=self.env, log_path=self.log_path)
        self.started_at = time.monotonic()

    @classmethod
    def broker(cls, broker: Broker) -> Supervised:
        """The broker already started, restarted like a service if it dies (on its data)."""
        return cls("broker", broker.args, dict(os.environ), broker.log_path, broker.port,
                   process=broker.process)

    def check(self, now: float) -> None:
        """Restart after a crash, with a backoff that grows while it keeps crashing."""
        if self.process is None:
            return
        code = self.process.poll()
        if code is None:
            if now - self.started_at > 60:
                self.restarts = 0  # it has been up a while: forget old crashes
            return
        if self.restart_at is None:
            delay = min(2**self.restarts, 30)
            say(f"{self.name} exited with code {code}; restarting in {delay}s "
                f"(log: {self.log_path})")
            self.restart_at = now + delay
        elif now >= self.restart_at:
            self.restarts += 1
            self.restart_at = None
            self.start()
            say(f"{self.name} restarted (pid {self.process.pid})")


class DevStack:
    def __init__(self, with_demo: bool = True) -> None:
        self.with_demo = with_demo
        self.broker: Broker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.children: list[Supervised] = []
        self.stopping = False
        self.logs = STATE_DIR / "logs"

    # --- start ----------------------------------------------------------------------------------

    def start(self) -> Settings:
        self.logs.mkdir(parents=True, exist_ok=True)
        kind, missing = choose_broker()
        if missing:
            say(f"{missing}: running Tansu instead of Apache Kafka ({TANSU_COST})")
        began = time.monotonic()
        if kind == "kafka":
            say("starting Apache Kafka (the first start fetches its jars with Maven)…")
        self.broker = start_broker(self.logs / "broker.log", preferred_port=9092, kind=kind,
                                   data_dir=(STATE_DIR / "kafka").resolve(),
                                   jvm_options=DEV_JVM_OPTIONS,
                                   extra_properties=DEV_BROKER_PROPERTIES)
        if self.broker.fallback_reason:
            say(f"{self.broker.fallback_reason}\nrunning Tansu instead of Apache Kafka "
                f"({TANSU_COST})")
        kept = " (data in .inbox/kafka)" if self.broker.kind == "kafka" else " (memory only)"
        say(f"{self.broker.name} on {self.broker.bootstrap_servers}{kept}, "
            f"started in {time.monotonic() - began:.1f}s")
        database_url = os.environ.get("DATABASE_URL")
        if database_url:
            say("PostgreSQL from DATABASE_URL")
        else:
            self.postgres = start_postgres(
                (STATE_DIR / "pgdata").resolve(),
                log_path=(self.logs / "postgres.log").resolve(),
                preferred_port=55432,
            )
            database_url = self.postgres.url
            say(f"embedded PostgreSQL on 127.0.0.1:{self.postgres.port} (data in .inbox/pgdata)")
        smtp_port, mail_http_port = free_port(1025), free_port(8025)
        gateway_port = free_port(SERVICE_PORTS["gateway"])
        graph_port = free_port(8990)
        settings = Settings(
            kafka=KafkaSettings(
                bootstrap_servers=self.broker.bootstrap_servers,
                topic_partitions=int(os.environ.get("KAFKA_TOPIC_PARTITIONS",
                                                    DEV_TOPIC_PARTITIONS)),
                **self.broker.client_settings,
            ),
            database=DatabaseSettings(url=database_url),
            mail=MailSettings(smtp_url=f"smtp://127.0.0.1:{smtp_port}"),
            public_base_url=f"http://127.0.0.1:{gateway_port}",
        )
        asyncio.run(self._prepare(settings))
        base_env = {
            # At rest a stack of consumers costs its heartbeats: the production rhythm (as in
            # docker-compose.yml) unless the environment says otherwise. The tests keep a
            # shorter session, so a killed consumer's partitions move on sooner.
            "KAFKA_HEARTBEAT_INTERVAL_MS": "3000",
            "KAFKA_SESSION_TIMEOUT_MS": "10000",
            **os.environ,
            "INBOX_ENVIRONMENT": "development",
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "KAFKA_TOPIC_PARTITIONS": str(settings.kafka.topic_partitions),
            **self.broker.client_env(),
            "DATABASE_URL": settings.database.url,
            "SMTP_URL": settings.mail.smtp_url,
            "PUBLIC_BASE_URL": settings.public_base_url,
            # Messenger: the notifier calls the Graph API stand-in, the gateway checks its
            # webhooks; the planner's clock may be moved (PUT <notifier>/dev/clock).
            "MESSENGER_GRAPH_URL": f"http://127.0.0.1:{graph_port}",
            "MESSENGER_APP_SECRET": DEV_MESSENGER_APP_SECRET,
            "MESSENGER_VERIFY_TOKEN": DEV_MESSENGER_VERIFY_TOKEN,
            "DEV_CLOCK_CONTROL": "true",
            # Shopify's compliance webhooks are signed with the app's secret.
            "SHOPIFY_API_SECRET": DEV_SHOPIFY_API_SECRET,
        }
        DEV_ENV_FILE.write_text(
            "".join(f"{k}={base_env[k]}\n" for k in
                    ("KAFKA_BOOTSTRAP_SERVERS", *self.broker.client_env(), "DATABASE_URL",
                     "SMTP_URL", "PUBLIC_BASE_URL", "SHOPIFY_API_SECRET"))
            + f"GATEWAY_URL=http://127.0.0.1:{gateway_port}\n"
        )
        catcher = Supervised(
            "mailcatcher",
            [sys.executable, "-m", "inbox.dev.mailcatcher", "--dir", str(STATE_DIR / "mail"),
             "--smtp-port", str(smtp_port), "--http-port", str(mail_http_port)],
            base_env, self.logs / "mailcatcher.log", mail_http_port,
        )
        self.children.append(catcher)
        self.children.append(Supervised(
            "graph_api",
            [sys.executable, "-m", "inbox.dev.graph_api", "--port", str(graph_port),
             "--webhook-url", f"http://127.0.0.1:{gateway_port}/webhooks/messenger",
             "--app-secret", DEV_MESSENGER_APP_SECRET,
             "--verify-token", DEV_MESSENGER_VERIFY_TOKEN,
             "--page", f"{DEMO_PAGE_ID}:{DEMO_PAGE_TOKEN}:human_agent"],
            base_env, self.logs / "graph_api.log", graph_port,
        ))
        self.inbound_smtp_port = free_port(2525)
        for name in SERVICES:
            port = gateway_port if name == "gateway" else free_port(SERVICE_PORTS[name])
            env = {**base_env, "HTTP_PORT": str(port)}
            if name == "notifier":
                env["INBOUND_SMTP_PORT"] = str(self.inbound_smtp_port)
            self.children.append(Supervised(
                name, [sys.executable, "-m", f"services.{name}"], env,
                self.logs / f"{name}.log", port,
            ))
        prometheus = find_prometheus()
        if prometheus:  # an operator can watch the demo with the project's own rules
            port = free_port(9090)
            config = (STATE_DIR / "prometheus.yml").resolve()
            targets = {c.name: c.port for c in self.children if c.name in SERVICES}
            config.write_text(scrape_config({**targets, "prometheus": port}))
            self.children.append(Supervised(
                "prometheus",
                prometheus_args(prometheus, config, (STATE_DIR / "prometheus").resolve(), port),
                base_env, self.logs / "prometheus.log", port,
            ))
        for child in self.children:
            child.start()
        self.children.insert(0, Supervised.broker(self.broker))
        wait_for_port(smtp_port, 15, catcher.process)
        return settings

    async def _prepare(self, settings: Settings) -> None:
        await migrate_database(settings.database.url)
        await ensure_topics(settings)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        pending = {c.name: c for c in self.children if c.name in SERVICES}
        with httpx.Client(timeout=2) as client:
            while pending and time.monotonic() < deadline and not self.stopping:
                for name, child in list(pending.items()):
                    try:
                        if client.get(f"http://127.0.0.1:{child.port}/readyz").status_code == 200:
                            del pending[name]
                    except httpx.HTTPError:
                        pass
                    child.check(time.monotonic())
                time.sleep(0.2)
        if pending and not self.stopping:
            raise TimeoutError(f"not ready after {timeout}s: {', '.join(pending)}")

    def load_demo(self, settings: Settings) -> DemoShop:
        gateway = next(c for c in self.children if c.name == "gateway")
        # The demo storefront stands in for the shop's Online Store: its links open there.
        shop_id = "demo-shop"
        shop = demo_shop(shop_id, with_passwords=True,
                         storefront_url=f"http://127.0.0.1:{gateway.port}"
                                        f"/storefront/demo/{shop_id}")

        async def go() -> None:
            producer = EventProducer(settings, "demo")
            pool = await asyncpg.create_pool(settings.database.url, min_size=1, max_size=1)
            await producer.start()
            try:
                await publish(producer, shop, shop_stored_in(pool, shop.shop_id))
            finally:
                await producer.stop()
                await pool.close()

        asyncio.run(go())
        try:
            asyncio.run(connect_demo_messenger(f"http://127.0.0.1:{gateway.port}",
                                               shop.tokens["ava"]))
        except TimeoutError as exc:
            say(f"warning: {exc}")
        try:
            asyncio.run(turn_on_demo_instant_answer(f"http://127.0.0.1:{gateway.port}",
                                                    shop.tokens["ava"]))
        except httpx.HTTPError as exc:
            say(f"warning: the demo's instant answer was not set: {exc}")
        return shop

    # --- run and stop ---------------------------------------------------------------------------

    def supervise(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                child.check(now)
            time.sleep(0.5)

    def shutdown(self) -> None:
        say("stopping…")
        # The broker last: the services commit their offsets and close their producers first.
        services = [c for c in self.children if c.process is not None and c.name != "broker"]
        for child in services:
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in services:
            assert child.process is not None
            stop(child.process, timeout=15)
        if self.postgres:
            self.postgres.stop()
        if self.broker:
            broker = next((c for c in self.children if c.name == "broker"), None)
            if broker is not None:
                self.broker.process = broker.process  # the one running now, if restarted
            self.broker.stop()
        DEV_ENV_FILE.unlink(missing_ok=True)
        say("stopped; no process of the stack is left running")


def run(with_demo: bool = True) -> int:
    started = time.monotonic()
    stack = DevStack(with_demo)

    def request_stop(signum: int, _frame: object) -> None:
        stack.stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        settings = stack.start()
        stack.wait_ready()
        if stack.stopping:
            return 0
        shop = stack.load_demo(settings) if with_demo else None
        ports = {c.name: c.port for c in stack.children}
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        lines = [
            f"ready in {time.monotonic() - started:.1f}s. Where to look:",
            f"  merchant API      {gateway}/api/v1/docs  (OpenAPI: {gateway}/api/v1/openapi.json)",
            f"  merchant inbox    {gateway}/inbox/  (sign in as a demo staff member, below)",
            f"  mail catcher      http://127.0.0.1:{ports['mailcatcher']}/  "
            f"({settings.mail.smtp_url})",
            f"  customer answers  smtp://127.0.0.1:{stack.inbound_smtp_port} (email replies in)",
            f"  Messenger (Meta)  http://127.0.0.1:{ports['graph_api']}/  (Graph API stand-in; "
            f"webhooks to {gateway}/webhooks/messenger)",
            f"  Kafka             {settings.kafka.bootstrap_servers} ({stack.broker.name}; "
            f"log: {stack.broker.log_path})",
            f"  PostgreSQL        {settings.database.url}",
            "  metrics / health  "
            + "  ".join(f"{n} http://127.0.0.1:{ports[n]}/metrics" for n in SERVICES),
            f"  logs              {stack.logs}/",
        ]
        if "prometheus" in ports:
            lines.insert(-1, f"  Prometheus        http://127.0.0.1:{ports['prometheus']}/  "
                             "(targets: /targets, the project's alert rules: /alerts)")
        if shop is not None:
            lines += [
                "  demo shop         demo-shop; its staff sign in to the inbox with (email, "
                "password), or call the API with a token (Authorization: Bearer …):",
                *(f"    {shop.emails[staff]:<24} {shop.passwords[staff]:<22} {token}"
                  for staff, token in shop.tokens.items()),
                f"  demo storefront   {gateway}/storefront/demo?shop=demo-shop  "
                "(chat as a customer; the widget: /storefront/widget.js)",
                "  try it            .venv/bin/inbox send-message --text "
                "\"Hi, where is my order #1001?\"",
                f"  demo Page         {DEMO_PAGE_ID} (Messenger channel of demo-shop); write as "
                f"a customer: curl -H 'Content-Type: application/json' -d '{{\"page_id\": "
                f"\"{DEMO_PAGE_ID}\", \"psid\": \"4242\", \"text\": \"Hi!\"}}' "
                f"http://127.0.0.1:{ports['graph_api']}/customer/message",
            ]
        lines.append("Press Ctrl-C to stop.")
        for line in lines:
            say(line)
        stack.supervise()
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up
        stack.shutdown()
