"""SQL of the merchant API's privacy requests (recorded by the router)."""

from __future__ import annotations

import asyncpg


async def requests(pool: asyncpg.Pool, shop_id: str, limit: int) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT r.request_id, r.kind, r.source, r.state, r.data_request_id,
                  r.requested_by_staff_id, r.conversations, r.received_at, r.completed_at,
                  e.request_id IS NOT NULL AS export_ready
           FROM privacy_requests r LEFT JOIN privacy_exports e USING (request_id)
           WHERE r.shop_id = $1 ORDER BY r.received_at DESC LIMIT $2""",
        shop_id, limit,
    )


async def export(pool: asyncpg.Pool, shop_id: str, data_request_id: str) -> str | None:
    """The newest export of that data request in the shop (JSON text)."""
    return await pool.fetchval(
        """SELECT export::text FROM privacy_exports WHERE shop_id = $1 AND data_request_id = $2
           ORDER BY created_at DESC LIMIT 1""",
        shop_id, data_request_id,
    )
