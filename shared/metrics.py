"""Metrics every service shares. Service-specific metrics live beside the service's code.

Conventions: base units, `_total` for counters, `_seconds` for durations, labels from bounded
sets only (topics, partitions, channels, reasons) and never ids, emails or free text.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "inbox_events_consumed_total", "Events read from Kafka, valid or not.", ["topic"]
)
TOMBSTONES = Counter(
    "inbox_tombstones_skipped_total",
    "Records without a value (tombstones of removed keys) read and skipped, by topic.",
    ["topic"],
)
EVENTS_PROCESSED = Counter(
    "inbox_events_processed_total",
    "Events whose effect is durable, by outcome (applied, duplicate).",
    ["topic", "outcome"],
)
EVENTS_DEAD_LETTERED = Counter(
    "inbox_events_dead_lettered_total",
    "Events sent to <topic>.dlq, by reason kind (invalid, rejected, failed).",
    ["topic", "reason"],
)
EVENTS_PRODUCED = Counter("inbox_events_produced_total", "Events written to Kafka.", ["topic"])
HANDLE_SECONDS = Histogram(
    "inbox_handle_duration_seconds",
    "Time to make one batch of a topic durable (one group of its partitions).",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "inbox_consumer_lag_messages",
    "High-water mark minus the consumer's position.",
    ["topic", "partition"],
)
LAST_PROCESSED = Gauge(
    "inbox_consumer_last_processed_timestamp_seconds",
    "Unix time of the last batch made durable.",
    ["topic"],
)
KAFKA_TRANSACTIONS = Counter(
    "inbox_kafka_transactions_total",
    "Kafka transactions holding a partition's outputs and its new offset (exactly-once "
    "consumers), by input topic and outcome (committed, aborted).",
    ["topic", "outcome"],
)
HANDLER_RETRIES = Counter(
    "inbox_handler_retries_total",
    "Batches retried after a transient error (broker or database unavailable).",
    ["topic"],
)
OUTBOX_PUBLISHED = Counter(
    "inbox_outbox_published_total", "Outbox rows published to Kafka.", ["topic"]
)
OUTBOX_PENDING = Gauge("inbox_outbox_pending_rows", "Outbox rows not yet published.")
DB_POOL_SIZE = Gauge("inbox_db_pool_connections", "PostgreSQL pool connections.", ["state"])
