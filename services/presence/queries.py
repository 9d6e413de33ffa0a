"""The presence service's SQL (it owns the visitors table)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from services.presence.rules import Visitor


async def lock_visitors(
    conn: asyncpg.Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], Visitor]:
    shops, visitors = zip(*sorted(keys), strict=True)
    rows = await conn.fetch(
        """SELECT v.shop_id, v.visitor_id, v.last_seen_at, v.left_at, v.online
           FROM visitors v JOIN unnest($1::text[], $2::text[]) AS k(shop_id, visitor_id)
             USING (shop_id, visitor_id)
           ORDER BY v.shop_id, v.visitor_id
           FOR UPDATE OF v""",
        list(shops), list(visitors),
    )
    return {
        (r["shop_id"], r["visitor_id"]): Visitor(r["last_seen_at"], r["left_at"], r["online"])
        for r in rows
    }


async def save_visitors(
    conn: asyncpg.Connection, rows: list[tuple[str, str, Visitor, bool]]
) -> None:
    """rows: (shop_id, visitor_id, visitor, changed)"""
    await conn.executemany(
        """INSERT INTO visitors AS v (shop_id, visitor_id, last_seen_at, left_at, online,
               changed_at)
           VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END)
           ON CONFLICT (shop_id, visitor_id) DO UPDATE SET
               last_seen_at = excluded.last_seen_at, left_at = excluded.left_at,
               online = excluded.online,
               changed_at = CASE WHEN $6 THEN now() ELSE v.changed_at END""",
        [(shop, visitor, v.last_seen_at, v.left_at, v.online, changed)
         for shop, visitor, v, changed in rows],
    )


async def expire(conn: asyncpg.Connection, timeout: timedelta, limit: int) -> list[asyncpg.Record]:
    """Mark offline the visitors whose last signal is older than the timeout."""
    return await conn.fetch(
        """UPDATE visitors SET online = false, changed_at = now()
           WHERE (shop_id, visitor_id) IN (
               SELECT shop_id, visitor_id FROM visitors
               WHERE online AND last_seen_at < now() - $1::interval
               ORDER BY last_seen_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING shop_id, visitor_id, last_seen_at, changed_at""",
        timeout, limit,
    )


async def next_expiry_in(conn: asyncpg.Connection, timeout: timedelta) -> float | None:
    """Seconds until the next visitor online times out; None when nobody is online.
    (Not `greatest(0, …)` in SQL: GREATEST skips a NULL and would answer 0, a busy loop.)"""
    due = await conn.fetchval(
        """SELECT extract(epoch FROM min(last_seen_at) + $1::interval - now())::float8
           FROM visitors WHERE online""",
        timeout,
    )
    return None if due is None else max(0.0, due)
