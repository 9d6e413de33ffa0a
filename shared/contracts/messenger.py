"""Messenger contracts: what the gateway hears from Meta besides customer messages
(`messenger.events`), and the Messenger flavour of an outbound message (`outbound.messenger`).

Customer messages themselves travel on `chat.inbound` like every channel's; everything else a
Messenger webhook reports (postbacks, opt-ins, the answers to our quick replies, echoes,
deliveries, reads, and what the gateway refused) is a `MessengerEvent`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shared.contracts.base import Contract, Event, Id, ShopId, UtcTime
from shared.contracts.internal import OutboundMessage, Recipient

MessengerEventType = Literal[
    "postback",  # a button or the persistent menu was tapped (`payload`, `title`)
    "quick_reply",  # one of our quick replies was tapped (`payload`, `title`)
    "optin",  # the checkout checkbox: `user_ref` (and the plugin's `ref`), no PSID yet
    "identified",  # Meta told which PSID answered after a checkbox opt-in (`user_ref` -> `psid`)
    "echo",  # a copy of a message the Page sent (`mid`)
    "delivery",  # the Page's messages up to `watermark` reached the person (`mids`)
    "read",  # the person read the Page's messages up to `watermark`
    "refused",  # not taken in; `refused_kind` and `reason` say what and why
]

Payload = Annotated[str, StringConstraints(max_length=1000)]


class MessengerEvent(Event):
    """One thing a Messenger webhook reported (topic `messenger.events`).

    Key: `page_id:psid` (or `page_id:user_ref`), so one person's events stay in order.
    `shop_id` is the shop the Page is connected to; None when no shop has it (then `type` is
    `refused`). `at` is Meta's timestamp of the person's action.
    """

    type: MessengerEventType
    page_id: Id
    shop_id: ShopId | None = None
    psid: Id | None = None
    user_ref: Id | None = None
    at: UtcTime
    payload: Payload | None = None
    title: Payload | None = None
    ref: Payload | None = None
    mid: Id | None = None
    mids: list[Id] = Field(default_factory=list, max_length=1000)
    watermark: UtcTime | None = None
    refused_kind: Literal["message", "optin", "postback", "quick_reply"] | None = None
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None

    @property
    def key(self) -> str:
        return f"{self.page_id}:{self.psid or self.user_ref or '-'}"


class MessengerRecipient(Recipient):
    """Whom a Messenger message goes to. Without `page_id`, the conversation's `thread_ref`
    (`<page_id>:<psid>` or `<page_id>:user_ref:<user_ref>`) says it."""

    page_id: str | None = None
    psid: str | None = None
    user_ref: str | None = None


class QuickReply(Contract):
    title: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    payload: Payload


class OrderUpdate(Contract):
    """An order update: the notifier sends it as free text inside Meta's 24-hour window and as
    a utility template (placeholders only) outside it."""

    order_id: Id
    order_number: str
    update: Literal["confirmation", "shipped", "delivery_update", "delivered"]
    tracking_number: str | None = None
    tracking_url: str | None = None
    carrier: str | None = None


class MessengerOutbound(OutboundMessage):
    """An outbound message on `outbound.messenger`. Replies the router sends as a plain
    `OutboundMessage` read as this with the Messenger fields empty."""

    recipient: MessengerRecipient
    order_update: OrderUpdate | None = None
    quick_replies: list[QuickReply] = Field(default_factory=list, max_length=13)
    #: The prompt and acknowledgements of the customer's "Order update settings": they belong to
    #: the order updates, which a removed channel keeps for customers who opted in.
    order_updates_settings: bool = False
