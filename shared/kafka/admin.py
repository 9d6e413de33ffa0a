"""Topic creation from the manifest, before anything produces."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest

from shared.config import Settings
from shared.kafka.client import connection_options
from shared.topics import all_topic_names

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings, names: Iterable[str] | None = None) -> list[str]:
    """Create the missing topics; returns the names created now."""
    wanted = list(names) if names is not None else all_topic_names()
    admin = AIOKafkaAdminClient(**connection_options(settings, "admin"))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return []
        configs = ({"min.insync.replicas": str(settings.kafka_min_insync_replicas)}
                   if settings.kafka_min_insync_replicas else {})
        response = await admin.create_topics(
            [
                NewTopic(n, settings.kafka_topic_partitions, settings.kafka_replication_factor,
                         topic_configs=configs)
                for n in missing
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
    finally:
        await admin.close()


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


async def wait_for_broker(settings: Settings, patience: float = 60.0) -> None:
    """Retry topic bootstrap until the broker answers (services start before it may)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        try:
            await ensure_topics(settings)
            return
        except Exception as exc:
            if loop.time() > deadline:
                raise
            log.warning("broker not ready (%s); retrying", exc)
            await asyncio.sleep(1.0)


class BrokerProbe:
    """Asks the brokers for their list (a metadata request naming no topic: small to build and
    to read) over long-lived connections: whether Kafka answers now. (A consumer alone cannot
    tell: its fetches come back empty while it reconnects.)"""

    def __init__(self, settings: Settings) -> None:
        self._client = AIOKafkaClient(**connection_options(settings, "probe"),
                                      request_timeout_ms=5000)
        self._bootstrapped = False

    async def check(self) -> None:
        """Returns when the broker answered; raises (ConnectionError, KafkaError) if not."""
        if not self._bootstrapped:
            await self._client.bootstrap()
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
