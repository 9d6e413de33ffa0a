"""The router's domain rules: plain functions, no I/O."""

from __future__ import annotations

from shared.channels import outbound_topic

PREVIEW_LENGTH = 120


def preview(text: str | None, fallback: str = "") -> str:
    """The one-line preview shown in the conversation list."""
    flat = " ".join((text or "").split())
    if not flat:
        return fallback
    return flat if len(flat) <= PREVIEW_LENGTH else flat[: PREVIEW_LENGTH - 1] + "…"


def reply_route(conversation_channel: str) -> str:
    """The topic a reply leaves on: the channel the customer wrote from."""
    return outbound_topic(conversation_channel)
