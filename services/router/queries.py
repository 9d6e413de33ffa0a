"""The router's SQL on conversations, messages and the timeline: small functions on one
connection, inside the handler's transaction. Shop data and carts/orders: shop_queries.py."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.router.entries import TimelineEntry
from shared.ids import uuid_or_none


async def lock_conversation(
    conn: asyncpg.Connection, shop_id: str, conversation_id: str
) -> asyncpg.Record | None:
    conversation_uuid = uuid_or_none(conversation_id)
    if conversation_uuid is None:
        return None
    # With the shop's name, which a message sent from here carries (one round trip, not two).
    return await conn.fetchrow(
        """SELECT c.*, s.name AS shop_name
           FROM conversations c LEFT JOIN shops s ON s.shop_id = c.shop_id
           WHERE c.conversation_id = $1 AND c.shop_id = $2
           FOR UPDATE OF c""",
        conversation_uuid,
        shop_id,
    )


async def staff_member(conn: asyncpg.Connection, shop_id: str, staff_id: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "SELECT * FROM staff WHERE shop_id = $1 AND staff_id = $2 AND active",
        shop_id,
        staff_id,
    )


async def insert_message(
    conn: asyncpg.Connection,
    *,
    message_id: uuid.UUID,
    conversation_id: uuid.UUID,
    shop_id: str,
    direction: str,
    author: str,
    channel: str,
    source_id: str,
    sent_at: datetime,
    text: str | None,
    content: dict[str, Any],
    staff_id: str | None = None,
    delivery_status: str | None = None,
    delivery_reason: str | None = None,
) -> bool:
    """Insert once; returns False when the message already exists."""
    status = await conn.execute(
        """INSERT INTO messages (message_id, conversation_id, shop_id, direction, author, staff_id,
               text, content, channel, source_id, sent_at, delivery_status, delivery_reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (message_id) DO NOTHING""",
        message_id,
        conversation_id,
        shop_id,
        direction,
        author,
        staff_id,
        text,
        content,
        channel,
        source_id,
        sent_at,
        delivery_status,
        delivery_reason,
    )
    return status.endswith(" 1")


async def append_timeline(
    conn: asyncpg.Connection,
    conversation_id: uuid.UUID,
    entry: TimelineEntry,
    seq: int | None = None,
) -> int:
    """Append an item at the conversation's next sequence number (or at `seq`, reserved by
    the caller); returns that number."""
    if seq is None:
        seq = await conn.fetchval(
            """UPDATE conversations SET timeline_seq = timeline_seq + 1
               WHERE conversation_id = $1 RETURNING timeline_seq""",
            conversation_id,
        )
    await conn.execute(
        """INSERT INTO timeline_items
               (item_id, conversation_id, seq, kind, author, staff_id, message_id, text, data, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        entry.item_id,
        conversation_id,
        seq,
        entry.kind,
        entry.author,
        entry.staff_id,
        entry.message_id,
        entry.text,
        entry.data or {},
        entry.at,
    )
    return seq


async def set_last_message(
    conn: asyncpg.Connection, conversation_id: uuid.UUID, at: datetime, preview: str,
    staff_reply: bool = True,
) -> int:
    """A message sent from the inbox: the conversation's last message (unless a newer one is
    there), which marks it read. An automated reply (`staff_reply` false) changes neither the
    preview nor the unread mark: the merchant still sees what the customer wrote, waiting.
    Reserves the next timeline sequence number and returns it (one statement for both)."""
    # Every SET expression sees the row as it was, so each can test the old last_message_at.
    return await conn.fetchval(
        """UPDATE conversations SET
               timeline_seq = timeline_seq + 1,
               last_message_preview = CASE WHEN $4 AND (last_message_at IS NULL
                   OR last_message_at <= $2) THEN $3 ELSE last_message_preview END,
               unread = CASE WHEN $4 AND (last_message_at IS NULL
                   OR last_message_at <= $2) THEN false ELSE unread END,
               last_message_at = greatest(last_message_at, $2)
           WHERE conversation_id = $1
           RETURNING timeline_seq""",
        conversation_id,
        at,
        preview,
        staff_reply,
    )


async def set_status(conn: asyncpg.Connection, conversation_id: uuid.UUID, status: str) -> None:
    await conn.execute(
        "UPDATE conversations SET status = $2 WHERE conversation_id = $1", conversation_id, status
    )


async def mark_unread(conn: asyncpg.Connection, conversation_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE conversations SET unread = true WHERE conversation_id = $1", conversation_id
    )


