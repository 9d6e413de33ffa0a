"""The classifier's faust app, configured from the project's settings.

Broker, security and client id come from `settings.kafka` through `shared.kafka.client` (the
one policy every Kafka client follows); the group's timeouts are the consume loop's, so a
classifier joins (and a dead one's partitions move) as quickly as any other service's.

The processing guarantee follows the broker: transactions need an idempotent producer, so with
`KAFKA_ENABLE_IDEMPOTENCE` (production Kafka, the default) the app runs `exactly_once` — the
tags of a batch and the offsets they answer commit in one Kafka transaction — and without it
(Tansu, which has neither) `at_least_once`, where the tags' deterministic ids let the router
apply a repeated one once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import faust
from faust.auth import SASLCredentials

from shared.config import Settings
from shared.kafka.client import connection_options, ssl_context


def processing_guarantee(settings: Settings) -> str:
    return "exactly_once" if settings.kafka.enable_idempotence else "at_least_once"


def _broker_options(settings: Settings, name: str) -> dict[str, Any]:
    connection = connection_options(settings, name)
    options: dict[str, Any] = {
        "broker": [f"kafka://{server.strip()}"
                   for server in settings.kafka.bootstrap_servers.split(",") if server.strip()],
        "broker_client_id": connection["client_id"],
    }
    if settings.kafka.security_protocol.startswith("SASL_"):
        options["broker_credentials"] = SASLCredentials(
            username=connection["sasl_plain_username"],
            password=connection["sasl_plain_password"],
            ssl_context=connection.get("ssl_context"),
            mechanism=connection["sasl_mechanism"],
        )
    elif settings.kafka.security_protocol == "SSL":
        options["ssl_context"] = ssl_context(settings)
    return options


def create_app(settings: Settings, name: str, group_id: str) -> faust.App:
    session = settings.kafka.session_timeout_ms / 1000
    app = faust.App(
        group_id,
        **_broker_options(settings, name),
        processing_guarantee=processing_guarantee(settings),
        # The service's side door serves /metrics, /healthz and /readyz: no second server.
        web_enabled=False,
        # No tables: no state directory worth keeping, no changelog, no leader topic.
        datadir=Path(tempfile.gettempdir()) / f"{group_id}-faust",
        topic_disable_leader=True,
        # Topics are created by the service frame (`ensure_topics`), with the project's shape.
        topic_allow_declare=False,
        topic_partitions=settings.kafka.topic_partitions,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session,
        broker_heartbeat_interval=settings.kafka.heartbeat_interval_ms / 1000,
        broker_rebalance_timeout=max(session, 10.0),
        broker_request_timeout=max(40.0, session + 5),
        broker_max_poll_records=settings.kafka.max_poll_records,
        # The agent commits after each batch (see agent.py); faust's timer commit, which could
        # fall in the middle of one, is pushed out of the way.
        broker_commit_interval=3600.0,
        producer_acks=-1,
        producer_linger_ms=settings.kafka.linger_ms,
        producer_max_request_size=settings.kafka.max_message_bytes + 64_000,
        stream_wait_empty=True,
        autodiscover=False,
    )
    # The service frame plays the part of faust's Worker (which would install its own signal
    # handlers, logging and web server). faust honours `exactly_once` only in a worker: without
    # this flag it silently commits offsets and sends outside any transaction.
    app.in_worker = True
    return app
