"""The router's domain rules: plain functions, no I/O."""

from __future__ import annotations

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


def reply_route(conversation_channel: str) -> str:
    """The topic a reply leaves on: the channel the customer wrote from."""
    return outbound_topic(conversation_channel)
