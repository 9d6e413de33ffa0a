"""The router's SQL: small functions on one connection, inside the handler's transaction."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from shared.contracts import CartEvent, OrderEvent
from shared.rules import DiscountFacts, ProductFacts


async def lock_conversation(
    conn: asyncpg.Connection, shop_id: str, conversation_id: str
) -> asyncpg.Record | None:
    try:
        conversation_uuid = uuid.UUID(conversation_id)
    except ValueError:
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
    *,
    item_id: uuid.UUID,
    conversation_id: uuid.UUID,
    kind: str,
    author: str,
    at: datetime,
    text: str | None = None,
    message_id: uuid.UUID | None = None,
    staff_id: str | None = None,
    data: dict[str, Any] | None = None,
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
        item_id,
        conversation_id,
        seq,
        kind,
        author,
        staff_id,
        message_id,
        text,
        data or {},
        at,
    )
    return seq


async def set_last_message(
    conn: asyncpg.Connection, conversation_id: uuid.UUID, at: datetime, preview: str
) -> int:
    """A staff message: the conversation's last message (unless a newer one is there) and read;
    reserves the next timeline sequence number and returns it (one statement for both)."""
    # Every SET expression sees the row as it was, so each can test the old last_message_at.
    return await conn.fetchval(
        """UPDATE conversations SET
               timeline_seq = timeline_seq + 1,
               last_message_preview = CASE WHEN last_message_at IS NULL
                   OR last_message_at <= $2 THEN $3 ELSE last_message_preview END,
               unread = CASE WHEN last_message_at IS NULL
                   OR last_message_at <= $2 THEN false ELSE unread END,
               last_message_at = greatest(last_message_at, $2)
           WHERE conversation_id = $1
           RETURNING timeline_seq""",
        conversation_id,
        at,
        preview,
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
    try:
        message_uuid = uuid.UUID(message_id)
    except ValueError:
        return None
    return await conn.fetchrow(
        """UPDATE messages SET delivery_status = $2, delivery_reason = $3, delivered_at = $4
           WHERE message_id = $1 RETURNING message_id, conversation_id""",
        message_uuid,
        status,
        reason,
        at,
    )


# --- shop data (newest `at` wins, so replays and reordering are harmless) ------------------------

#: The shop data's unique constraints besides the keys, as the publisher would say it.
_UNIQUE = {
    "staff_token_sha256_key": "another staff member already has this API token (token_sha256)",
    "discount_codes_folded": "the shop already has this discount code in another letter case",
}


def conflict_reason(exc: asyncpg.UniqueViolationError) -> str:
    """Why a shop-data record cannot be kept (no value quoted: a token hash stays out of logs)."""
    name = exc.constraint_name or "?"
    what = _UNIQUE.get(name, f"it conflicts with another {exc.table_name or 'record'}")
    return f"unique constraint {name} broken: {what}"



async def upsert_shop(conn: asyncpg.Connection, e: Any) -> None:
    await conn.execute(
        """INSERT INTO shops AS s (shop_id, name, domain, currency, timezone, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (shop_id) DO UPDATE SET name = excluded.name, domain = excluded.domain,
               currency = excluded.currency, timezone = excluded.timezone,
               updated_at = excluded.updated_at
           WHERE s.updated_at <= excluded.updated_at""",
        e.shop_id, e.name, e.domain, e.currency, e.timezone, e.at,
    )


async def upsert_staff(conn: asyncpg.Connection, e: Any) -> None:
    await conn.execute(
        """INSERT INTO staff AS s (shop_id, staff_id, name, email, permissions, token_sha256,
               active, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (shop_id, staff_id) DO UPDATE SET name = excluded.name,
               email = excluded.email, permissions = excluded.permissions,
               token_sha256 = excluded.token_sha256, active = excluded.active,
               updated_at = excluded.updated_at
           WHERE s.updated_at <= excluded.updated_at""",
        e.shop_id, e.staff_id, e.name, e.email, list(e.permissions), e.token_sha256, e.active,
        e.at,
    )


async def upsert_product(conn: asyncpg.Connection, e: Any) -> None:
    await conn.execute(
        """INSERT INTO products AS p (shop_id, product_id, title, price, currency, url, image_url,
               online_store, updated_at)
           VALUES ($1, $2, $3, $4::numeric, $5, $6, $7, $8, $9)
           ON CONFLICT (shop_id, product_id) DO UPDATE SET title = excluded.title,
               price = excluded.price, currency = excluded.currency, url = excluded.url,
               image_url = excluded.image_url, online_store = excluded.online_store,
               updated_at = excluded.updated_at
           WHERE p.updated_at <= excluded.updated_at""",
        e.shop_id, e.product_id, e.title, e.price, e.currency,
        str(e.url) if e.url else None, str(e.image_url) if e.image_url else None,
        e.online_store, e.at,
    )


async def upsert_discount(conn: asyncpg.Connection, e: Any) -> None:
    await conn.execute(
        """INSERT INTO discount_codes AS d (shop_id, code, status, starts_at, ends_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (shop_id, code) DO UPDATE SET status = excluded.status,
               starts_at = excluded.starts_at, ends_at = excluded.ends_at,
               updated_at = excluded.updated_at
           WHERE d.updated_at <= excluded.updated_at""",
        e.shop_id, e.code, e.status, e.starts_at, e.ends_at, e.at,
    )


# --- conversation commands -----------------------------------------------------------------------


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


async def product(conn: asyncpg.Connection, shop_id: str, product_id: str) -> ProductFacts | None:
    row = await conn.fetchrow(
        """SELECT product_id, title, price, currency, url, image_url, online_store
           FROM products WHERE shop_id = $1 AND product_id = $2""",
        shop_id, product_id,
    )
    return ProductFacts(**dict(row)) if row else None


async def discount(conn: asyncpg.Connection, shop_id: str, code: str) -> DiscountFacts | None:
    row = await conn.fetchrow(
        """SELECT code, status, starts_at, ends_at FROM discount_codes
           WHERE shop_id = $1 AND upper(code) = upper($2)""",
        shop_id, code,
    )
    return DiscountFacts(**dict(row)) if row else None


async def shop_domain(conn: asyncpg.Connection, shop_id: str) -> str:
    return await conn.fetchval("SELECT domain FROM shops WHERE shop_id = $1", shop_id)


async def turn_off_order_updates(conn: asyncpg.Connection, shop_id: str, order_id: str) -> bool:
    status = await conn.execute(
        "UPDATE orders SET updates_enabled = false WHERE shop_id = $1 AND order_id = $2",
        shop_id, order_id,
    )
    return status.endswith(" 1")


# --- commerce context ----------------------------------------------------------------------------


async def save_cart(conn: asyncpg.Connection, e: CartEvent) -> bool:
    """Keep the visitor's newest cart; False when this event is older than the stored one."""
    status = await conn.execute(
        """INSERT INTO carts AS c (shop_id, visitor_id, currency, subtotal, items, updated_at)
           VALUES ($1, $2, $3, $4::numeric, $5::text::jsonb, $6)
           ON CONFLICT (shop_id, visitor_id) DO UPDATE SET currency = excluded.currency,
               subtotal = excluded.subtotal, items = excluded.items,
               updated_at = excluded.updated_at
           WHERE c.updated_at <= excluded.updated_at""",
        e.shop_id, e.visitor_id, e.cart.currency, e.cart.subtotal,
        json.dumps([i.model_dump() for i in e.cart.items]), e.at,
    )
    return status.endswith(" 1")


async def visitor_conversation(
    conn: asyncpg.Connection, shop_id: str, visitor_id: str
) -> asyncpg.Record | None:
    """The visitor's online-store chat conversation (the newest, if several), locked."""
    return await conn.fetchrow(
        """SELECT * FROM conversations
           WHERE shop_id = $1 AND visitor_id = $2 AND channel = 'online_store_chat'
           ORDER BY created_at DESC LIMIT 1 FOR UPDATE""",
        shop_id, visitor_id,
    )


async def upsert_order(conn: asyncpg.Connection, e: OrderEvent, status: str) -> None:
    customer = e.customer
    await conn.execute(
        """INSERT INTO orders AS o (shop_id, order_id, order_number, status, customer_id,
               customer_email, customer_name, total_price, currency, messenger_optin, tracking,
               placed_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::numeric, $9, $10::text::jsonb,
                   $11::text::jsonb, $12, $12)
           ON CONFLICT (shop_id, order_id) DO UPDATE SET
               status = CASE WHEN o.updated_at <= excluded.updated_at
                             THEN excluded.status ELSE o.status END,
               customer_id = coalesce(excluded.customer_id, o.customer_id),
               customer_email = coalesce(excluded.customer_email, o.customer_email),
               customer_name = coalesce(excluded.customer_name, o.customer_name),
               total_price = coalesce(excluded.total_price, o.total_price),
               currency = coalesce(excluded.currency, o.currency),
               messenger_optin = coalesce(excluded.messenger_optin, o.messenger_optin),
               tracking = coalesce(excluded.tracking, o.tracking),
               placed_at = least(o.placed_at, excluded.placed_at),
               updated_at = greatest(o.updated_at, excluded.updated_at)""",
        e.shop_id, e.order_id, e.order_number, status,
        customer.customer_id if customer else None,
        customer.email if customer else None,
        customer.name if customer else None,
        e.total_price, e.currency,
        e.messenger_optin.model_dump_json() if e.messenger_optin else None,
        e.tracking.model_dump_json(exclude_none=True) if e.tracking else None,
        e.at,
    )


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


async def shop_name(conn: asyncpg.Connection, shop_id: str) -> str | None:
    return await conn.fetchval("SELECT name FROM shops WHERE shop_id = $1", shop_id)


async def shop_name_of(conn: asyncpg.Connection, conversation: asyncpg.Record) -> str | None:
    """The conversation's shop name: read with the row when `lock_conversation` locked it,
    else looked up."""
    if "shop_name" in conversation.keys():
        return conversation["shop_name"]
    return await shop_name(conn, conversation["shop_id"])


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
