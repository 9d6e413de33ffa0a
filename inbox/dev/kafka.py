"""Apache Kafka in a JVM: one KRaft node in combined mode (broker and controller), or a small
cluster of them on loopback. The jars come from Maven Central once, by `deploy/kafka/pom.xml`
(the pinned version), and are cached outside the checkout; nothing is vendored.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from inbox.dev.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "deploy" / "kafka" / "pom.xml"
LOG_CONFIG = ROOT / "deploy" / "kafka" / "log4j2.yaml"
#: The line the broker logs once its client listeners accept requests.
STARTED_LINE = b"Kafka Server started"
#: A heap for a 2-core machine that also runs PostgreSQL and five services.
HEAP = ("-Xms256m", "-Xmx512m")
#: A development broker (`inbox dev`) spends its time at rest and starting: compiled by C1 only,
#: it starts faster and compiles little (C2 took 2.8% of a core in its first minute). Tests and
#: benchmarks keep the full JIT, as production does.
DEV_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1",)
JVM_OPTIONS = (
    *HEAP,
    "-XX:+UseSerialGC",  # two cores: no parallel collector threads to wake at rest
    # At rest: no shared-memory counters sampled every 50 ms (jstat's; jcmd still attaches by
    # pid), no safepoint forced every second when nothing needs one.
    "-XX:-UsePerfData",
    "-XX:+UnlockDiagnosticVMOptions",
    "-XX:GuaranteedSafepointInterval=0",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    f"-Dlog4j2.configurationFile={LOG_CONFIG}",
)


class KafkaUnavailable(RuntimeError):
    """Apache Kafka cannot run here (no Java 17, no Maven, or Maven Central out of reach)."""


def kafka_version() -> str:
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if not found:
        raise RuntimeError(f"{POM} names no kafka.version")
    return found[1]


def java_version(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        return 0
    major = int(found[1])
    return int(found[2] or 0) if major == 1 else major


def find_java() -> str | None:
    """A `java` of version 17 or newer: JAVA_HOME's, else the one on PATH."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    if shutil.which("java"):
        candidates.append(shutil.which("java"))
    for java in candidates:
        try:
            if java and java_version(java) >= 17:
                return java
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def missing_requirements() -> str | None:
    """Why Apache Kafka cannot run here, or None when it can."""
    absent = []
    if find_java() is None:
        absent.append("a Java of version 17 or newer")
    if shutil.which("mvn") is None:
        absent.append("Maven (mvn)")
    return " and ".join(absent) + " not found" if absent else None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inbox-backbone" / f"kafka-{kafka_version()}"


def fetch_libs() -> Path:
    """The broker's jars, fetched with Maven the first time (a few seconds to a minute)."""
    libs = cache_dir() / "libs"
    if (libs / ".complete").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaUnavailable("Maven (mvn) not found")
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    result = subprocess.run(
        [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
        capture_output=True, text=True, timeout=900,
    )
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise KafkaUnavailable(f"Maven could not fetch Apache Kafka {kafka_version()}:\n{tail}")
    (staging / ".complete").touch()
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    return libs


@dataclass
class KafkaNode:
    """One KRaft node (broker and controller in one process) and how it is started."""

    node_id: int
    port: int
    controller_port: int
    data_dir: Path
    #: Where clients are told to connect (a proxy in front of it, in the fault tests).
    advertised_port: int
    #: Broker properties added or overriding the defaults (SASL, TLS…).
    extra: Mapping[str, str] = field(default_factory=dict)
    #: Client listeners beside PLAINTEXT: security protocol → port (e.g. {"SASL_SSL": 9094}),
    #: each advertised on its own port.
    extra_listeners: Mapping[str, int] = field(default_factory=dict)
    #: When clients are told another port (a proxy), the brokers talk among themselves (and a
    #: broker to itself: transaction markers) on a listener of their own, never the proxy.
    internal_port: int | None = None

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "data"


def node_properties(node: KafkaNode, voters: Sequence[KafkaNode]) -> dict[str, str]:
    replicas = len(voters)
    internal = {"INTERNAL": node.internal_port} if node.internal_port else {}
    listeners = {"PLAINTEXT": node.port, "CONTROLLER": node.controller_port, **internal,
                 **node.extra_listeners}
    advertised = {"PLAINTEXT": node.advertised_port, **internal, **node.extra_listeners}
    protocols = {name: "PLAINTEXT" if name in ("CONTROLLER", "INTERNAL") else name
                 for name in listeners}
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        # Static voters: a port that changes across restarts (another process took it) is
        # simply written here again.
        "controller.quorum.voters": ",".join(
            f"{v.node_id}@127.0.0.1:{v.controller_port}" for v in voters),
        "listeners": ",".join(f"{name}://127.0.0.1:{port}" for name, port in listeners.items()),
        "advertised.listeners": ",".join(
            f"{name}://127.0.0.1:{port}" for name, port in advertised.items()),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "INTERNAL" if internal else "PLAINTEXT",
        "listener.security.protocol.map": ",".join(
            f"{name}:{protocol}" for name, protocol in protocols.items()),
        "log.dirs": str(node.log_dir),
        # Every topic comes from the project's manifest, as in production.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min(2, replicas)),
        "offsets.topic.replication.factor": str(replicas),
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min(2, replicas)),
        "transaction.state.log.num.partitions": "8",
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min(2, replicas)),
        # A new group starts at once (no waiting for more members to join).
        "group.initial.rebalance.delay.ms": "0",
        # The controller appends a no-op record when the metadata log is idle this long, so
        # brokers notice a stalled controller; every 500 ms (the default) kept the raft thread
        # busy at rest (a third of the idle broker's CPU) for no use on loopback.
        "metadata.max.idle.interval.ms": "10000",
        # Threads for a 2-core machine: fewer threads to wake at rest.
        "num.network.threads": "2",
        "num.io.threads": "4",
        "background.threads": "4",
        "group.coordinator.threads": "1",
        "share.coordinator.threads": "1",
        "num.recovery.threads.per.data.dir": "2",
        "log.cleaner.threads": "1",
        "log.segment.bytes": str(256 * 1024 * 1024),
    }
    props.update(node.extra)
    return props


