"""A stack of its own for the fault tests, whose dependencies can fail for real: PostgreSQL can
be restarted, and the broker, the database, the mail server and Meta's Graph API stand-in are
reached through proxies (`tests.proxy`) that can be cut or slowed. Every server runs in a
process of its own (the tests' process, which also generates and follows the load, must not
be slowed down by a flood of emails arriving).

The broker advertises its proxy, so every Kafka client (services, load generator, tests) talks
through it: cutting it is a network partition of the broker, with its data kept.

`FaultStack(brokers=3)`: a three-node Apache Kafka cluster (KRaft) on loopback instead, with
no proxy in front; every client bootstraps from the three nodes, and the topics are created
with replication 3 and min.insync.replicas 2 (the services are told the same).
"""

from __future__ import annotations

import contextlib
import email.policy
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from email.parser import BytesHeaderParser
from pathlib import Path

import httpx
import psutil

from inbox.dev.broker import Broker, kafka_cluster, start_broker, stop_all
from inbox.dev.postgres import EmbeddedPostgres, start_postgres
from inbox.dev.processes import free_port, spawn, stop, wait_for_port
from shared.config import DatabaseSettings, KafkaSettings, Settings
from shared.db.migrate import migrate_database
from shared.kafka.admin import ensure_topics
from tests.conftest import (
    ROOT,
    GraphApiStandIn,
    ServiceProcess,
    backbone,
    running,
)


