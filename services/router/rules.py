"""The router's domain rules: plain functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.channels import outbound_topic
from shared.contracts import OutboundContent

PREVIEW_LENGTH = 120


def preview(text: str | None, fallback: str = "") -> str:
    """The one-line preview shown in the conversation list."""
    flat = " ".join((text or "").split())
    if not flat:
        return fallback
    return flat if len(flat) <= PREVIEW_LENGTH else flat[: PREVIEW_LENGTH - 1] + "…"


def reply_preview(content: OutboundContent) -> str:
    """A reply's preview: its text, else what it carries."""
    if content.product:
        fallback = f"Product: {content.product['title']}"
    elif content.discount:
        fallback = f"Discount code {content.discount['code']}"
    else:
        fallback = "(image)"
    return preview(content.text, fallback)


@dataclass(frozen=True)
class ReplyPath:
    """Where a reply goes: `channel` it travels on, or held (channel None) with the reason."""

    channel: str | None
    held_reason: str | None = None

    @property
    def email_fallback(self) -> bool:
        return self.channel == "email"


NO_EMAIL_HELD = "Waiting for the customer to come back: they left the store and gave no email."


def customer_is_online(
    customer_online: bool | None,
    last_customer_message_at: datetime | None,
    now: datetime,
    presence_timeout: timedelta,
) -> bool:
    """Presence decides; with no presence signal ever seen, a customer who wrote within the
    presence timeout counts as there."""
    if customer_online is not None:
        return customer_online
    return last_customer_message_at is not None and (
        now - last_customer_message_at < presence_timeout
    )


def reply_path(channel: str, online: bool, email: str | None) -> ReplyPath:
    """A reply leaves on the channel the customer wrote from. The exception: online store chat
    when the customer has left the store goes by email, or waits for them without an email."""
    if channel != "online_store_chat" or online:
        return ReplyPath(channel)
    if email:
        return ReplyPath("email")
    return ReplyPath(None, NO_EMAIL_HELD)


def reply_route(conversation_channel: str) -> str:
    """The topic a reply leaves on: the channel the customer wrote from."""
    return outbound_topic(conversation_channel)
