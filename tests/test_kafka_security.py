"""Production settings, proven on the real broker: Apache Kafka with a SASL_SSL listener (TLS
with a certificate of the test's own CA, hostname verification on; SASL SCRAM-SHA-512, PLAIN
too) and the services reaching it by settings alone. A customer message goes end to end over
it; a wrong password is refused, and the service says so on /readyz and in its log, never
writing the password."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from inbox.dev.broker import Broker, choose_broker, start_broker
from shared.config import DatabaseSettings, KafkaSettings, Settings
from shared.contracts import TopicTag
from shared.db.migrate import migrate_database
from shared.db.pool import create_pool
from shared.kafka.admin import BrokerProbe, BrokerUnreachable, ensure_topics
from shared.kafka.client import ssl_context
from shared.kafka.producer import EventProducer
from shared.topics import CLASSIFIER_TAGS, all_topic_names
from tests.conftest import ServiceProcess, eventually, read_topic
from tests.helpers import new_shop, open_conversation
from tests.tls import TlsFiles, make_server_certificate

_kind, _missing = choose_broker()
pytestmark = pytest.mark.skipif(
    _kind != "kafka",
    reason="SASL_SSL is proven on Apache Kafka only (the fallback broker, Tansu, has neither "
           f"TLS nor SASL); here the broker is Tansu: {_missing or 'INBOX_BROKER=tansu'}",
)

USER = "inbox"
#: New at each run, so that finding it in a log means the log wrote it.
PASSWORD = f"scram-{uuid.uuid4().hex}"
LISTENER = "listener.name.sasl_ssl."


@dataclass
class SecureKafka:
    broker: Broker
    tls: TlsFiles
    workdir: Path

    @property
    def bootstrap_servers(self) -> str:
        assert self.broker.node is not None
        return f"127.0.0.1:{self.broker.node.extra_listeners['SASL_SSL']}"

    def settings(self, database_url: str, **kafka_overrides: Any) -> Settings:
        kafka: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": USER,
            "sasl_password": PASSWORD,
            "ssl_cafile": str(self.tls.ca_cert),
            "ssl_check_hostname": True,
            "topic_partitions": 4,
            **kafka_overrides,
        }
        return Settings(kafka=KafkaSettings(**kafka), database=DatabaseSettings(url=database_url))


@pytest.fixture(scope="module")
def secure_kafka(workdir: Path) -> Iterator[SecureKafka]:
    here = workdir / "kafka-security"
    tls = make_server_certificate(here / "tls")
    properties = {
        # TLS: the key and certificate chain as PEM (no Java keystore to build).
        LISTENER + "ssl.keystore.type": "PEM",
        LISTENER + "ssl.keystore.location": str(tls.server_keystore),
        LISTENER + "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
        # SCRAM credentials live in the cluster's metadata (added at format, below).
        LISTENER + "scram-sha-512.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        LISTENER + "plain.sasl.jaas.config":
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{USER}="{PASSWORD}";',
    }
    broker = start_broker(
        here / "broker.log", kind="kafka", extra_properties=properties,
        extra_listeners=["SASL_SSL"],
        format_args=["--add-scram", f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]"],
    )
    try:
        yield SecureKafka(broker, tls, here)
    finally:
        broker.stop()


@pytest.fixture(scope="module")
async def secure_settings(secure_kafka: SecureKafka, database_url: str) -> Settings:
    """Over SASL_SSL: the topics are created on this broker, as every client reaches it."""
    settings = secure_kafka.settings(database_url)
    await migrate_database(database_url)
    created = await ensure_topics(settings)
    assert sorted(created) == sorted(all_topic_names())
    return settings


def secure_service(name: str, settings: Settings, workdir: Path) -> ServiceProcess:
    """A service process whose every Kafka client takes `settings`' security, from the
    environment as in production."""
    workdir.mkdir(parents=True, exist_ok=True)
    service = ServiceProcess(name, settings, workdir)
    service.env.update({
        "KAFKA_SECURITY_PROTOCOL": settings.kafka.security_protocol,
        "KAFKA_SASL_MECHANISM": settings.kafka.sasl_mechanism,
        "KAFKA_SASL_USERNAME": settings.kafka.sasl_username,
        "KAFKA_SASL_PASSWORD": settings.kafka.sasl_password.get_secret_value(),
        "KAFKA_SSL_CAFILE": settings.kafka.ssl_cafile,
        "KAFKA_SSL_CHECK_HOSTNAME": "true",
    })
    return service


@pytest.fixture
async def secure_stack(secure_settings: Settings, secure_kafka: SecureKafka
                       ) -> AsyncIterator[dict[str, ServiceProcess]]:
    services = {name: secure_service(name, secure_settings, secure_kafka.workdir / "services")
                for name in ("router", "classifier")}
    try:
        for service in services.values():
            service.start()
        await asyncio.gather(*(s.wait_ready() for s in services.values()))
        yield services
    finally:
        for service in services.values():
            if service.process is not None:
                service.terminate()


async def readiness(service: ServiceProcess) -> tuple[int, dict]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{service.url}/readyz")
    return response.status_code, response.json()


async def test_a_customer_message_goes_end_to_end_over_sasl_ssl(secure_stack, secure_settings):
    for service in secure_stack.values():
        status, body = await readiness(service)
        assert status == 200 and body["checks"]["kafka"] == {"ok": True,
                                                             "detail": "broker answers"}
    producer = EventProducer(secure_settings, "tests")
    await producer.start()
    db = await create_pool(secure_settings, min_size=1, max_size=2)
    try:
        shop = await new_shop(producer, db)  # the router stored it: consumed over SASL_SSL
        conversation = await open_conversation(
            producer, db, shop.shop_id,
            text="Where is my order #1043? It still hasn't arrived and tracking shows nothing.")
        cid = conversation["conversation_id"]

        async def topics() -> list[str]:
            return list(await db.fetchval(
                "SELECT topics FROM conversations WHERE conversation_id = $1", cid))

        # The classifier read the message and produced its tag; the router applied it.
        assert await eventually(topics, timeout=30) == ["order_status"]
    finally:
        await db.close()
        await producer.stop()
    tags = await read_topic(secure_settings, CLASSIFIER_TAGS,
                            lambda r: str(cid).encode() in r.value)
    assert TopicTag.model_validate_json(tags[0].value).topic == "order_status"
    for service in secure_stack.values():
        assert PASSWORD not in service.log_path.read_text(errors="replace")


async def test_plain_works_too(secure_kafka, secure_settings):
    probe = BrokerProbe(secure_kafka.settings(secure_settings.database.url,
                                              sasl_mechanism="PLAIN"))
    try:
        await probe.check()
    finally:
        await probe.close()


async def test_a_wrong_password_is_refused_and_said_so(secure_kafka, secure_settings):
    wrong = f"wrong-{uuid.uuid4().hex}"
    settings = secure_kafka.settings(secure_settings.database.url, sasl_password=wrong)
    service = secure_service("router", settings, secure_kafka.workdir / "wrong-password")
    service.start()
    last: dict = {}
    try:
        async def refused() -> str | None:
            assert service.process.poll() is None, service.log_tail()
            with contextlib.suppress(httpx.HTTPError):
                status, body = await readiness(service)
                last.update(status=status, **body)
                kafka = body["checks"]["kafka"]
                if status == 503 and not kafka["ok"] and "authentication failed" in kafka["detail"]:
                    return kafka["detail"]
            return None

        try:
            detail = await eventually(refused, timeout=30, interval=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last /readyz: {last}") from None
        assert f"user {USER!r}" in detail and "SCRAM-SHA-512" in detail

        async def logged() -> bool:
            return "authentication failed" in service.log_path.read_text(errors="replace")

        await eventually(logged)
    finally:
        # Still waiting for the broker, a service does not heed SIGTERM until its wait gives
        # up; it holds nothing to flush or hand over yet.
        service.kill()
    log = service.log_path.read_text(errors="replace")
    assert wrong not in log and PASSWORD not in log
    assert wrong not in detail


async def test_the_broker_certificate_is_verified(secure_kafka, secure_settings):
    context = ssl_context(secure_settings)
    assert context is not None
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    host, port = secure_kafka.bootstrap_servers.split(":")
    # The certificate names 127.0.0.1 and localhost, nothing else: another name is refused.
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        await asyncio.open_connection(host, int(port), ssl=context,
                                      server_hostname="broker.example")
    # Without the test's CA, the certificate is not trusted, and the probe says so.
    untrusting = BrokerProbe(secure_kafka.settings(secure_settings.database.url,
                                                   ssl_cafile=""))
    try:
        with pytest.raises(BrokerUnreachable, match="TLS certificate not trusted"):
            await untrusting.check()
    finally:
        await untrusting.close()
