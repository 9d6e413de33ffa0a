"""Wiring of the router: which topics it reads and with which handler."""

from __future__ import annotations

from datetime import timedelta

from services.router import shop_queries as sq
from services.router.assignment import Assigner
from services.router.automation import AutomatedReplies
from services.router.commands import Commands
from services.router.handlers import Router
from services.router.order_updates import OrderUpdates
from services.router.privacy import Privacy
from services.router.timeline import Timeline
from shared.kafka.consumer import Subscription
from shared.service import Service
from shared.topics import (
    CHAT_INBOUND,
    CLASSIFIER_TAGS,
    DELIVERY_RESULTS,
    INBOX_ASSIGNMENT,
    INBOX_COMMANDS,
    MESSENGER_EVENTS,
    ORDERS_EVENTS,
    PRESENCE_CHANGES,
    PRIVACY_REQUESTS,
    SHOP_DISCOUNTS,
    SHOP_PRODUCTS,
    SHOP_SHOPS,
    SHOP_STAFF,
    STOREFRONT_CART,
)


def build(service: Service) -> None:
    # One timeline (and outbox) for every handler that writes to a conversation.
    timeline = Timeline(service.outbox)
    order_updates = OrderUpdates(timeline)
    assigner = Assigner(timeline)
    presence_timeout = timedelta(seconds=service.settings.presence_timeout_seconds)
    commands = Commands(timeline, order_updates, presence_timeout, assigner)
    router = Router(timeline, order_updates, assigner,
                    AutomatedReplies(timeline, presence_timeout))
    service.consume(
        [
            Subscription(CHAT_INBOUND, router.on_chat_inbound),
            Subscription(INBOX_COMMANDS, commands.on_command),
            Subscription(DELIVERY_RESULTS, router.on_delivery_result),
            Subscription(STOREFRONT_CART, router.on_cart),
            Subscription(ORDERS_EVENTS, router.on_order),
            Subscription(CLASSIFIER_TAGS, router.on_topic_tag),
            Subscription(PRESENCE_CHANGES, router.on_presence),
            Subscription(MESSENGER_EVENTS, order_updates.on_messenger_events),
            Subscription(SHOP_SHOPS, Router.upserting(sq.upsert_shop)),
            Subscription(SHOP_STAFF, Router.upserting(sq.upsert_staff)),
            Subscription(SHOP_PRODUCTS, Router.upserting(sq.upsert_product)),
            Subscription(SHOP_DISCOUNTS, Router.upserting(sq.upsert_discount)),
            Subscription(INBOX_ASSIGNMENT, assigner.on_nudges),
            Subscription(PRIVACY_REQUESTS, Privacy(service.outbox).on_requests),
        ]
    )
