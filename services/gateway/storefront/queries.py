"""The storefront chat's SQL: a customer's own conversation and thread, as they may see it.

(The shop and its products come from the gateway's own queries.)
"""

from __future__ import annotations

import uuid

import asyncpg


async def chat_conversation(
    pool: asyncpg.Pool, shop_id: str, conversation_id: uuid.UUID, channel: str
) -> asyncpg.Record | None:
    """What resuming a chat needs of its conversation (on `channel` only)."""
    return await pool.fetchrow(
        """SELECT thread_ref, visitor_id, customer_name, customer_email, customer_timezone,
                  customer_locale FROM conversations
           WHERE shop_id = $1 AND conversation_id = $2 AND channel = $3""",
        shop_id, conversation_id, channel,
    )


async def conversation_exists(
    pool: asyncpg.Pool, shop_id: str, conversation_id: uuid.UUID
) -> bool:
    return bool(await pool.fetchval(
        "SELECT 1 FROM conversations WHERE conversation_id = $1 AND shop_id = $2",
        conversation_id, shop_id,
    ))


async def thread(
    pool: asyncpg.Pool, shop_id: str, conversation_id: uuid.UUID, thread_ref: str, limit: int
) -> list[asyncpg.Record]:
    """The newest `limit` messages of a chat, newest first: the customer's, what reached their
    chat, and the replies that went by email while they were away."""
    return await pool.fetch(
        """SELECT * FROM (
             SELECT message_id::text, 'customer' AS author, text, content, 'chat' AS via,
                    sent_at AS at
               FROM messages WHERE conversation_id = $1 AND direction = 'inbound'
             UNION ALL
             SELECT s.message_id, 'shop', NULL, s.content, 'chat', coalesce(m.sent_at, s.sent_at)
               FROM storefront_chat_messages s
               -- a reply is ordered by when it was written (one delivery batch shares a time)
               LEFT JOIN messages m ON m.message_id::text = s.message_id
              WHERE s.shop_id = $2 AND s.thread_ref = $3
             UNION ALL
             SELECT message_id::text, 'shop', text, content, 'email', sent_at
               FROM messages WHERE conversation_id = $1 AND direction = 'outbound'
                AND channel = 'email' AND delivery_status = 'sent'
           ) thread ORDER BY at DESC, message_id LIMIT $4""",
        conversation_id, shop_id, thread_ref, limit,
    )


async def blocked_reason(pool: asyncpg.Pool, shop_id: str, identities: list[str]) -> str | None:
    """Why one of these identities is blocked in the shop, if one is."""
    return await pool.fetchval(
        "SELECT reason FROM blocked_identities WHERE shop_id = $1 AND identity = ANY($2::text[]) "
        "LIMIT 1", shop_id, identities)