async def record_delivery(
    conn: asyncpg.Connection,
    message_id: str,
    status: str,
    reason: str | None,
    at: datetime,
) -> asyncpg.Record | None:
    """Record a delivery outcome; returns the message, or None when it is unknown."""
    message_uuid = uuid_or_none(message_id)
    if message_uuid is None:
        return None
    return await conn.fetchrow(
        """UPDATE messages SET delivery_status = $2, delivery_reason = $3, delivered_at = $4
           WHERE message_id = $1 RETURNING message_id, conversation_id""",
        message_uuid,
        status,
        reason,
        at,
    )


# --- conversation commands -----------------------------------------------------------------------


async def first_customer_message_without_staff_reply(
    conn: asyncpg.Connection, conversation_id: uuid.UUID
) -> datetime | None:
    """When the customer first wrote, if no staff member has answered yet (else None)."""
    return await conn.fetchval(
        """SELECT min(sent_at) FROM messages WHERE conversation_id = $1 AND author = 'customer'
           HAVING NOT EXISTS (SELECT 1 FROM messages WHERE conversation_id = $1
                                AND author = 'staff')""",
        conversation_id,
    )


async def assign(
    conn: asyncpg.Connection, conversation_id: uuid.UUID, staff_id: str | None
) -> None:
    await conn.execute(
        "UPDATE conversations SET assignee_staff_id = $2 WHERE conversation_id = $1",
        conversation_id, staff_id,
    )


async def set_subject(
    conn: asyncpg.Connection, conversation_id: uuid.UUID, subject: str
) -> None:
    await conn.execute(
        "UPDATE conversations SET subject = nullif($2, '') WHERE conversation_id = $1",
        conversation_id, subject,
    )


