"""What the classifier does with a batch of timeline items, whoever delivers them: the customer
messages among them classified in one vectorised call (off the event loop), a `TopicTag` for
each whose probability reaches the threshold. A tag's id is derived from the message and the
model version, so a message classified twice yields the same tag and the router applies it once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram

from services.classifier.model import TopicModel
from shared.contracts import TimelineItem, TopicTag

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


def is_customer_message(item: TimelineItem) -> bool:
    return item.kind == "customer_message" and bool((item.text or "").strip())


class Tagger:
    def __init__(self, model: TopicModel, threshold: float) -> None:
        self.model = model
        self.threshold = threshold
        MODEL.labels(model.version).set(1)

    async def tags(self, items: list[TimelineItem]) -> list[tuple[TimelineItem, TopicTag]]:
        """(message, its tag) for each customer message among `items` that gets a topic."""
        messages = [i for i in items if is_customer_message(i)]
        if not messages:
            return []
        started = time.perf_counter()
        predictions = await asyncio.to_thread(
            self.model.predict, [m.text or "" for m in messages], self.threshold
        )
        SECONDS.observe(time.perf_counter() - started)
        now = datetime.now(UTC)
        tagged = []
        for message, prediction in zip(messages, predictions, strict=True):
            PROBABILITY.observe(prediction.probability)
            MESSAGES.labels(prediction.best_topic or "none", str(bool(prediction.topic)).lower()
                            ).inc()
            if prediction.topic is None:
                continue
            tagged.append((message, TopicTag(
                event_id=f"{message.message_id}:{self.model.version}",
                shop_id=message.shop_id,
                conversation_id=message.conversation_id,
                message_id=message.message_id or message.event_id,
                topic=prediction.topic,
                probability=round(prediction.probability, 4),
                model_version=self.model.version,
                at=now,
            )))
        return tagged
