"""The conversation channels.

The set is open: adding a channel is one entry here (and a sender in the notifier). Each channel's
replies leave on its own outbound topic, so a channel's delivery scales and fails on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Channel:
    key: str
    label: str
    #: Whether the customer may attach images on this channel.
    customer_images: bool


CHANNELS: dict[str, Channel] = {
    c.key: c
    for c in (
        Channel("online_store_chat", "Online Store chat", customer_images=False),
        Channel("messenger", "Messenger", customer_images=True),
        Channel("email", "Email", customer_images=True),
        Channel("instagram", "Instagram", customer_images=True),
        Channel("shop_app", "Shop app", customer_images=True),
    )
}


def outbound_topic(channel: str) -> str:
    """The topic a reply on `channel` leaves on."""
    return f"outbound.{channel}"
