"""The classifier's step, run by the shared consume loop and by the faust agent, on the same
messages in the same run: ``python -m benchmarks.classifier_loop`` (or ``benchmarks.run --only
classifier``).

A fresh broker; `inbox.timeline` filled with customer messages (the held-out texts); then, in
turns, each runner tags the whole backlog under a consumer group of its own and writes the tags
to `classifier.tags`, and its rate is the messages it worked off per second (first batch to
last). The consume loop commits plainly after the tags are acknowledged (at least once); the
faust agent runs the app's own guarantee (`exactly_once` on Apache Kafka: a transaction per
partition and batch). The figure that matters is their ratio: the agent is to keep at least 90%
of the loop's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inbox.dev.broker import start_broker
from inbox.load.traffic import heldout_texts
from services.classifier.agent import TaggingAgent
from services.classifier.app import create_app, processing_guarantee
from services.classifier.model import load_model
from services.classifier.tagging import Tagger
from shared.config import KafkaSettings, Settings
from shared.contracts import TimelineItem
from shared.health import Health
from shared.kafka.admin import ensure_topics
from shared.kafka.consumer import ConsumeLoop, Subscription
from shared.kafka.producer import EventProducer
from shared.topics import CLASSIFIER_TAGS, INBOX_TIMELINE

TARGET_SHARE = 0.90  # the agent's rate over the loop's, at least


def say(text: str) -> None:
    print(text, flush=True)


async def fill_timeline(settings: Settings, count: int) -> None:
    texts = [t for found in heldout_texts().values() for t in found]
    producer = EventProducer(settings, "bench-fill")
    await producer.start()
    try:
        run = uuid.uuid4().hex[:8]
        futures = []
        for n in range(count):
            item = TimelineItem(
                event_id=f"{run}-{n}", shop_id=f"shop-{n % 20}",
                conversation_id=f"{run}-c{n % 500}",
                channel="online_store_chat", seq=n, kind="customer_message",
                at=datetime.now(UTC), message_id=f"{run}-{n}", author="customer",
                text=texts[n % len(texts)])
            futures.append(await producer.send(INBOX_TIMELINE, item))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class Clock:
    """Messages worked off and when: first batch to the one that reaches `count`."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.started = 0.0
        self.finished = 0.0
        self.cpu = 0.0
        self.done = asyncio.Event()

    def batch(self, size: int) -> None:
        if not self.seen:
            self.started = time.perf_counter()
            self.cpu = time.process_time()
        self.seen += size
        if self.seen >= self.count and not self.done.is_set():
            self.finished = time.perf_counter()
            self.cpu = time.process_time() - self.cpu
            self.done.set()

    def figures(self) -> dict[str, Any]:
        seconds = self.finished - self.started
        # CPU of the whole process over the same span, per message: what the runner's machinery
        # costs beside the work (start-up and group join excluded, as from the rate).
        return {"messages": self.seen, "seconds": round(seconds, 3),
                "per_second": round(self.seen / seconds) if seconds > 0 else 0,
                "cpu_us_per_message": round(self.cpu / self.seen * 1e6) if self.seen else 0}


async def run_consume_loop(settings: Settings, tagger: Tagger, count: int) -> dict[str, Any]:
    """The loop the classifier ran before: tags sent, acknowledged, then the offsets committed."""
    clock = Clock(count)
    producer = EventProducer(settings, "bench-loop")
    await producer.start()

    async def on_timeline(items: list[TimelineItem]) -> None:
        sends = [await producer.send(CLASSIFIER_TAGS, tag) for _, tag in await tagger.tags(items)]
        await asyncio.gather(*sends)
        clock.batch(len(items))

    loop = ConsumeLoop(name="bench-loop", settings=settings, producer=producer, health=Health(),
                       subscriptions=[Subscription(INBOX_TIMELINE, on_timeline,
                                                   transactional=False)],
                       group_id=f"bench-loop-{uuid.uuid4().hex[:6]}")
    task = asyncio.create_task(loop.run())
    try:
        await asyncio.wait_for(clock.done.wait(), timeout=600)
    finally:
        loop.stop()
        await task
        await producer.stop()
    return clock.figures()


async def run_faust_agent(settings: Settings, tagger: Tagger, count: int) -> dict[str, Any]:
    clock = Clock(count)
    app = create_app(settings, "bench-faust", group_id=f"bench-faust-{uuid.uuid4().hex[:6]}")
    agent = TaggingAgent(app, tagger, settings, "bench-faust", Health())
    process = agent.process

    async def counted(events: Any) -> None:
        await process(events)
        clock.batch(len(events))

    agent.process = counted  # type: ignore[method-assign]
    await agent.start()
    try:
        await asyncio.wait_for(clock.done.wait(), timeout=600)
    finally:
        await agent.stop()
        shutil.rmtree(app.conf.datadir, ignore_errors=True)  # a group of its own each run
    return clock.figures()


async def bench_classifier(count: int, rounds: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="inbox-bench-classifier-"))
    broker = start_broker(workdir / "broker.log")
    try:
        settings = Settings(kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers,
                                                **broker.client_settings), log_level="WARNING")
        await ensure_topics(settings)
        await fill_timeline(settings, count)
        tagger = Tagger(load_model(), settings.classifier_threshold)
        results: dict[str, Any] = {"messages": count, "broker": broker.kind,
                                   "guarantee": processing_guarantee(settings),
                                   "consume_loop": [], "faust_agent": []}
        for n in range(rounds):  # in turns, so that a busy moment of the machine hits both
            for name, runner in (("consume_loop", run_consume_loop),
                                 ("faust_agent", run_faust_agent)):
                tagger.model.vectorizer._cache.clear()  # each starts cold, as a fresh service
                figures = await runner(settings, tagger, count)
                results[name].append(figures)
                say(f"  round {n + 1}: {name.replace('_', ' ')} {figures['per_second']:,} msg/s, "
                    f"{figures['cpu_us_per_message']} µs CPU per message")
        best_loop = max(r["per_second"] for r in results["consume_loop"])
        best_agent = max(r["per_second"] for r in results["faust_agent"])
        results["share"] = round(best_agent / best_loop, 3) if best_loop else 0.0
        results["target_share"] = TARGET_SHARE
        return results
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def summary(results: dict[str, Any]) -> str:
    loop = max(r["per_second"] for r in results["consume_loop"])
    agent = max(r["per_second"] for r in results["faust_agent"])
    return (f"classifier, {results['messages']:,} messages ({results['broker']}): consume loop "
            f"{loop:,} msg/s, faust agent ({results['guarantee']}) {agent:,} msg/s = "
            f"{results['share']:.0%} of the loop (target ≥ {TARGET_SHARE:.0%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = asyncio.run(bench_classifier(args.messages, args.rounds))
    say(summary(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if results["share"] >= TARGET_SHARE else 1


if __name__ == "__main__":
    sys.exit(main())
