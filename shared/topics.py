"""The topic manifest: every topic the project reads or writes, with its contract.

Topics are created from this list before anything produces (production Kafka runs with topic
auto-creation off). A consumed topic has a `<topic>.dlq` beside it.

Each topic has a retention class. Customer data (messages, carts, orders, commands, the
timeline, outbound replies, Messenger events, delivery results, tags, presence, and every
dead-letter topic) is kept for a bounded time (`KAFKA_CUSTOMER_DATA_RETENTION_MS`), so personal
data leaves the log well within the 30 days Shopify allows for an erasure. Shop data (`shop.*`)
is compacted: the newest record of each key (the event's `key`) stays, and a tombstone (a null
value) for a key removes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
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


class Retention(Enum):
    #: Deleted by age (cleanup.policy=delete, retention.ms from the settings).
    CUSTOMER_DATA = "customer data"
    #: Compacted by key (cleanup.policy=compact); a shop's erasure writes tombstones.
    SHOP_DATA = "shop data"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    schema: type[BaseModel] | TypeAdapter
    description: str
    #: Bounded by time unless said otherwise: the safe default for a topic added later.
    retention: Retention = Retention.CUSTOMER_DATA
    #: A few events a minute at most (settings, catalog changes, rare webhooks): created with
    #: KAFKA_QUIET_TOPIC_PARTITIONS. Every partition a consumer reads costs it work in each
    #: fetch, busy or not, so quiet topics should not have as many as the busy ones.
    quiet: bool = False

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
        TopicSpec(SHOP_SHOPS, c.ShopUpserted, "shops", Retention.SHOP_DATA, quiet=True),
        TopicSpec(SHOP_STAFF, c.StaffUpserted, "staff members and their permissions",
                  Retention.SHOP_DATA, quiet=True),
        TopicSpec(SHOP_PRODUCTS, c.ProductUpserted, "products and their Online Store status",
                  Retention.SHOP_DATA, quiet=True),
        TopicSpec(SHOP_DISCOUNTS, c.DiscountUpserted, "discount codes and their state",
                  Retention.SHOP_DATA, quiet=True),
        TopicSpec(INBOX_TIMELINE, c.TimelineItem, "every item appended to a conversation"),
        TopicSpec(DELIVERY_RESULTS, c.DeliveryResult, "outcome of each outbound message"),
        TopicSpec(CLASSIFIER_TAGS, c.TopicTag, "topics of customer messages"),
        TopicSpec(PRESENCE_CHANGES, c.PresenceChanged, "visitors coming online, going offline"),
        TopicSpec(MESSENGER_EVENTS, c.MessengerEvent, "Messenger webhooks other than messages",
                  quiet=True),
        TopicSpec(INBOX_ASSIGNMENT, c.AssignmentNudge,
                  "staff availability and assignment settings changed (assign the waiting)",
                  quiet=True),
        TopicSpec(PRIVACY_REQUESTS, c.PrivacyRequest,
                  "customer data requests and erasures, shop erasures", quiet=True),
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


def retention_of(name: str) -> Retention:
    """A topic's retention class: its spec's; a dead-letter topic (it holds whatever failed,
    shop data included, under keys nobody tombstones) and a topic outside the manifest are
    customer data."""
    spec = TOPICS.get(name)
    return spec.retention if spec is not None else Retention.CUSTOMER_DATA


def is_quiet(name: str) -> bool:
    """Whether a topic carries few events (its spec says so; a dead-letter topic does, unless
    something is badly wrong): it gets fewer partitions."""
    spec = TOPICS.get(name)
    return spec.quiet if spec is not None else name.endswith(".dlq")


#: Kafka deletes a log segment only once it is closed: segments roll at least this often, so a
#: record outlives `retention.ms` by one segment at most (and the broker's check interval,
#: log.retention.check.interval.ms, 5 minutes by default).
MAX_SEGMENT_MS = 24 * 3600 * 1000
RETENTION_CHECK_MS = 5 * 60 * 1000


def segment_ms(retention_ms: int) -> int:
    return min(retention_ms, MAX_SEGMENT_MS)


def record_lifetime_ms(retention_ms: int) -> int:
    """The longest a record of a customer-data topic stays readable: its retention, the segment
    it waits in, the broker's next check."""
    return retention_ms + segment_ms(retention_ms) + RETENTION_CHECK_MS


def topic_configs(name: str, retention_ms: int) -> dict[str, str]:
    """The topic-level configs a topic is created with and kept at."""
    segment = str(segment_ms(retention_ms))
    if retention_of(name) is Retention.SHOP_DATA:
        # A superseded value or a tombstoned key is compacted away within the retention time
        # (max.compaction.lag.ms), even on a quiet topic; the tombstone itself for a day more.
        return {"cleanup.policy": "compact", "segment.ms": segment,
                "max.compaction.lag.ms": str(retention_ms),
                "delete.retention.ms": str(24 * 3600 * 1000)}
    return {"cleanup.policy": "delete", "retention.ms": str(retention_ms), "segment.ms": segment}
