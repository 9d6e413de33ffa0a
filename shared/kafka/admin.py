"""Topic creation from the manifest, before anything produces."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from shared.config import Settings
from shared.kafka.client import connection_options
from shared.retry import Retry
from shared.topics import all_topic_names, is_quiet, topic_configs

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings, names: Iterable[str] | None = None) -> list[str]:
    """Create the missing topics with their configs, and bring the existing ones to those
    configs (a topic created before a change of retention); returns the names created now."""
    wanted = list(names) if names is not None else all_topic_names()
    admin = AIOKafkaAdminClient(**connection_options(settings, "admin"))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        created = await _create(admin, settings, missing) if missing else []
        present = [n for n in wanted if n in existing]
        if present:
            await converge_configs(admin, {n: wanted_configs(settings, n) for n in present})
        return created
    finally:
        await admin.close()


def wanted_configs(settings: Settings, name: str) -> dict[str, str]:
    """The topic-level configs of `name` under these settings."""
    configs = topic_configs(name, settings.kafka.customer_data_retention_ms)
    if settings.kafka.min_insync_replicas:
        configs["min.insync.replicas"] = str(settings.kafka.min_insync_replicas)
    return configs


def partitions_of(settings: Settings, name: str) -> int:
    """How many partitions `name` is created with under these settings."""
    if is_quiet(name):
        return min(settings.kafka.quiet_topic_partitions, settings.kafka.topic_partitions)
    return settings.kafka.topic_partitions


async def _create(admin: AIOKafkaAdminClient, settings: Settings, names: list[str]) -> list[str]:
    response = await admin.create_topics(
        [
            NewTopic(n, partitions_of(settings, n), settings.kafka.replication_factor,
                     topic_configs=wanted_configs(settings, n))
            for n in names
        ]
    )
    created = []
    for name, code, *_ in response.topic_errors:
        if code == 0:
            created.append(name)
        elif code != TopicAlreadyExistsError.errno:  # a concurrent start created it
            raise RuntimeError(f"creating topic {name} failed with error code {code}")
    log.info("created %d topics", len(created))
    return created


#: DescribeConfigs' config_source of a value set on the topic itself (not a broker default).
_SET_ON_TOPIC = 1


async def converge_configs(admin: AIOKafkaAdminClient,
                           wanted: dict[str, dict[str, str]]) -> list[str]:
    """Alter the topics whose configs differ from `wanted`; returns the names altered.

    AlterConfigs replaces a topic's whole set of its own values, so what was set on the topic
    otherwise (by an operator) is sent back with ours. A broker that cannot describe or alter
    configs (Tansu) keeps its topics as they are: a warning, never a failed start."""
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in wanted])
    except (KafkaError, OSError) as exc:
        log.warning("topic configs not checked: the broker cannot describe them (%s)", exc)
        return []
    changes: list[ConfigResource] = []
    for response in described:
        for error_code, _message, _type, name, entries in response.resources:
            if error_code != 0 or name not in wanted or not entries:
                continue  # a broker that describes nothing (Tansu) has nothing to converge
            current = {e[0]: e[1] for e in entries}
            if all(current.get(k) == v for k, v in wanted[name].items()):
                continue
            own = {e[0]: e[1] for e in entries
                   if len(e) > 3 and not isinstance(e[3], bool) and e[3] == _SET_ON_TOPIC}
            changes.append(ConfigResource(ConfigResourceType.TOPIC, name,
                                          {**own, **wanted[name]}))
    if not changes:
        return []
    try:
        responses = await admin.alter_configs(changes)
    except (KafkaError, OSError) as exc:
        log.warning("topic configs of %d topics not changed: the broker cannot alter them (%s)",
                    len(changes), exc)
        return []
    altered = []
    for response in responses:
        for error_code, message, _type, name in response.resources:
            if error_code == 0:
                altered.append(name)
            else:
                log.warning("topic %s: configs not changed (error %d: %s)", name, error_code,
                            message)
    log.info("brought %d topics to their configs (%s)", len(altered), ", ".join(altered))
    return altered


async def topic_partitions(settings: Settings, topics: Iterable[str]) -> list[TopicPartition]:
    """The partitions of existing topics, for readers that assign them themselves (no group).
    A topic that does not exist has none (nothing is created)."""
    admin = AIOKafkaAdminClient(**connection_options(settings, "admin"))
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"])
            for t in described if t["error_code"] == 0
            for p in sorted(t["partitions"], key=lambda p: p["partition"])]


class BrokerUnreachable(ConnectionError):
    """The brokers could not be reached, or refused this client; the message says why, for a
    person ("authentication failed…", "TLS certificate not trusted…")."""


async def why_unreachable(settings: Settings, exc: BaseException) -> str:
    """What `exc` (from a client reaching the brokers) means, in words.

    aiokafka's bootstrap error names only the addresses it tried (the cause goes to its log), so
    for that one a single connection is opened again, alone, to learn the cause."""
    if isinstance(exc, KafkaConnectionError) and "Unable to bootstrap" in str(exc):
        options = connection_options(settings, "probe")
        options.pop("bootstrap_servers")
        for host, port, _ in collect_hosts(settings.kafka.bootstrap_servers):
            try:
                conn = await create_conn(host, port, request_timeout_ms=5000, **options)
            except Exception as cause:  # whatever stopped this connection is the answer
                if isinstance(cause, (ConnectionResetError, KafkaConnectionError)):
                    return (f"{host}:{port}: the broker closed the connection while it was set "
                            f"up (does its listener expect {settings.kafka.security_protocol}?)")
                return f"{host}:{port}: {_describe(settings, cause)}"
            conn.close()
    return _describe(settings, exc)


def _describe(settings: Settings, exc: BaseException) -> str:
    # Never the password: only what the broker said, the mechanism and the user name.
    if isinstance(exc, SaslAuthenticationFailed):
        said = str(exc).split(": ", 1)[-1]
        return (f"authentication failed: the broker refused {settings.kafka.sasl_mechanism} "
                f"credentials of user {settings.kafka.sasl_username!r} ({said})")
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"SASL mechanism {settings.kafka.sasl_mechanism} not enabled on the broker"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker up, the port right?)"
    if isinstance(exc, TimeoutError):
        return "no answer in time (a firewall, or TLS/SASL expected on the other side?)"
    text = str(exc)  # a KafkaError's names its class already
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}".rstrip(": ")


async def wait_for_broker(settings: Settings, patience: float = 60.0,
                          report: Callable[[str], None] | None = None) -> None:
    """Retry until the brokers answer (services start before they may): topic bootstrap, or
    only a metadata request when the topics are managed elsewhere (KAFKA_CREATE_TOPICS=false).

    `report` hears why each attempt failed (a service's "kafka" readiness check); past
    `patience` seconds the last reason is raised (`BrokerUnreachable`)."""

    async def reach() -> None:
        try:
            if settings.kafka.create_topics:
                await ensure_topics(settings)
            else:
                probe = BrokerProbe(settings)
                try:
                    await probe.check()
                finally:
                    await probe.close()
        except Exception as exc:
            reason = await why_unreachable(settings, exc)
            if report is not None:
                report(reason)
            raise BrokerUnreachable(reason) from exc

    def not_ready(exc: BaseException, delay: float) -> None:
        log.warning("broker not ready (%s); retrying in %.1fs", exc, delay)

    await Retry(BrokerUnreachable, initial=0.5, cap=5.0, deadline=patience,
                on_retry=not_ready).call(reach)


class BrokerProbe:
    """Asks the brokers for their list (a metadata request naming no topic: small to build and
    to read) over long-lived connections: whether Kafka answers now. (A consumer alone cannot
    tell: its fetches come back empty while it reconnects.)"""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client = AIOKafkaClient(**connection_options(settings, "probe"),
                                      request_timeout_ms=5000)
        self._bootstrapped = False

    async def check(self) -> None:
        """Returns when the broker answered; raises (ConnectionError, KafkaError) if not."""
        if not self._bootstrapped:
            try:
                await self._client.bootstrap()
            except KafkaConnectionError as exc:
                raise BrokerUnreachable(await why_unreachable(self._settings, exc)) from exc
            self._bootstrapped = True
        last: BaseException | None = None
        for broker in self._client.cluster.brokers():  # any one answering will do
            try:
                response = await self._client.send(broker.nodeId, MetadataRequest([]))
            except (KafkaError, TimeoutError) as exc:
                last = exc
                continue
            if response.brokers:
                return
        raise ConnectionError(f"no broker answered a metadata request ({last})") from last

    async def close(self) -> None:
        await self._client.close()
