"""The classifier service: tags customer messages with a topic.

It follows the conversation timeline (`inbox.timeline`), takes the customer messages of each
fetched batch, classifies them in one vectorised call (off the event loop), and publishes a tag
on `classifier.tags` for each message whose probability reaches the threshold. A tag's id is
derived from the message and the model version, so a redelivered message yields the same tag
and the router applies it once.

The shared consume loop, not faust, runs this step: it already batches per fetch, dead-letters
bad input and commits after the tags are acknowledged, like every other service here, and it
joins a group without faust's long rebalance pauses.
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
    def __init__(self, model: TopicModel, producer: EventProducer, threshold: float) -> None:
        self.model = model
        self.producer = producer
        self.threshold = threshold
        MODEL.labels(model.version).set(1)

    async def on_timeline(self, items: list[TimelineItem]) -> None:
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
            sends.append(await self.producer.send(CLASSIFIER_TAGS, tag))
        await asyncio.gather(*sends)


def build(service: Service) -> None:
    classifier = Classifier(load_model(), service.producer, service.settings.classifier_threshold)
    service.consume([Subscription(INBOX_TIMELINE, classifier.on_timeline, transactional=False)])
