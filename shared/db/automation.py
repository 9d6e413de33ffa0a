"""What a shop answers when nobody is there: its chat hours and away message, its instant
answers. Read by the gateway (the storefront's shop, the settings API) and the router."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from shared.hours import DEFAULT_AWAY_MESSAGE, ChatHours, parse_ranges


@dataclass(frozen=True)
class ShopHours:
    hours: ChatHours
    away_message: str


async def shop_hours(conn: asyncpg.Connection | asyncpg.Pool, shop_ids: set[str],
                     keeping_hours_only: bool = False) -> dict[str, ShopHours]:
    """Each known shop's chat hours in its time zone (always available without a row); with
    `keeping_hours_only`, only the shops whose chat keeps hours (one indexed lookup, which is
    all a batch of messages to shops that keep none costs)."""
    rows = await conn.fetch(
        """SELECT s.shop_id, s.timezone, coalesce(h.mode, 'always') AS mode,
                  coalesce(h.hours, '[]'::jsonb) AS hours, h.away_message
           FROM shops s LEFT JOIN chat_hours h USING (shop_id)
           WHERE s.shop_id = ANY($1::text[]) AND (NOT $2 OR h.mode = 'hours')""",
        list(shop_ids), keeping_hours_only)
    return {
        r["shop_id"]: ShopHours(
            # Saved only after the gateway checked them: parsing cannot fail here.
            ChatHours(r["mode"], parse_ranges(r["hours"]), r["timezone"]),
            r["away_message"] or DEFAULT_AWAY_MESSAGE,
        )
        for r in rows
    }


async def enabled_instant_answers(conn: asyncpg.Connection, pairs: set[tuple[str, str]]
                                  ) -> dict[tuple[str, str], str]:
    """(shop, topic) -> the text of the instant answers turned on among these pairs."""
    if not pairs:
        return {}
    shops, topics = zip(*sorted(pairs), strict=True)
    rows = await conn.fetch(
        """SELECT a.shop_id, a.topic, a.text
           FROM unnest($1::text[], $2::text[]) AS p(shop_id, topic)
           JOIN instant_answers a USING (shop_id, topic)
           WHERE a.enabled AND a.text <> ''""", list(shops), list(topics))
    return {(r["shop_id"], r["topic"]): r["text"] for r in rows}
