"""The transactional outbox: events written with the state change that caused them.

A handler adds events in its transaction; the relay (`shared.kafka.relay`, beside the producer
it publishes with, so that the database layer does not depend on Kafka) publishes them afterwards.
"""

from __future__ import annotations

import asyncpg
from pydantic import BaseModel


class Outbox:
    """Events to publish once the surrounding transaction commits."""

    def __init__(self, relay: str) -> None:
        self.relay = relay

    async def add(
        self, conn: asyncpg.Connection, topic: str, event: BaseModel, key: str | None = None
    ) -> None:
        await self.add_many(conn, [(topic, key or event.key, event)])  # type: ignore[attr-defined]

    async def add_many(
        self, conn: asyncpg.Connection, events: list[tuple[str, str, BaseModel]]
    ) -> None:
        if not events:
            return
        topics, keys, values = zip(
            *((t, k, e.model_dump_json().encode()) for t, k, e in events), strict=True
        )
        await conn.execute(
            """INSERT INTO outbox (relay, topic, key, value)
               SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bytea[])""",
            self.relay, list(topics), list(keys), list(values),
        )

    async def add_tombstones(self, conn: asyncpg.Connection, topic: str, keys: list[str]) -> None:
        """A record without a value for each key: on a compacted topic, the key's removal."""
        if keys:
            await conn.execute(
                """INSERT INTO outbox (relay, topic, key, value)
                   SELECT $1, $2, k, NULL FROM unnest($3::text[]) AS k""",
                self.relay, topic, keys,
            )
