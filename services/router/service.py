"""Wiring of the router: which topics it reads and with which handler."""

from __future__ import annotations

from datetime import timedelta

from services.router import queries as q
from services.router.handlers import Router
from shared.kafka.consumer import Subscription
from shared.service import Service
from shared.topics import (
    CHAT_INBOUND,
    CLASSIFIER_TAGS,
    DELIVERY_RESULTS,
    INBOX_COMMANDS,
    MESSENGER_EVENTS,
    ORDERS_EVENTS,
    PRESENCE_CHANGES,
    SHOP_DISCOUNTS,
    SHOP_PRODUCTS,
    SHOP_SHOPS,
    SHOP_STAFF,
    STOREFRONT_CART,
)


def build(service: Service) -> None:
    router = Router(service.outbox, timedelta(seconds=service.settings.presence_timeout_seconds))
    service.consume(
        [
            Subscription(CHAT_INBOUND, router.on_chat_inbound),
            Subscription(INBOX_COMMANDS, router.on_command),
            Subscription(DELIVERY_RESULTS, router.on_delivery_result),
            Subscription(STOREFRONT_CART, router.on_cart),
            Subscription(ORDERS_EVENTS, router.on_order),
            Subscription(CLASSIFIER_TAGS, router.on_topic_tag),
            Subscription(PRESENCE_CHANGES, router.on_presence),
            Subscription(MESSENGER_EVENTS, router.order_updates.on_messenger_events),
            Subscription(SHOP_SHOPS, Router.upserting(q.upsert_shop)),
            Subscription(SHOP_STAFF, Router.upserting(q.upsert_staff)),
            Subscription(SHOP_PRODUCTS, Router.upserting(q.upsert_product)),
            Subscription(SHOP_DISCOUNTS, Router.upserting(q.upsert_discount)),
        ]
    )