async def insert_note(
    conn: asyncpg.Connection, note_id: uuid.UUID, shop_id: str, customer_key: str,
    staff_id: str, text: str, at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO customer_notes (note_id, shop_id, customer_key, staff_id, text, created_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (note_id) DO NOTHING""",
        note_id, shop_id, customer_key, staff_id, text, at,
    )


# --- topics (classifier tags) -------------------------------------------------------------------


async def lock_conversation_topics(
    conn: asyncpg.Connection, keys: list[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], list[str]]:
    """Lock the conversations (conversation_id, shop_id) in id order; their topics by key."""
    rows = await conn.fetch(
        """SELECT conversation_id, shop_id, topics FROM conversations
           WHERE (conversation_id, shop_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
           ORDER BY conversation_id FOR UPDATE""",
        [k[0] for k in keys], [k[1] for k in keys],
    )
    return {(r["conversation_id"], r["shop_id"]): list(r["topics"]) for r in rows}


async def set_topics_many(
    conn: asyncpg.Connection, rows: list[tuple[uuid.UUID, list[str]]]
) -> None:
    """rows: (conversation_id, topics); one statement for all."""
    await conn.execute(
        """UPDATE conversations c
           SET topics = ARRAY(SELECT t.value
                              FROM jsonb_array_elements_text(u.topics::jsonb)
                                   WITH ORDINALITY AS t(value, n) ORDER BY t.n)
           FROM unnest($1::uuid[], $2::text[]) AS u(id, topics)
           WHERE c.conversation_id = u.id""",
        [r[0] for r in rows], [json.dumps(r[1]) for r in rows],
    )


# --- customer messages in bulk (see ingest.py) ----------------------------------------------------


async def upsert_conversations(
    conn: asyncpg.Connection, rows: list[tuple[Any, ...]]
) -> dict[tuple[str, str, str], asyncpg.Record]:
    """Open or reopen each conversation, fold in the customer details, and reserve `n` timeline
    sequence numbers for each; returns them by (shop_id, channel, thread_ref) with the new
    `timeline_seq` (the last number reserved)."""
    columns = list(zip(*rows, strict=True))
    records = await conn.fetch(
        """INSERT INTO conversations AS c (
               conversation_id, shop_id, channel, thread_ref, status, unread,
               customer_name, customer_email, customer_id, customer_locale, customer_city,
               customer_country, customer_timezone, visitor_id, created_at,
               last_message_at, last_message_preview, last_customer_message_at, timeline_seq,
               customer_online, customer_presence_at)
           SELECT id, shop, chan, thread, 'open', true, name, email, cust, locale, city, country,
                  tz, visitor, first_at, last_at, pre, last_at, n, p.online, p.at
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                       $13::timestamptz[], $14::timestamptz[], $15::text[], $16::int[])
                AS u(id, shop, chan, thread, name, email, cust, locale, city, country, tz,
                     visitor, first_at, last_at, pre, n)
           -- A visitor already known to be online (or gone) before their first message.
           LEFT JOIN visitor_presence p ON p.shop_id = u.shop AND p.visitor_id = u.visitor
           ON CONFLICT (shop_id, channel, thread_ref) DO UPDATE SET
               status = 'open',
               unread = true,
               customer_name = coalesce(c.customer_name, excluded.customer_name),
               customer_email = coalesce(c.customer_email, excluded.customer_email),
               customer_id = coalesce(c.customer_id, excluded.customer_id),
               customer_locale = coalesce(excluded.customer_locale, c.customer_locale),
               customer_city = coalesce(excluded.customer_city, c.customer_city),
               customer_country = coalesce(excluded.customer_country, c.customer_country),
               customer_timezone = coalesce(excluded.customer_timezone, c.customer_timezone),
               visitor_id = coalesce(excluded.visitor_id, c.visitor_id),
               -- A new device (visitor) brings its own presence.
               customer_online = CASE WHEN excluded.visitor_id IS DISTINCT FROM c.visitor_id
                   AND excluded.visitor_id IS NOT NULL THEN excluded.customer_online
                   ELSE c.customer_online END,
               customer_presence_at = CASE WHEN excluded.visitor_id IS DISTINCT FROM c.visitor_id
                   AND excluded.visitor_id IS NOT NULL THEN excluded.customer_presence_at
                   ELSE c.customer_presence_at END,
               last_message_at = greatest(c.last_message_at, excluded.last_message_at),
               last_message_preview = CASE WHEN c.last_message_at > excluded.last_message_at
                   THEN c.last_message_preview ELSE excluded.last_message_preview END,
               last_customer_message_at =
                   greatest(c.last_customer_message_at, excluded.last_customer_message_at),
               timeline_seq = c.timeline_seq + excluded.timeline_seq
           RETURNING conversation_id, shop_id, channel, thread_ref, timeline_seq""",
        *[list(column) for column in columns],
    )
    return {(r["shop_id"], r["channel"], r["thread_ref"]): r for r in records}


async def insert_customer_messages(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """rows: (message_id, conversation_id, shop_id, channel, source_id, sent_at, text, content)"""
    ids, conversations, shops, channels, sources, times, texts, contents = zip(*rows, strict=True)
    await conn.execute(
        """INSERT INTO messages (message_id, conversation_id, shop_id, direction, author,
               channel, source_id, sent_at, text, content)
           SELECT id, conv, shop, 'inbound', 'customer', chan, src, at, body, content::jsonb
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                       $6::timestamptz[], $7::text[], $8::text[])
                AS u(id, conv, shop, chan, src, at, body, content)
           ON CONFLICT (message_id) DO NOTHING""",
        list(ids), list(conversations), list(shops), list(channels), list(sources),
        list(times), list(texts), [json.dumps(c) for c in contents],
    )


async def insert_customer_message_items(
    conn: asyncpg.Connection, rows: list[tuple[Any, ...]]
) -> None:
    """rows: (item_id = message_id, conversation_id, seq, text, data, at)"""
    ids, conversations, seqs, texts, datas, times = zip(*rows, strict=True)
    await conn.execute(
        """INSERT INTO timeline_items
               (item_id, conversation_id, seq, kind, author, message_id, text, data, at)
           SELECT id, conv, seq, 'customer_message', 'customer', id, body, data::jsonb, at
           FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[],
                       $6::timestamptz[]) AS u(id, conv, seq, body, data, at)""",
        list(ids), list(conversations), list(seqs), list(texts),
        [json.dumps(d) for d in datas], list(times),
    )


# --- presence ---------------------------------------------------------------------------------


async def set_customer_presence(
    conn: asyncpg.Connection, shop_id: str, visitor_id: str, online: bool, at: datetime
) -> list[asyncpg.Record]:
    """Record the visitor's presence, and on their conversations (newer news only); returns
    the conversations."""
    await conn.execute(
        """INSERT INTO visitor_presence AS p (shop_id, visitor_id, online, at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (shop_id, visitor_id) DO UPDATE SET online = excluded.online,
               at = excluded.at
           WHERE p.at <= excluded.at""",
        shop_id, visitor_id, online, at,
    )
    return await conn.fetch(
        """UPDATE conversations SET customer_online = $3, customer_presence_at = $4
           WHERE shop_id = $1 AND visitor_id = $2
             AND (customer_presence_at IS NULL OR customer_presence_at <= $4)
           RETURNING *""",
        shop_id, visitor_id, online, at,
    )


async def take_held_replies(
    conn: asyncpg.Connection, conversation_id: uuid.UUID
) -> list[asyncpg.Record]:
    """The replies waiting for the customer, now on their way (oldest first)."""
    return await conn.fetch(
        """UPDATE messages SET delivery_status = 'pending', delivery_reason = NULL
           WHERE message_id IN (
               SELECT message_id FROM messages
               WHERE conversation_id = $1 AND delivery_status = 'held' FOR UPDATE)
           RETURNING message_id, content, staff_id, sent_at
        """,
        conversation_id,
    )
