"""Customer messages in bulk: one batch of `chat.inbound` in a handful of set-based statements.

A batch's events are grouped by conversation; each conversation is upserted once (reserving a
range of timeline sequence numbers), then all messages, timeline items and outbox rows are
inserted with one statement each. The result is the same as applying the events one by one,
a refused image is answered afterwards by the caller.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from services.router import queries as q
from services.router.metrics import CUSTOMER_MESSAGES
from services.router.rules import preview
from shared.contracts import ChatInbound, TimelineItem
from shared.db.outbox import Outbox
from shared.db.shops import known_shops
from shared.ids import derived_id
from shared.kafka.consumer import Rejected
from shared.rules import customer_attachments
from shared.topics import INBOX_TIMELINE


@dataclass
class _Thread:
    """The events of one conversation in this batch, in arrival order."""

    events: list[ChatInbound] = field(default_factory=list)

    def first(self, attribute: str) -> Any:
        """Identity fields: the earliest value given wins (a known one is never overwritten)."""
        for event in self.events:
            value = getattr(event.customer, attribute, None) if event.customer else None
            if value:
                return value
        return None

    def last(self, attribute: str) -> Any:
        """Circumstantial fields (where the customer is now): the latest value given wins."""
        for event in reversed(self.events):
            value = getattr(event.customer, attribute, None) if event.customer else None
            if value:
                return value
        return None

    @property
    def newest(self) -> ChatInbound:
        return max(self.events, key=lambda e: e.sent_at)


async def require_known_shops(conn: asyncpg.Connection, events: list[Any]) -> None:
    """Refuse a batch naming a shop we do not know (the consume loop then isolates the event)."""
    known = await known_shops(conn, {e.shop_id for e in events})
    unknown = sorted({e.shop_id for e in events} - known)
    if unknown:
        raise Rejected(f"unknown shop {unknown[0]!r}")


async def store_customer_messages(
    conn: asyncpg.Connection, outbox: Outbox, events: list[ChatInbound]
) -> list[tuple[ChatInbound, list[Any]]]:
    """Store the batch; returns the events whose attachments were partly refused (images in
    online store chat), with what was refused: the rest of each message is stored."""
    await require_known_shops(conn, events)

    threads: dict[tuple[str, str, str], _Thread] = defaultdict(_Thread)
    for event in events:
        threads[(event.shop_id, event.channel, event.thread_ref)].events.append(event)
    # A stable order of row locks keeps concurrent router instances from deadlocking.
    keys = sorted(threads)
    rows = []
    for shop_id, channel, thread_ref in keys:
        thread = threads[(shop_id, channel, thread_ref)]
        newest = thread.newest
        rows.append((
            derived_id("conversation", shop_id, channel, thread_ref),
            shop_id, channel, thread_ref,
            thread.first("name"), thread.first("email"), thread.first("customer_id"),
            thread.last("locale"), thread.last("city"), thread.last("country"),
            thread.last("timezone"),
            next((e.visitor_id for e in reversed(thread.events) if e.visitor_id), None),
            min(e.sent_at for e in thread.events), newest.sent_at,
            preview(newest.text, fallback="(attachment)"), len(thread.events),
        ))
    conversations = await q.upsert_conversations(conn, rows)

    messages, items, announcements, refusals = [], [], [], []
    for key in keys:
        conversation = conversations[key]
        thread = threads[key]
        first_seq = conversation["timeline_seq"] - len(thread.events) + 1
        for offset, event in enumerate(thread.events):
            message_id = derived_id("message", event.shop_id, event.event_id)
            attachments, refused = customer_attachments(
                event.channel, [a.model_dump(mode="json") for a in event.attachments]
            )
            if refused:
                refusals.append((event, refused))
            data = {"attachments": attachments} if attachments else {}
            messages.append((message_id, conversation["conversation_id"], event.shop_id,
                             event.channel, event.event_id, event.sent_at, event.text, data))
            items.append((message_id, conversation["conversation_id"], first_seq + offset,
                          event.text, data, event.sent_at))
            item = TimelineItem(
                event_id=str(message_id), shop_id=event.shop_id,
                conversation_id=str(conversation["conversation_id"]), channel=event.channel,
                seq=first_seq + offset, kind="customer_message", at=event.sent_at,
                message_id=str(message_id), author="customer", text=event.text, data=data,
            )
            announcements.append((INBOX_TIMELINE, item.key, item))
    await q.insert_customer_messages(conn, messages)
    await q.insert_customer_message_items(conn, items)
    await outbox.add_many(conn, announcements)
    for event in events:
        CUSTOMER_MESSAGES.labels(event.channel).inc()
    return refusals
