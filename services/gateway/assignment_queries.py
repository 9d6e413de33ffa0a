"""SQL of the assignment settings and staff availability (the router reads them when it
assigns)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def settings(pool: asyncpg.Pool, shop_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT mode, capacity, updated_at FROM assignment_settings WHERE shop_id = $1", shop_id)


async def save_settings(pool: asyncpg.Pool, shop_id: str, mode: str, capacity: int,
                        now: datetime) -> None:
    await pool.execute(
        """INSERT INTO assignment_settings (shop_id, mode, capacity, updated_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (shop_id) DO UPDATE SET mode = excluded.mode,
               capacity = excluded.capacity, updated_at = excluded.updated_at""",
        shop_id, mode, capacity, now)


async def availability(pool: asyncpg.Pool, shop_id: str, staff_id: str) -> bool:
    return bool(await pool.fetchval(
        "SELECT available FROM staff_availability WHERE shop_id = $1 AND staff_id = $2",
        shop_id, staff_id))


async def save_availability(pool: asyncpg.Pool, shop_id: str, staff_id: str, available: bool,
                            now: datetime) -> None:
    await pool.execute(
        """INSERT INTO staff_availability (shop_id, staff_id, available, updated_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (shop_id, staff_id) DO UPDATE SET available = excluded.available,
               updated_at = excluded.updated_at""",
        shop_id, staff_id, available, now)
