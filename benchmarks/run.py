"""Benchmarks: `make bench` (or `python -m benchmarks.run`). Prints figures and ratios.

Every figure is quoted against references measured in the same run on the same machine (the
broker's raw produce→consume rate, PostgreSQL's raw insert rate), since absolute numbers on a
shared machine say little. A fresh broker and database are started for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from inbox.demo import demo_shop, publish
from inbox.dev.broker import start_broker
from inbox.dev.postgres import start_postgres
from inbox.dev.processes import free_port, spawn, stop
from shared.config import Settings
from shared.contracts import ChatInbound
from shared.db.migrate import migrate_database
from shared.ids import derived_id
from shared.kafka.admin import ensure_topics
from shared.kafka.producer import EventProducer
from shared.topics import CHAT_INBOUND, CLASSIFIER_TAGS

ROOT = Path(__file__).resolve().parent.parent


def _message(shop_id: str, i: int, threads: int) -> ChatInbound:
    return ChatInbound(
        event_id=str(uuid.uuid4()),
        shop_id=shop_id,
        channel="online_store_chat",
        thread_ref=f"bench-thread-{i % threads}",
        text=f"Hallo, wann wird meine Bestellung #{1000 + i} geliefert? Danke!",
        sent_at=datetime.now(UTC),
        customer={"email": f"customer{i % threads}@example.com", "name": "Bench Customer"},
    )


async def raw_broker(settings: Settings, count: int) -> float:
    """Produce→consume messages of the same size as a chat message, one topic, 8 partitions."""
    topic = f"bench.raw.{uuid.uuid4().hex[:6]}"
    await ensure_topics(settings, [topic])
    value = _message("bench", 0, 1).model_dump_json().encode()
    producer = EventProducer(settings, "bench-raw")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms, max_poll_records=2000,
    )
    await producer.start()
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.kafka_topic_partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        started = time.perf_counter()

        async def produce() -> None:
            futures = [await producer.send_raw(topic, value, str(i)) for i in range(count)]
            await asyncio.gather(*futures)

        producing = asyncio.create_task(produce())
        seen = 0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=200)
            seen += sum(len(r) for r in batches.values())
        await producing
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


async def raw_postgres(settings: Settings, count: int) -> float:
    """Rows/s inserting message-sized rows in batches of 500, one connection."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            "CREATE TEMP TABLE bench_raw (id uuid PRIMARY KEY, text text, at timestamptz)"
        )
        rows = [(uuid.uuid4(), f"message {i}", datetime.now(UTC)) for i in range(count)]
        started = time.perf_counter()
        for i in range(0, count, 500):
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO bench_raw VALUES ($1, $2, $3)", rows[i:i + 500]
                )
        return count / (time.perf_counter() - started)
    finally:
        await conn.close()


def _service(name: str, settings: Settings, workdir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url,
        "HTTP_PORT": str(free_port()),
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
    }
    return spawn([sys.executable, "-m", f"services.{name}"], env=env,
                 log_path=workdir / f"{name}.log", cwd=ROOT)


async def router_ingest(settings: Settings, count: int, workdir: Path) -> dict[str, float]:
    """Customer messages/s from `chat.inbound` to stored conversation + message + timeline."""
    producer = EventProducer(settings, "bench")
    await producer.start()
    shop = demo_shop(f"bench-{uuid.uuid4().hex[:6]}")
    await publish(producer, shop)
    router = _service("router", settings, workdir)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        while not await pool.fetchval("SELECT 1 FROM shops WHERE shop_id = $1", shop.shop_id):
            await asyncio.sleep(0.1)
        messages = [_message(shop.shop_id, i, max(count // 10, 1)) for i in range(count)]
        started = time.perf_counter()
        futures = [await producer.send(CHAT_INBOUND, m) for m in messages]
        await asyncio.gather(*futures)
        produced = time.perf_counter() - started
        while True:
            stored = await pool.fetchval(
                "SELECT count(*) FROM messages WHERE shop_id = $1", shop.shop_id
            )
            if stored >= count:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        return {"messages_per_second": count / elapsed, "produce_seconds": produced,
                "total_seconds": elapsed}
    finally:
        await pool.close()
        stop(router)
        await producer.stop()


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99),
            "max_ms": round(ordered[-1] * 1000, 1)}


async def tagging_latency(
    settings: Settings, count: int, rate: float, workdir: Path
) -> dict[str, float]:
    """End-to-end tagging latency through Kafka: a topical customer message sent on
    `chat.inbound` → stored by the router → classified → its tag on `classifier.tags`."""
    producer = EventProducer(settings, "bench-tags")
    await producer.start()
    shop = demo_shop(f"bench-{uuid.uuid4().hex[:6]}")
    await publish(producer, shop)
    services = [_service(name, settings, workdir) for name in ("router", "classifier")]
    consumer = AIOKafkaConsumer(
        CLASSIFIER_TAGS, bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"bench-{uuid.uuid4().hex[:6]}", auto_offset_reset="latest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
    )
    await consumer.start()
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    try:
        # Warm up: the first tag proves every service is consuming.
        probe = _message(shop.shop_id, 0, 1)
        await producer.send_and_wait(CHAT_INBOUND, probe)
        while not any(await consumer.getmany(timeout_ms=500)):
            pass

        async def receive() -> None:
            while len(latencies) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    now = time.perf_counter()
                    for record in records:
                        message_id = json.loads(record.value)["message_id"]
                        if message_id in sent_at:
                            latencies.append(now - sent_at.pop(message_id))

        receiving = asyncio.create_task(receive())
        for i in range(count):
            message = _message(shop.shop_id, i + 1, count)
            sent_at[str(derived_id("message", shop.shop_id, message.event_id))] = (
                time.perf_counter()
            )
            await producer.send(CHAT_INBOUND, message)
            await asyncio.sleep(1 / rate)
        await asyncio.wait_for(receiving, 60)
        return {"messages": count, "rate_per_second": rate, **_percentiles(latencies)}
    finally:
        await consumer.stop()
        for service in services:
            stop(service)
        await producer.stop()


async def main(count: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="inbox-bench-"))
    broker = start_broker(workdir / "broker.log")
    pg = start_postgres(workdir / "pgdata", temporary=True, durable=False,
                        log_path=workdir / "pg.log")
    try:
        settings = Settings(kafka_bootstrap_servers=broker.bootstrap_servers,
                            database_url=pg.url, log_level="WARNING")
        await migrate_database(settings.database_url)
        await ensure_topics(settings)
        broker_rate = await raw_broker(settings, count * 2)
        pg_rate = await raw_postgres(settings, count)
        ingest = await router_ingest(settings, count, workdir)
        tagging = await tagging_latency(settings, 500, 100.0, workdir)
        return {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "messages": count,
            "raw_broker_produce_consume_per_second": round(broker_rate),
            "raw_postgres_inserts_per_second": round(pg_rate),
            "router_ingest_per_second": round(ingest["messages_per_second"]),
            "router_ingest_vs_raw_broker": round(ingest["messages_per_second"] / broker_rate, 3),
            "router_ingest_vs_raw_postgres": round(ingest["messages_per_second"] / pg_rate, 3),
            "tagging_latency_at_100_per_second": tagging,
        }
    finally:
        pg.stop()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = asyncio.run(main(args.messages))
    for key, value in results.items():
        print(f"{key:42} {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
