"""The router's Messenger SQL: consents and their audit trail, identities, the window's
actions, and the conversations order updates are shown on."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from shared.contracts import CustomerInfo


async def channel(conn: asyncpg.Connection, shop_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT page_id, state FROM messenger_channels WHERE shop_id = $1", shop_id
    )


async def shop_exists(conn: asyncpg.Connection, shop_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM shops WHERE shop_id = $1", shop_id))


async def consent(conn: asyncpg.Connection, shop_id: str, order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT * FROM messenger_order_consents WHERE shop_id = $1 AND order_id = $2
           FOR UPDATE""",
        shop_id, order_id,
    )


async def insert_consent(
    conn: asyncpg.Connection, *, consent_id: uuid.UUID, shop_id: str, order_id: str,
    page_id: str, user_ref: str, conversation_id: uuid.UUID | None, state: str,
    reason: str | None, at: datetime,
) -> bool:
    status = await conn.execute(
        """INSERT INTO messenger_order_consents (consent_id, shop_id, order_id, page_id, user_ref,
               conversation_id, state, state_reason, opted_in_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
           ON CONFLICT DO NOTHING""",
        consent_id, shop_id, order_id, page_id, user_ref, conversation_id, state, reason, at,
    )
    return status.endswith(" 1")


async def set_consent_state(
    conn: asyncpg.Connection, consent_id: uuid.UUID, state: str, reason: str
) -> None:
    await conn.execute(
        """UPDATE messenger_order_consents SET state = $2, state_reason = $3, updated_at = now()
           WHERE consent_id = $1""",
        consent_id, state, reason,
    )


async def record_change(
    conn: asyncpg.Connection, *, change_id: uuid.UUID, consent_id: uuid.UUID, shop_id: str,
    order_id: str, change: str, actor: str, reason: str | None, source_event_id: str,
    at: datetime, staff_id: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO messenger_consent_changes (change_id, consent_id, shop_id, order_id,
               change, actor, staff_id, reason, source_event_id, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (change_id) DO NOTHING""",
        change_id, consent_id, shop_id, order_id, change, actor, staff_id, reason,
        source_event_id, at,
    )


async def updates_enabled(conn: asyncpg.Connection, shop_id: str, order_id: str) -> bool:
    """The merchant's per-order switch (true when the order is not known yet)."""
    enabled = await conn.fetchval(
        "SELECT updates_enabled FROM orders WHERE shop_id = $1 AND order_id = $2",
        shop_id, order_id,
    )
    return enabled is not False


async def order_tracking(conn: asyncpg.Connection, shop_id: str, order_id: str) -> dict | None:
    return await conn.fetchval(
        "SELECT tracking FROM orders WHERE shop_id = $1 AND order_id = $2", shop_id, order_id
    )


async def touch(conn: asyncpg.Connection, page_id: str, contact: str, at: datetime) -> None:
    """The person acted at `at` (it opens Meta's window); the newest action wins."""
    await conn.execute(
        """INSERT INTO messenger_contacts AS c (page_id, contact, last_action_at)
           VALUES ($1, $2, $3)
           ON CONFLICT (page_id, contact) DO UPDATE SET last_action_at =
               greatest(c.last_action_at, excluded.last_action_at)""",
        page_id, contact, at,
    )


async def link(
    conn: asyncpg.Connection, page_id: str, user_ref: str, psid: str, at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO messenger_identities (page_id, user_ref, psid, linked_at)
           VALUES ($1, $2, $3, $4) ON CONFLICT (page_id, user_ref) DO NOTHING""",
        page_id, user_ref, psid, at,
    )


async def active_consents_of(
    conn: asyncpg.Connection, shop_id: str, page_id: str, psid: str
) -> list[asyncpg.Record]:
    """The person's active order-update consents on this Page, newest opt-in first, locked."""
    return await conn.fetch(
        """SELECT c.* FROM messenger_order_consents c
           JOIN messenger_identities i ON i.page_id = c.page_id AND i.user_ref = c.user_ref
           LEFT JOIN orders o ON o.shop_id = c.shop_id AND o.order_id = c.order_id
           WHERE c.shop_id = $1 AND c.page_id = $2 AND i.psid = $3 AND c.state = 'active'
             AND o.updates_enabled IS NOT FALSE
           ORDER BY c.opted_in_at DESC, c.order_id
           FOR UPDATE OF c""",
        shop_id, page_id, psid,
    )


async def ensure_conversation(
    conn: asyncpg.Connection, conversation_id: uuid.UUID, shop_id: str, thread_ref: str,
    customer: CustomerInfo | None, at: datetime,
) -> asyncpg.Record:
    """The Messenger conversation of `thread_ref`, created (read, open) when missing; locked."""
    await conn.execute(
        """INSERT INTO conversations (conversation_id, shop_id, channel, thread_ref, status,
               unread, customer_name, customer_email, customer_id, created_at)
           VALUES ($1, $2, 'messenger', $3, 'open', false, $4, $5, $6, $7)
           ON CONFLICT DO NOTHING""",
        conversation_id, shop_id, thread_ref,
        customer.name if customer else None, customer.email if customer else None,
        customer.customer_id if customer else None, at,
    )
    return await conn.fetchrow(
        """SELECT * FROM conversations WHERE shop_id = $1 AND channel = 'messenger'
           AND thread_ref = $2 FOR UPDATE""",
        shop_id, thread_ref,
    )


async def lock_conversation(
    conn: asyncpg.Connection, conversation_id: uuid.UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM conversations WHERE conversation_id = $1 FOR UPDATE", conversation_id
    )
