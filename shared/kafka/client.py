"""Every Kafka client's options, from one place: the connection (brokers, security protocol,
SASL, TLS) and the producer's and consumer's settings. Producers, consumers, the admin client,
the broker probe, the gateway's live updates, the load generator and the CLI all take theirs
here, so the project connects to a managed Kafka (Confluent Cloud, Amazon MSK, Aiven) by
settings alone.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from typing import Any

from aiokafka.helpers import create_ssl_context

from shared.config import Settings


@lru_cache(maxsize=8)
def _ssl_context(cafile: str, certfile: str, keyfile: str, key_password: str,
                 check_hostname: bool) -> ssl.SSLContext:
    # Built once per process and configuration: loading certificates costs milliseconds.
    context = create_ssl_context(
        cafile=cafile or None,
        certfile=certfile or None,
        keyfile=keyfile or None,
        password=key_password or None,
    )
    if not cafile:
        context.load_default_certs()
    context.check_hostname = check_hostname
    return context


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.kafka.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    return _ssl_context(settings.kafka.ssl_cafile, settings.kafka.ssl_certfile,
                        settings.kafka.ssl_keyfile,
                        settings.kafka.ssl_key_password.get_secret_value(),
                        settings.kafka.ssl_check_hostname)


def connection_options(settings: Settings, client_id: str) -> dict[str, Any]:
    """What every client needs to reach and authenticate to the brokers."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka.bootstrap_servers,
        "client_id": f"{settings.kafka.client_id_prefix}-{client_id}",
        "security_protocol": settings.kafka.security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka.security_protocol.startswith("SASL_"):
        options.update(
            sasl_mechanism=settings.kafka.sasl_mechanism,
            sasl_plain_username=settings.kafka.sasl_username,
            sasl_plain_password=settings.kafka.sasl_password.get_secret_value(),
        )
    return options


def producer_options(settings: Settings, client_id: str,
                     transactional_id: str | None = None) -> dict[str, Any]:
    options = {
        **connection_options(settings, client_id),
        "acks": "all",
        "enable_idempotence": settings.kafka.enable_idempotence,
        "linger_ms": settings.kafka.linger_ms,
        "max_request_size": settings.kafka.max_message_bytes + 64_000,
    }
    if transactional_id is not None:
        options.update(
            transactional_id=transactional_id,
            # An open transaction holds back read_committed readers of what it wrote: one
            # left by a process that died is aborted by the broker after this long at most
            # (sooner when the partition's next owner starts its producer).
            transaction_timeout_ms=settings.kafka.transaction_timeout_ms,
            # A transaction begun right after the previous one committed is often answered
            # CONCURRENT_TRANSACTIONS while the commit markers are written; the default 100 ms
            # backoff then lands on every batch's latency (KAFKA-5477).
            retry_backoff_ms=20,
        )
    return options


def consumer_options(settings: Settings, client_id: str, *, group_id: str | None = None,
                     **overrides: Any) -> dict[str, Any]:
    """A consumer that commits by hand (after the effect is durable); `overrides` for the
    readers that differ (a broadcast from the end, a tool's larger batches)."""
    return {
        **connection_options(settings, client_id),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.kafka.fetch_max_wait_ms,
        # The background fetcher wakes on its own events (an answer, records consumed, a new
        # assignment); its fallback tick needs to be no shorter than a fetch can wait.
        "consumer_timeout_ms": max(200, settings.kafka.fetch_max_wait_ms),
        "session_timeout_ms": settings.kafka.session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka.heartbeat_interval_ms,
        "max_poll_records": settings.kafka.max_poll_records,
        **overrides,
    }
