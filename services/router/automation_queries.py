"""The SQL of automated replies (the settings themselves are read in shared/db/automation.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg


async def last_staff_message_at(conn: asyncpg.Connection, conversation_id: uuid.UUID
                                ) -> datetime | None:
    return await conn.fetchval(
        "SELECT max(sent_at) FROM messages WHERE conversation_id = $1 AND author = 'staff'",
        conversation_id)


async def newest_order_number(conn: asyncpg.Connection, shop_id: str, customer_id: str | None,
                              email: str | None) -> str | None:
    """The customer's newest order's number, for the `order_number` placeholder."""
    if not customer_id and not email:
        return None
    return await conn.fetchval(
        """SELECT order_number FROM orders
           WHERE shop_id = $1 AND (customer_id = $2
                 OR ($3::text IS NOT NULL AND lower(customer_email) = lower($3)))
           ORDER BY placed_at DESC, order_id LIMIT 1""", shop_id, customer_id, email)