class ProxyProcess:
    """`python -m tests.proxy` in front of one server."""

    def __init__(self, name: str, upstream_port: int, workdir: Path, delay_ms: float = 50,
                 port: int | None = None):
        self.name = name
        self.port = port or free_port()
        self.upstream_port = upstream_port
        self.delay_ms = delay_ms
        self.log_path = workdir / f"proxy-{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = spawn(
            [sys.executable, "-m", "tests.proxy", str(self.port),
             f"127.0.0.1:{self.upstream_port}", "--delay-ms", str(self.delay_ms)],
            log_path=self.log_path, cwd=ROOT)
        wait_for_port(self.port, 20, self.process)

    def cut(self) -> None:
        """Down: every connection through it breaks, new ones are refused."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def slow(self, on: bool = True) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop(self.process)


class FaultStack:
    def __init__(self, brokers: int = 1) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="inbox-faults-"))
        #: One broker behind a proxy, or a cluster of Apache Kafka nodes reached directly.
        self.broker_count = brokers
        self.kafka_proxy_port = free_port()
        #: The broker (the cluster's first node when there are several).
        self.broker: Broker | None = None
        self.brokers: list[Broker] = []
        self.postgres: EmbeddedPostgres | None = None
        self.proxies: dict[str, ProxyProcess] = {}
        self.smtp_port = free_port()
        self.mail: subprocess.Popen | None = None
        self.graph_api = GraphApiStandIn(self.workdir)
        self.services: dict[str, ServiceProcess] = {}
        self.secrets = {"database password": f"pw-{uuid.uuid4().hex}",
                        "link signing secret": f"link-{uuid.uuid4().hex}"}

    # --- what the tests use ---------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """Through the broker's proxy (a cluster: to every node), straight to PostgreSQL (the
        tests' own view)."""
        assert self.postgres is not None
        assert self.broker is not None
        if self.broker_count == 1:
            bootstrap, replicas = f"127.0.0.1:{self.kafka_proxy_port}", {}
        else:
            bootstrap = ",".join(b.bootstrap_servers for b in self.brokers)
            replicas = {"replication_factor": self.broker_count,
                        "min_insync_replicas": min(2, self.broker_count)}
        return Settings(
            kafka=KafkaSettings(bootstrap_servers=bootstrap, **self.broker.client_settings,
                                **replicas, topic_partitions=4),
            database=DatabaseSettings(url=self.postgres.url))

    def stop_postgres(self) -> None:
        assert self.postgres is not None
        self.postgres.stop()  # fast shutdown: sessions are ended, the data kept

    def start_postgres(self) -> None:
        assert self.postgres is not None
        port = self.postgres.port
        self.postgres = start_postgres(self.workdir / "pgdata", durable=False,
                                       log_path=self.workdir / "pg.log", preferred_port=port)
        assert self.postgres.port == port, "PostgreSQL's port was taken while it was down"

    def email_ids(self) -> list[str]:
        """The Message-ID of every email the mail server received so far, in arrival order."""
        parser = BytesHeaderParser(policy=email.policy.default)
        return [str(parser.parsebytes(path.read_bytes())["Message-ID"])
                for path in sorted((self.workdir / "mail").glob("*.eml"))]

    def service_logs(self) -> dict[str, str]:
        return {name: s.log_path.read_text(errors="replace") if s.log_path.exists() else ""
                for name, s in self.services.items()}

    def rss_bytes(self, name: str) -> int:
        return psutil.Process(self.services[name].process.pid).memory_info().rss

    async def readiness(self) -> dict[str, dict]:
        """Each service's /readyz answer (status and checks), or the error reaching it."""
        found: dict[str, dict] = {}
        async with httpx.AsyncClient(timeout=5) as client:
            for name, service in self.services.items():
                try:
                    response = await client.get(f"{service.url}/readyz")
                    found[name] = {"status": response.status_code, **response.json()}
                except httpx.HTTPError as exc:
                    found[name] = {"status": None, "error": repr(exc)}
        return found

    # --- life cycle -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def up(self) -> AsyncIterator[FaultStack]:
        try:
            if self.broker_count == 1:
                self.brokers = [start_broker(self.workdir / "broker.log",
                                             advertised_port=self.kafka_proxy_port)]
            else:
                self.brokers = kafka_cluster(self.broker_count,
                                             log_path=self.workdir / "broker.log")
            self.broker = self.brokers[0]
            self.postgres = start_postgres(self.workdir / "pgdata", durable=False,
                                           log_path=self.workdir / "pg.log")
            self.graph_api.start()
            await self.graph_api.wait_ready()
            self.mail = spawn(
                [sys.executable, "-m", "inbox.dev.mailcatcher", "--dir", str(self.workdir / "mail"),
                 "--smtp-port", str(self.smtp_port), "--http-port", str(free_port())],
                log_path=self.workdir / "mail.log", cwd=ROOT)
            wait_for_port(self.smtp_port, 30, self.mail)
            self.proxies = {
                **({"kafka": ProxyProcess("kafka", self.broker.port, self.workdir,
                                          port=self.kafka_proxy_port)}
                   if self.broker_count == 1 else {}),
                "postgres": ProxyProcess("postgres", self.postgres.port, self.workdir),
                "graph_api": ProxyProcess("graph_api", self.graph_api.port, self.workdir),
                # Slow: every exchange of the SMTP dialogue held 50 ms, about 0.6 s a message.
                "smtp": ProxyProcess("smtp", self.smtp_port, self.workdir),
            }
            for proxy in self.proxies.values():
                proxy.start()
            await migrate_database(self.settings.database.url)
            await ensure_topics(self.settings)
            # A password in the database URL (trust auth ignores it) and a signing secret of
            # their own: the logs of all that goes wrong here must not show either.
            database = self.settings.database.model_copy(update={
                "url": f"postgresql://postgres:{self.secrets['database password']}"
                       f"@127.0.0.1:{self.proxies['postgres'].port}/postgres"})
            services_see = self.settings.model_copy(update={"database": database})
            graph_url = f"http://127.0.0.1:{self.proxies['graph_api'].port}"
            smtp_url = f"smtp://127.0.0.1:{self.proxies['smtp'].port}"
            self.services = backbone(services_see, self.workdir, smtp_url, graph_url)
            for service in self.services.values():
                service.env["LINK_SIGNING_SECRET"] = self.secrets["link signing secret"]
                service.env["KAFKA_REPLICATION_FACTOR"] = str(
                    services_see.kafka.replication_factor)
                service.env["KAFKA_MIN_INSYNC_REPLICAS"] = str(
                    services_see.kafka.min_insync_replicas)
            async with running(self.services, self.graph_api):
                yield self
        finally:
            self._down()

    def _down(self) -> None:
        if self.mail is not None:
            stop(self.mail)
        for proxy in self.proxies.values():
            proxy.stop()
        if self.graph_api.process is not None:
            stop(self.graph_api.process)
        if self.postgres is not None:
            self.postgres.stop()
        stop_all(self.brokers)
        shutil.rmtree(self.workdir, ignore_errors=True)