def write_properties(path: Path, props: Mapping[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))


def java_command(java: str, libs: Path, main: str, *args: str,
                 jvm_options: Sequence[str] = ()) -> list[str]:
    return [java, *JVM_OPTIONS, *jvm_options, "-cp", f"{libs}/*", main, *args]


def format_storage(java: str, libs: Path, node: KafkaNode, cluster_id: str,
                   extra_args: Sequence[str] = ()) -> None:
    """Format the node's log directory the first time (`kafka-storage.sh format`)."""
    if (node.log_dir / "meta.properties").exists():
        return
    node.log_dir.mkdir(parents=True, exist_ok=True)
    command = java_command(java, libs, "kafka.tools.StorageTool", "format", "--ignore-formatted",
                           f"--cluster-id={cluster_id}", "-c", str(node.properties_path),
                           *extra_args)
    for _attempt in (1, 2):  # once more: a JVM that could not start on a machine under load
        result = subprocess.run(command, capture_output=True, text=True, timeout=180)
        if result.returncode == 0:
            return
    raise RuntimeError(f"formatting Kafka storage failed (exit {result.returncode}, twice):\n"
                       f"{result.stdout}{result.stderr}")


def new_cluster_id() -> str:
    """A base64 UUID as Kafka makes them: never starting with "-", which the storage tool's
    command line would take for an option (one id in 64)."""
    import base64

    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not found.startswith("-"):
            return found


def wait_started(log_path: Path, offset: int, timeout: float, process: subprocess.Popen) -> None:
    """Until the broker logs that it started (its listeners then answer requests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Kafka exited with {process.returncode} while starting; "
                               f"log: {log_path}")
        with open(log_path, "rb") as log:
            log.seek(offset)
            if STARTED_LINE in log.read():
                return
        time.sleep(0.1)
    raise TimeoutError(f"Kafka did not start within {timeout}s; log: {log_path}")


def plan_nodes(data_dir: Path, count: int = 1, preferred_port: int | None = None,
               advertised_ports: Sequence[int] | None = None,
               extra: Mapping[str, str] | None = None,
               extra_listeners: Sequence[str] = ()) -> list[KafkaNode]:
    """Nodes with free ports; a node keeps the ports it had when its data directory is reused
    (`inbox dev` across restarts), unless another process took them meanwhile."""
    nodes = []
    taken: set[int] = set(advertised_ports or ())

    def pick(preferred: int | None) -> int:
        port = free_port(preferred, avoid=taken)
        taken.add(port)
        return port

    for i in range(count):
        node_dir = data_dir if count == 1 else data_dir / f"node-{i + 1}"
        node_dir.mkdir(parents=True, exist_ok=True)
        previous = _previous_ports(node_dir / "server.properties")
        port = pick(previous.get("PLAINTEXT") or (preferred_port if i == 0 else None))
        controller_port = pick(previous.get("CONTROLLER"))
        advertised = advertised_ports[i] if advertised_ports else port
        more = {name: pick(previous.get(name)) for name in extra_listeners}
        internal = pick(previous.get("INTERNAL")) if advertised != port else None
        nodes.append(KafkaNode(i + 1, port, controller_port, node_dir, advertised,
                               dict(extra or {}), more, internal))
    return nodes


def _previous_ports(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    found = re.search(r"^listeners=(.*)$", path.read_text(), re.M)
    if not found:
        return {}
    return {m[1]: int(m[2]) for m in re.finditer(r"(\w+)://[^:,]+:(\d+)", found[1])}
