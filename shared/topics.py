"""The topic manifest: every topic the project reads or writes, with its contract.

Topics are created from this list before anything produces (production Kafka runs with topic
auto-creation off). A consumed topic has a `<topic>.dlq` beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter

from shared import contracts as c
from shared.channels import CHANNELS, outbound_topic

CHAT_INBOUND = "chat.inbound"
STOREFRONT_CART = "storefront.cart"
STOREFRONT_ACTIVITY = "storefront.activity"
ORDERS_EVENTS = "orders.events"
INBOX_COMMANDS = "inbox.commands"
SHOP_SHOPS = "shop.shops"
SHOP_STAFF = "shop.staff"
SHOP_PRODUCTS = "shop.products"
SHOP_DISCOUNTS = "shop.discounts"
INBOX_TIMELINE = "inbox.timeline"
DELIVERY_RESULTS = "delivery.results"
CLASSIFIER_TAGS = "classifier.tags"
PRESENCE_CHANGES = "presence.changes"
MESSENGER_EVENTS = "messenger.events"
PRIVACY_REQUESTS = "privacy.requests"
INBOX_ASSIGNMENT = "inbox.assignment"
OUTBOUND_TOPICS = {channel: outbound_topic(channel) for channel in CHANNELS}


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


Decoder = Callable[[bytes], Any]


def _decoder(schema: type[BaseModel] | TypeAdapter) -> Decoder:
    if isinstance(schema, TypeAdapter):
        return schema.validate_json
    return schema.model_validate_json


@dataclass(frozen=True)
class TopicSpec:
    name: str
    schema: type[BaseModel] | TypeAdapter
    description: str

    @property
    def decode(self) -> Decoder:
        return _decoder(self.schema)


TOPICS: dict[str, TopicSpec] = {
    t.name: t
    for t in [
        TopicSpec(CHAT_INBOUND, c.ChatInbound, "customer messages from every channel"),
        TopicSpec(STOREFRONT_CART, c.CartEvent, "cart additions and removals"),
        TopicSpec(STOREFRONT_ACTIVITY, c.ActivityEvent, "storefront presence signals"),
        TopicSpec(ORDERS_EVENTS, c.OrderEvent, "order life cycle"),
        TopicSpec(INBOX_COMMANDS, c.INBOX_COMMAND, "merchant commands"),
        TopicSpec(SHOP_SHOPS, c.ShopUpserted, "shops"),
        TopicSpec(SHOP_STAFF, c.StaffUpserted, "staff members and their permissions"),
        TopicSpec(SHOP_PRODUCTS, c.ProductUpserted, "products and their Online Store status"),
        TopicSpec(SHOP_DISCOUNTS, c.DiscountUpserted, "discount codes and their state"),
        TopicSpec(INBOX_TIMELINE, c.TimelineItem, "every item appended to a conversation"),
        TopicSpec(DELIVERY_RESULTS, c.DeliveryResult, "outcome of each outbound message"),
        TopicSpec(CLASSIFIER_TAGS, c.TopicTag, "topics of customer messages"),
        TopicSpec(PRESENCE_CHANGES, c.PresenceChanged, "visitors coming online, going offline"),
        TopicSpec(MESSENGER_EVENTS, c.MessengerEvent, "Messenger webhooks other than messages"),
        TopicSpec(INBOX_ASSIGNMENT, c.AssignmentNudge,
                  "staff availability and assignment settings changed (assign the waiting)"),
        TopicSpec(PRIVACY_REQUESTS, c.PrivacyRequest,
                  "customer data requests and erasures, shop erasures"),
        *(
            TopicSpec(topic, c.OutboundMessage, f"replies leaving on {channel}")
            for channel, topic in OUTBOUND_TOPICS.items()
        ),
    ]
}


# Messenger's outbound messages may carry a recipient by PSID or user_ref, an order update and
# quick replies (a plain OutboundMessage reads as one with those empty).
TOPICS[OUTBOUND_TOPICS["messenger"]] = TopicSpec(
    OUTBOUND_TOPICS["messenger"], c.MessengerOutbound, "replies and order updates on Messenger"
)


def all_topic_names() -> list[str]:
    """Every topic to create, each with its dead-letter topic."""
    names = list(TOPICS)
    return names + [dlq_topic(n) for n in names]
