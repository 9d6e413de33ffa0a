"""SQL of a shop's chat hours, away message and instant answers (the router reads the same
tables, through `shared.db.automation`, when a customer writes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


async def save_chat_hours(pool: asyncpg.Pool, shop_id: str, mode: str,
                          hours: list[dict[str, str]], away_message: str, now: datetime) -> None:
    await pool.execute(
        """INSERT INTO chat_hours (shop_id, mode, hours, away_message, updated_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (shop_id) DO UPDATE SET mode = excluded.mode, hours = excluded.hours,
               away_message = excluded.away_message, updated_at = excluded.updated_at""",
        shop_id, mode, hours, away_message, now)


async def instant_answers(pool: asyncpg.Pool, shop_id: str) -> dict[str, asyncpg.Record]:
    """topic -> the shop's saved instant answer (topics without a row have none)."""
    rows = await pool.fetch(
        "SELECT topic, enabled, text, updated_at FROM instant_answers WHERE shop_id = $1",
        shop_id)
    return {r["topic"]: r for r in rows}


async def save_instant_answer(pool: asyncpg.Pool, shop_id: str, topic: str, enabled: bool,
                              text: str, now: datetime) -> dict[str, Any]:
    row = await pool.fetchrow(
        """INSERT INTO instant_answers (shop_id, topic, enabled, text, updated_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (shop_id, topic) DO UPDATE SET enabled = excluded.enabled,
               text = excluded.text, updated_at = excluded.updated_at
           RETURNING topic, enabled, text, updated_at""",
        shop_id, topic, enabled, text, now)
    return dict(row)
