"""Channel senders: how a message reaches the customer on each channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import asyncpg

from services.notifier import queries as q
from shared.contracts import OutboundMessage


@dataclass(frozen=True)
class Outcome:
    status: Literal["sent", "failed", "retry"]
    reason: str | None = None
    error_code: str | None = None
    provider_message_id: str | None = None


class Sender(Protocol):
    """Delivers inside the delivery's own transaction (nothing leaves the database)."""

    async def send(self, conn: asyncpg.Connection, message: OutboundMessage) -> Outcome: ...


class RemoteSender:
    """Delivers to a remote system (SMTP, an HTTP API): the attempt is recorded before the
    call and the outcome after it, in transactions of their own."""

    async def send(self, message: OutboundMessage) -> Outcome:
        raise NotImplementedError


class StorefrontChatSender:
    """Online Store chat: the message goes into the customer's chat mailbox, which the storefront
    widget reads. It is written in the delivery's own transaction, so it happens exactly once."""

    async def send(self, conn: asyncpg.Connection, message: OutboundMessage) -> Outcome:
        await q.store_chat_message(conn, message)
        return Outcome("sent", provider_message_id=message.message_id)


class NotConnectedSender:
    """A channel with no connection configured: the merchant sees why nothing was sent."""

    def __init__(self, channel: str) -> None:
        self._channel = channel

    async def send(self, conn: asyncpg.Connection, message: OutboundMessage) -> Outcome:
        return Outcome(
            "failed",
            reason=f"the {self._channel} channel is not connected",
            error_code="channel_not_connected",
        )
