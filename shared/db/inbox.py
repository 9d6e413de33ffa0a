"""The idempotent-consumer table: an event's effect is applied once per consumer.

The claim is made in the same transaction as the effect, so a redelivered event (a crash before
the offset commit, a rebalance, a producer retry) finds its id taken and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


async def claim(conn: asyncpg.Connection, consumer: str, event_ids: Sequence[str]) -> set[str]:
    """Record `event_ids` as processed by `consumer`; returns the ids not seen before."""
    rows = await conn.fetch(
        """INSERT INTO processed_events (consumer, event_id)
           SELECT $1, unnest($2::text[])
           ON CONFLICT DO NOTHING
           RETURNING event_id""",
        consumer,
        list(dict.fromkeys(event_ids)),
    )
    return {r["event_id"] for r in rows}
