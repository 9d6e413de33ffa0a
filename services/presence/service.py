"""Wiring of the presence service.

This first version keeps each visitor's last storefront signal in PostgreSQL; online/offline
transitions and the presence topic build on it.
"""

from __future__ import annotations

import asyncpg

from shared.contracts import ActivityEvent
from shared.kafka.consumer import Subscription
from shared.service import Service
from shared.topics import STOREFRONT_ACTIVITY


async def record_activity(conn: asyncpg.Connection, events: list[ActivityEvent]) -> None:
    await conn.executemany(
        """INSERT INTO visitors AS v (shop_id, visitor_id, last_seen_at, left_at)
           VALUES ($1, $2, $3, CASE WHEN $4 THEN $3 END)
           ON CONFLICT (shop_id, visitor_id) DO UPDATE SET
               last_seen_at = greatest(v.last_seen_at, excluded.last_seen_at),
               left_at = CASE WHEN $4 THEN greatest(v.left_at, excluded.last_seen_at)
                              ELSE v.left_at END""",
        [(e.shop_id, e.visitor_id, e.at, e.type == "left") for e in events],
    )


def build(service: Service) -> None:
    service.consume([Subscription(STOREFRONT_ACTIVITY, record_activity)])
