"""Wiring of the notifier."""

from __future__ import annotations

from services.notifier import queries as q
from services.notifier.senders import (
    NotConnectedSender,
    RemoteSender,
    Sender,
    StorefrontChatSender,
)
from services.notifier.smtp import SmtpSender
from services.notifier.worker import DeliveryWorker
from shared.channels import CHANNELS
from shared.kafka.consumer import Subscription
from shared.service import Service
from shared.topics import OUTBOUND_TOPICS


def senders(service: Service) -> dict[str, Sender | RemoteSender]:
    chosen: dict[str, Sender | RemoteSender] = {c: NotConnectedSender(c) for c in CHANNELS}
    chosen["online_store_chat"] = StorefrontChatSender()
    chosen["email"] = SmtpSender(service.settings, service.pool)
    return chosen


def build(service: Service) -> None:
    worker = DeliveryWorker(service.pool, service.outbox, senders(service), service.relay.wake,
                            service.settings.delivery_stale_send_seconds)
    service.consume([Subscription(topic, q.enqueue) for topic in OUTBOUND_TOPICS.values()])
    service.after_commit(worker.wake)
    service.background(worker.run)
