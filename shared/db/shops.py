"""Which shops exist: the shop data every consumer checks events against."""

from __future__ import annotations

import asyncpg


async def known_shops(conn: asyncpg.Connection, shop_ids: set[str]) -> set[str]:
    rows = await conn.fetch("SELECT shop_id FROM shops WHERE shop_id = ANY($1::text[])",
                            list(shop_ids))
    return {r["shop_id"] for r in rows}
