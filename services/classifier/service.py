"""The classifier service: tags customer messages with a topic.

It follows the conversation timeline (`inbox.timeline`), takes the customer messages of each
fetched batch, classifies them in one vectorised call (off the event loop), and publishes a tag
on `classifier.tags` for each message whose probability reaches the threshold.

Exactly once on Apache Kafka: the tags of a partition's batch and the partition's new offset
commit in one Kafka transaction (the shared consume loop's `exactly_once` subscriptions), so a
read_committed reader sees each tag once, whatever crashes. Where the broker has no
transactions (Tansu), or with `KAFKA_EXACTLY_ONCE=false`, it is at least once. Either way a
tag's id is derived from the message and the model version, so a tag seen twice (repeated, or
read uncommitted from an aborted transaction) is applied once by the router.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram

from services.classifier.model import TopicModel, load_model
from shared.contracts import TimelineItem, TopicTag
from shared.kafka.consumer import Subscription
from shared.kafka.producer import EventProducer
from shared.service import Service
from shared.topics import CLASSIFIER_TAGS, INBOX_TIMELINE

MESSAGES = Counter(
    "classifier_messages_total",
    "Customer messages classified, by topic (best guess, or none) and whether it was tagged.",
    ["topic", "tagged"],
)
PROBABILITY = Histogram(
    "classifier_probability",
    "Probability of the most likely topic of each message.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1.0),
)
SECONDS = Histogram(
    "classifier_batch_duration_seconds",
    "Time to classify one batch of messages.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
MODEL = Gauge("classifier_model_info", "The model in use (value 1), by version.", ["version"])


class Classifier:
    def __init__(self, model: TopicModel, threshold: float) -> None:
        self.model = model
        self.threshold = threshold
        MODEL.labels(model.version).set(1)

    async def on_timeline(self, items: list[TimelineItem], producer: EventProducer) -> None:
        """Tag the customer messages among `items`, sending the tags with `producer` (in the
        transaction of the partition they came from, where the broker has transactions)."""
        messages = [i for i in items if i.kind == "customer_message" and (i.text or "").strip()]
        if not messages:
            return
        started = time.perf_counter()
        predictions = await asyncio.to_thread(
            self.model.predict, [m.text or "" for m in messages], self.threshold
        )
        SECONDS.observe(time.perf_counter() - started)
        now = datetime.now(UTC)
        sends = []
        for message, prediction in zip(messages, predictions, strict=True):
            PROBABILITY.observe(prediction.probability)
            MESSAGES.labels(prediction.best_topic or "none", str(bool(prediction.topic)).lower()
                            ).inc()
            if prediction.topic is None:
                continue
            tag = TopicTag(
                event_id=f"{message.message_id}:{self.model.version}",
                shop_id=message.shop_id,
                conversation_id=message.conversation_id,
                message_id=message.message_id or message.event_id,
                topic=prediction.topic,
                probability=round(prediction.probability, 4),
                model_version=self.model.version,
                at=now,
            )
            sends.append(await producer.send(CLASSIFIER_TAGS, tag))
        await asyncio.gather(*sends)


def build(service: Service) -> None:
    classifier = Classifier(load_model(), service.settings.classifier_threshold)
    service.consume([Subscription(INBOX_TIMELINE, classifier.on_timeline, transactional=False,
                                  exactly_once=True)])
