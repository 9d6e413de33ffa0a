"""The gateway's read queries (the router owns the writes)."""

from __future__ import annotations

import uuid

import asyncpg


async def staff_by_token(pool: asyncpg.Pool, token_sha256: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT shop_id, staff_id, name, permissions FROM staff WHERE token_sha256 = $1 AND active",
        token_sha256,
    )


async def list_conversations(
    pool: asyncpg.Pool, shop_id: str, status: str | None, limit: int, offset: int
) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT conversation_id, channel, thread_ref, status, unread, assignee_staff_id,
                  customer_name, customer_email, last_message_at, last_message_preview
           FROM conversations
           WHERE shop_id = $1 AND ($2::text IS NULL OR status = $2)
           ORDER BY last_message_at DESC NULLS LAST, conversation_id
           LIMIT $3 OFFSET $4""",
        shop_id, status, limit, offset,
    )


async def conversation(
    pool: asyncpg.Pool, shop_id: str, conversation_id: uuid.UUID
) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT * FROM conversations WHERE shop_id = $1 AND conversation_id = $2",
        shop_id, conversation_id,
    )


async def timeline(pool: asyncpg.Pool, conversation_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT t.item_id, t.seq, t.kind, t.author, t.staff_id, t.message_id, t.text, t.data,
                  t.at, m.delivery_status, m.delivery_reason, m.channel AS delivery_channel
           FROM timeline_items t LEFT JOIN messages m ON m.message_id = t.message_id
           WHERE t.conversation_id = $1 ORDER BY t.seq""",
        conversation_id,
    )
