"""Wiring of the notifier."""

from __future__ import annotations

import asyncio

from services.notifier import queries as q
from services.notifier.inbound_email import serve_inbound_smtp
from services.notifier.messenger import messenger_sender
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
    chosen["messenger"] = messenger_sender(service)
    return chosen


def build(service: Service) -> None:
    worker = DeliveryWorker(service.pool, service.outbox, senders(service), service.relay.wake,
                            service.settings.delivery_stale_send_seconds)
    service.consume([Subscription(topic, q.enqueue) for topic in OUTBOUND_TOPICS.values()])
    if service.settings.mail.inbound_smtp_port:

        async def inbound_email() -> None:
            server = await serve_inbound_smtp(
                service.pool, service.producer, service.settings.http.host,
                service.settings.mail.inbound_smtp_port,
            )
            try:
                await asyncio.Event().wait()  # until the service stops (cancelled)
            finally:
                server.close()

        service.background(inbound_email)
    service.on_applied(worker.wake)
    service.background(worker.run)
    service.on_stop(lambda: worker.drain(service.settings.shutdown_grace_seconds))
