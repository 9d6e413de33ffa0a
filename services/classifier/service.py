"""Wiring of the classifier.

It follows the conversation timeline and picks the customer messages. Until a trained model is
in place it tags nothing (a tag is only ever attached at high confidence).
"""

from __future__ import annotations

from prometheus_client import Counter

from shared.contracts import TimelineItem
from shared.kafka.consumer import Subscription
from shared.service import Service
from shared.topics import INBOX_TIMELINE

MESSAGES_SEEN = Counter(
    "classifier_messages_total", "Customer messages read for classification.", []
)


async def classify(items: list[TimelineItem]) -> None:
    customer_messages = [i for i in items if i.kind == "customer_message"]
    MESSAGES_SEEN.inc(len(customer_messages))


def build(service: Service) -> None:
    service.consume([Subscription(INBOX_TIMELINE, classify, transactional=False)])
