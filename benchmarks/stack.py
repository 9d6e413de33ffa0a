"""A fresh stack for one benchmark: a new broker (Apache Kafka, or Tansu where Java or Maven is
missing: `inbox.dev.broker`), a new PostgreSQL (fsync off), a mail catcher, Meta's Graph API
stand-in (`benchmarks.graph`), and the services as processes, as in production; stopped and
removed after.

`python -m benchmarks.stack` starts one and keeps it up until Ctrl-C (for `inbox load` by hand).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from benchmarks.graph import APP_SECRET
from inbox.dev.broker import Broker, start_broker
from inbox.dev.postgres import EmbeddedPostgres, start_postgres
from inbox.dev.processes import free_port, spawn, stop, wait_for_port
from shared.config import DatabaseSettings, KafkaSettings, Settings
from shared.db.migrate import migrate_database
from shared.kafka.admin import ensure_topics

ROOT = Path(__file__).resolve().parent.parent
#: The backbone: what a customer message and a reply go through.
BACKBONE = ("router", "classifier", "notifier", "presence")
#: The project's own services: the backbone and the gateway (it serves HTTP and is not on those
#: paths, but it runs beside them, and the benchmarks connect each shop's Messenger Page with
#: the merchant API it serves).
SERVICES = (*BACKBONE, "gateway")


def _cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _cpu_of_tree(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        return sum(_cpu_of(p) for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0.0


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    workdir: Path
    broker: Broker
    postgres: EmbeddedPostgres
    settings: Settings
    env: dict[str, str]
    services: list[ServiceProcess] = field(default_factory=list)
    mail: subprocess.Popen | None = None
    #: Meta's Graph API stand-in (the notifier's Send API calls go there).
    graph: subprocess.Popen | None = None
    graph_url: str = ""

    def start_service(self, name: str, index: int = 0, **extra_env: str) -> ServiceProcess:
        port = free_port()
        env = {**self.env, "HTTP_PORT": str(port), **extra_env}
        log_path = self.workdir / f"{name}-{index}.log"
        process = spawn([sys.executable, "-m", f"services.{name}"], env=env, log_path=log_path,
                        cwd=ROOT)
        service = ServiceProcess(name, port, process, log_path)
        self.services.append(service)
        return service

    async def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.services)
        async with httpx.AsyncClient(timeout=2) as client:
            while pending:
                for service in list(pending):
                    if service.process.poll() is not None:
                        raise RuntimeError(f"{service.name} exited:\n{service.log_tail()}")
                    try:
                        response = await client.get(f"http://127.0.0.1:{service.port}/readyz")
                        if response.status_code == 200:
                            pending.remove(service)
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise TimeoutError("not ready: " + ", ".join(s.name for s in pending))
                await asyncio.sleep(0.2)

    def url(self, name: str) -> str:
        """The HTTP address of the (first) instance of a service."""
        port = next(s.port for s in self.services if s.name == name)
        return f"http://127.0.0.1:{port}"

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each part: the broker, PostgreSQL (server and
        backends), each service (instances summed), the stand-ins for the outside world (mail
        catcher, Meta) and this process (the load generator)."""
        parts: dict[str, list[int]] = {"broker": [self.broker.process.pid],
                                       "postgres": [self.postgres.process.pid]}
        for service in self.services:
            parts.setdefault(service.name, []).append(service.process.pid)
        if self.mail is not None:
            parts["mail catcher"] = [self.mail.pid]
        if self.graph is not None:
            parts["meta stand-in"] = [self.graph.pid]
        found = {name: sum(_cpu_of_tree(pid) for pid in pids) for name, pids in parts.items()}
        found["load generator"] = _cpu_of(psutil.Process())
        return found

    def pids(self, name: str) -> list[int]:
        return [s.process.pid for s in self.services if s.name == name]

    def stop(self) -> None:
        for service in self.services:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in self.services:
            stop(service.process, timeout=15)
        for helper in (self.mail, self.graph):
            if helper is not None:
                stop(helper)
        self.postgres.stop()
        self.broker.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


async def start_stack(
    services: Sequence[str] = BACKBONE,
    *,
    routers: int = 1,
    partitions: int = 8,
    env: dict[str, str] | None = None,
) -> Stack:
    """Broker, database, mail catcher and `services` (with `routers` router instances), ready."""
    workdir = Path(tempfile.mkdtemp(prefix="inbox-bench-"))
    broker = start_broker(workdir / "broker.log")
    try:
        postgres = start_postgres(workdir / "pgdata", temporary=True, durable=False,
                                  log_path=workdir / "pg.log")
    except BaseException:
        broker.stop()
        raise
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers,
                            **broker.client_settings, topic_partitions=partitions),
        database=DatabaseSettings(url=postgres.url), log_level="WARNING")
    smtp_port, graph_port = free_port(), free_port()
    stack = Stack(workdir, broker, postgres, settings, env={
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        **broker.client_env(),
        "DATABASE_URL": settings.database.url,
        "INBOX_ENVIRONMENT": "development",
        "KAFKA_TOPIC_PARTITIONS": str(partitions),
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        # Meta is the stand-in: nothing may ever reach the real one.
        "MESSENGER_GRAPH_URL": f"http://127.0.0.1:{graph_port}",
        "MESSENGER_APP_SECRET": APP_SECRET,
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    })
    try:
        await migrate_database(settings.database.url)
        await ensure_topics(settings)
        stack.mail = spawn(
            [sys.executable, "-m", "inbox.dev.mailcatcher", "--dir", str(workdir / "mail"),
             "--smtp-port", str(smtp_port), "--http-port", str(free_port())],
            env=stack.env, log_path=workdir / "mail.log", cwd=ROOT)
        wait_for_port(smtp_port, 30, stack.mail)
        stack.graph = spawn([sys.executable, "-m", "benchmarks.graph", "--port", str(graph_port)],
                            env=stack.env, log_path=workdir / "graph.log", cwd=ROOT)
        stack.graph_url = f"http://127.0.0.1:{graph_port}"
        wait_for_port(graph_port, 30, stack.graph)
        for name in services:
            for i in range(routers if name == "router" else 1):
                stack.start_service(name, i)
        await stack.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack


def main() -> int:
    async def up() -> Stack:
        return await start_stack(SERVICES)

    stack = asyncio.run(up())
    print(f"KAFKA_BOOTSTRAP_SERVERS={stack.settings.kafka.bootstrap_servers}")
    print(f"DATABASE_URL={stack.settings.database.url}")
    print(f"GATEWAY_URL={stack.url('gateway')}")
    print(f"MESSENGER_GRAPH_URL={stack.graph_url}")
    print("services: " + ", ".join(f"{s.name} pid {s.process.pid} port {s.port}"
                                   for s in stack.services))
    print("Ctrl-C stops everything.", flush=True)
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stopping:
            time.sleep(0.5)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
