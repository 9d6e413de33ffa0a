"""A conversation's timeline and what leaves it: the one place that appends timeline items,
stores the messages sent from the inbox, and puts events on the outbox.

Built once by the service and handed to every handler that writes to a conversation, so none
of them reaches into another's internals.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.router import queries as q
from services.router import shop_queries as sq
from services.router.entries import TimelineEntry
from services.router.rules import reply_route
from shared.contracts import OutboundContent, OutboundMessage, Recipient, TimelineItem
from shared.db.outbox import Outbox
from shared.topics import INBOX_TIMELINE


class Timeline:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def append(
        self,
        conn: asyncpg.Connection,
        conversation: asyncpg.Record,
        entry: TimelineEntry,
        seq: int | None = None,
    ) -> None:
        """Append to the conversation's timeline (at `seq` when the caller reserved it) and
        announce it on the timeline topic."""
        seq = await q.append_timeline(conn, conversation["conversation_id"], entry, seq)
        item = TimelineItem(
            event_id=str(entry.item_id),
            shop_id=conversation["shop_id"],
            conversation_id=str(conversation["conversation_id"]),
            channel=conversation["channel"],
            seq=seq,
            kind=entry.kind,  # type: ignore[arg-type]
            at=entry.at,
            message_id=str(entry.message_id) if entry.message_id else None,
            author=entry.author,  # type: ignore[arg-type]
            staff_id=entry.staff_id,
            text=entry.text,
            data=entry.data or {},
        )
        await self.outbox.add(conn, INBOX_TIMELINE, item)

    async def store_outbound(
        self,
        conn: asyncpg.Connection,
        conversation: asyncpg.Record,
        *,
        message_id: uuid.UUID,
        author: str,
        channel: str,
        source_id: str,
        at: datetime,
        text: str | None,
        content: OutboundContent,
        preview: str,
        data: dict[str, Any],
        staff_id: str | None = None,
        delivery_status: str = "pending",
        delivery_reason: str | None = None,
        once: bool = True,
        staff_reply: bool = True,
    ) -> bool:
        """Store a message sent from the inbox, make it the conversation's last message and
        put it on the timeline (kind `merchant_reply`, `data` as given). With `once`, a message
        already stored (a replayed event) changes nothing and False is returned. An automated
        reply (not `staff_reply`) leaves the conversation's preview and unread mark as they
        were."""
        inserted = await q.insert_message(
            conn,
            message_id=message_id,
            conversation_id=conversation["conversation_id"],
            shop_id=conversation["shop_id"],
            direction="outbound",
            author=author,
            staff_id=staff_id,
            channel=channel,
            source_id=source_id,
            sent_at=at,
            text=text,
            content=content.model_dump(mode="json", exclude_none=True),
            delivery_status=delivery_status,
            delivery_reason=delivery_reason,
        )
        if once and not inserted:
            return False
        # One statement sets the last message and reserves the item's sequence number.
        seq = await q.set_last_message(conn, conversation["conversation_id"], at, preview,
                                       staff_reply)
        reply = TimelineEntry(item_id=message_id, kind="merchant_reply", author=author,
                              at=at, text=text, message_id=message_id, staff_id=staff_id,
                              data=data)
        await self.append(conn, conversation, reply, seq)
        return inserted

    async def publish(self, conn: asyncpg.Connection, topic: str, event: BaseModel) -> None:
        """Put an event on the outbox (sent by the relay once the transaction commits)."""
        await self.outbox.add(conn, topic, event)

    async def send(
        self,
        conn: asyncpg.Connection,
        conversation: asyncpg.Record,
        *,
        message_id: uuid.UUID,
        content: OutboundContent,
        kind: str,
        staff_id: str | None,
        at: datetime,
        channel: str | None = None,
    ) -> None:
        """Put a message on the outbound topic of its channel: the one the customer wrote from,
        unless the routing rules chose another (`channel`)."""
        channel = channel or conversation["channel"]
        outbound = OutboundMessage(
            event_id=str(message_id),
            message_id=str(message_id),
            shop_id=conversation["shop_id"],
            conversation_id=str(conversation["conversation_id"]),
            channel=channel,
            kind=kind,  # type: ignore[arg-type]
            recipient=Recipient(
                thread_ref=conversation["thread_ref"],
                email=conversation["customer_email"],
                name=conversation["customer_name"],
                visitor_id=conversation["visitor_id"],
            ),
            content=content,
            staff_id=staff_id,
            created_at=at,
            shop_name=await sq.shop_name_of(conn, conversation),
            conversation_channel=conversation["channel"],
        )
        await self.outbox.add(conn, reply_route(channel), outbound)
