"""The project's own topics: the conversation timeline, outbound messages, delivery results."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shared.contracts.base import ChannelKey, Contract, Event, Id, ShopId, UtcTime

TimelineKind = Literal[
    "customer_message",
    "merchant_reply",
    "cart_event",
    "status_changed",
    "assigned",
    "unassigned",
    "subject_changed",
    "marked_unread",
    "note_added",
    "delivery_failed",
    "attachment_refused",
    "order_updates_off",
    "blocked",
    "unblocked",
]


class TimelineItem(Event):
    """One item appended to a conversation (topic `inbox.timeline`, key `shop_id:conversation_id`).

    `event_id` is the item's id; `seq` orders a conversation's items.
    """

    shop_id: ShopId
    conversation_id: Id
    channel: ChannelKey
    seq: int
    kind: TimelineKind
    at: UtcTime
    message_id: Id | None = None
    author: Literal["customer", "staff", "system"]
    staff_id: Id | None = None
    text: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.conversation_id}"


class TopicTag(Event):
    """A topic attached to a customer message by the classifier (topic `classifier.tags`).

    Emitted only when `probability` reaches the service's threshold.
    """

    shop_id: ShopId
    conversation_id: Id
    message_id: Id
    topic: str
    probability: float = Field(ge=0.0, le=1.0)
    model_version: str
    at: UtcTime

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.conversation_id}"


class PresenceChanged(Event):
    """A storefront visitor came online or went offline (topic `presence.changes`).

    `reason`: `activity` (a signal after being offline), `left` (an explicit leave) or `timeout`
    (no signal within the presence timeout).
    """

    shop_id: ShopId
    visitor_id: Id
    online: bool
    reason: Literal["activity", "left", "timeout"]
    last_seen_at: UtcTime
    at: UtcTime

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.visitor_id}"


class Recipient(Contract):
    thread_ref: str
    email: str | None = None
    name: str | None = None
    visitor_id: str | None = None


class OutboundContent(Contract):
    text: str | None = None
    product: dict[str, Any] | None = None
    discount: dict[str, Any] | None = None
    image_url: str | None = None


class OutboundMessage(Event):
    """A message to deliver to a customer (topic `outbound.<channel>`).

    `event_id` equals `message_id`: a delivery is attempted once per message, whatever the
    number of times this event is read.
    """

    message_id: Id
    shop_id: ShopId
    conversation_id: Id
    channel: ChannelKey
    kind: Literal["human_reply", "automated", "order_update"] = "human_reply"
    recipient: Recipient
    content: OutboundContent
    staff_id: Id | None = None
    created_at: UtcTime
    #: The shop's name (the sender name of an email).
    shop_name: str | None = None
    #: The channel of the conversation, when the message travels on another (email fallback).
    conversation_channel: ChannelKey | None = None

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.conversation_id}"


class DeliveryResult(Event):
    """The outcome of delivering one outbound message (topic `delivery.results`)."""

    message_id: Id
    shop_id: ShopId
    conversation_id: Id
    channel: ChannelKey
    status: Literal["sent", "failed"]
    reason: str | None = None
    error_code: str | None = None
    provider_message_id: str | None = None
    attempts: int = 1
    at: UtcTime

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.conversation_id}"


class AssignmentNudge(Event):
    """Something changed that may let waiting conversations be assigned: a staff member's
    availability, the shop's assignment settings (topic `inbox.assignment`). Key: `shop_id`."""

    shop_id: ShopId
    reason: Literal["availability", "settings"]
    staff_id: Id | None = None
    at: UtcTime

    @property
    def key(self) -> str:
        return self.shop_id
