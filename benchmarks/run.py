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
from shared.kafka.admin import ensure_topics
from shared.kafka.producer import EventProducer
from shared.topics import CHAT_INBOUND

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


async def router_ingest(settings: Settings, count: int, workdir: Path) -> dict[str, float]:
    """Customer messages/s from `chat.inbound` to stored conversation + message + timeline."""
    producer = EventProducer(settings, "bench")
    await producer.start()
    shop = demo_shop(f"bench-{uuid.uuid4().hex[:6]}")
    await publish(producer, shop)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url,
        "HTTP_PORT": str(free_port()),
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
    }
    router = spawn([sys.executable, "-m", "services.router"], env=env,
                   log_path=workdir / "router.log", cwd=ROOT)
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
        return {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "messages": count,
            "raw_broker_produce_consume_per_second": round(broker_rate),
            "raw_postgres_inserts_per_second": round(pg_rate),
            "router_ingest_per_second": round(ingest["messages_per_second"]),
            "router_ingest_vs_raw_broker": round(ingest["messages_per_second"] / broker_rate, 3),
            "router_ingest_vs_raw_postgres": round(ingest["messages_per_second"] / pg_rate, 3),
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
