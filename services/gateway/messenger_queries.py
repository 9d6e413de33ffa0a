"""The gateway's Messenger SQL: the shop's channel (shop configuration the gateway keeps, like
saved replies), which shop a Page belongs to, and an order's consent trail (read only)."""

from __future__ import annotations

import asyncpg


async def shops_of_pages(pool: asyncpg.Pool, page_ids: list[str]) -> list[asyncpg.Record]:
    """The channel of each Page: the live one, else the most recently removed."""
    return await pool.fetch(
        """SELECT DISTINCT ON (page_id) page_id, shop_id, state FROM messenger_channels
           WHERE page_id = ANY($1::text[])
           ORDER BY page_id, (state <> 'removed') DESC, updated_at DESC""",
        page_ids,
    )


async def channel(pool: asyncpg.Pool, shop_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow("SELECT * FROM messenger_channels WHERE shop_id = $1", shop_id)


async def connect(
    pool: asyncpg.Pool, shop_id: str, page_id: str, token: str, human_agent_approved: bool
) -> asyncpg.Record:
    """Connect (or reconnect) the shop's channel to a Page; raises UniqueViolationError when
    the Page is live on another shop."""
    return await pool.fetchrow(
        """INSERT INTO messenger_channels AS c (shop_id, page_id, page_access_token,
               human_agent_approved, state, connected_at, updated_at)
           VALUES ($1, $2, $3, $4, 'connected', now(), now())
           ON CONFLICT (shop_id) DO UPDATE SET
               connected_at = CASE WHEN c.state <> 'removed' AND c.page_id = excluded.page_id
                                   THEN c.connected_at ELSE now() END,
               page_id = excluded.page_id,
               page_access_token = excluded.page_access_token,
               human_agent_approved = excluded.human_agent_approved,
               state = 'connected', state_reason = NULL, removed_at = NULL, updated_at = now()
           RETURNING *""",
        shop_id, page_id, token, human_agent_approved,
    )


async def remove(pool: asyncpg.Pool, shop_id: str, reason: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        """UPDATE messenger_channels SET state = 'removed', state_reason = $2,
               removed_at = coalesce(removed_at, now()), updated_at = now()
           WHERE shop_id = $1 RETURNING *""",
        shop_id, reason,
    )


async def consent(pool: asyncpg.Pool, shop_id: str, order_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        """SELECT c.*, o.order_number, coalesce(o.updates_enabled, true) AS updates_enabled
           FROM messenger_order_consents c
           LEFT JOIN orders o ON o.shop_id = c.shop_id AND o.order_id = c.order_id
           WHERE c.shop_id = $1 AND c.order_id = $2""",
        shop_id, order_id,
    )


async def consent_changes(
    pool: asyncpg.Pool, shop_id: str, order_id: str
) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT change, actor, staff_id, reason, at FROM messenger_consent_changes
           WHERE shop_id = $1 AND order_id = $2 ORDER BY at, change_id""",
        shop_id, order_id,
    )
