"""Pruning of the bookkeeping tables by age, so that they stay bounded.

What goes, and why it is safe:

- `processed_events` (every consumer's idempotency record): a record outlives every copy of its
  event in Kafka, so a redelivery can never slip past it. Its age limit is derived from the
  topics' retention (`keep_seconds`), never set apart: twice the longest a record stays
  readable in a customer-data topic (retention, plus the segment it waits in, plus the
  broker's check interval).
- `deliveries` that are finished (sent or failed) and their `delivery_attempts`, after the same
  time (the delivery row is the notifier's second guard against a redelivered reply). Kept: the
  newest email sent in each conversation, by which a customer's late answer to an old email
  still finds its conversation; what is not finished is never touched. A message's delivery
  status on the timeline lives in `messages`, not here.
- `visitors` (presence) and `visitor_presence` (the router's copy) of visitors offline for that
  long: a visitor who comes back is a new one, online from their first signal.

Each rule deletes at most `batch` rows per statement (rows locked by another transaction are
skipped), so no lock is held long; a service runs the rules of the tables it owns.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from prometheus_client import Counter

from shared.topics import record_lifetime_ms

log = logging.getLogger(__name__)

PRUNED = Counter(
    "inbox_pruned_rows_total", "Bookkeeping rows deleted by age, by table.", ["table"]
)


def keep_seconds(retention_ms: int) -> float:
    """How old a bookkeeping row may grow: twice the longest a record stays in a customer-data
    topic (so always longer than the topics' retention, whatever it is set to)."""
    return 2 * record_lifetime_ms(retention_ms) / 1000


@dataclass(frozen=True)
class Rule:
    """A statement deleting at most $2 rows older than $1 seconds; it returns one row per table
    it deleted from: (table, count). `owner`: the service that runs it (None: every service)."""

    name: str
    owner: str | None
    sql: str


RULES: tuple[Rule, ...] = (
    Rule("processed_events", None, """
        WITH gone AS (
            DELETE FROM processed_events WHERE ctid IN (
                SELECT ctid FROM processed_events
                WHERE processed_at < now() - make_interval(secs => $1)
                ORDER BY processed_at LIMIT $2
                FOR UPDATE SKIP LOCKED)
            RETURNING 1)
        SELECT 'processed_events' AS relation, count(*) AS count FROM gone"""),
    Rule("deliveries", "notifier", """
        WITH doomed AS (
            SELECT d.message_id FROM deliveries d
            WHERE d.status IN ('sent', 'failed')
              AND d.updated_at < now() - make_interval(secs => $1)
              -- the newest email sent in its conversation stays (see the module's text)
              AND NOT (d.channel = 'email' AND d.status = 'sent' AND NOT EXISTS (
                  SELECT 1 FROM deliveries newer
                  WHERE newer.conversation_id = d.conversation_id AND newer.channel = 'email'
                    AND newer.status = 'sent' AND newer.seq > d.seq))
            ORDER BY d.updated_at LIMIT $2
            FOR UPDATE SKIP LOCKED),
        attempts AS (
            DELETE FROM delivery_attempts a USING doomed WHERE a.message_id = doomed.message_id
            RETURNING 1),
        gone AS (
            DELETE FROM deliveries d USING doomed WHERE d.message_id = doomed.message_id
            RETURNING 1)
        SELECT 'deliveries' AS relation, count(*) AS count FROM gone
        UNION ALL
        SELECT 'delivery_attempts', count(*) FROM attempts"""),
    Rule("visitors", "presence", """
        WITH gone AS (
            DELETE FROM visitors WHERE ctid IN (
                SELECT ctid FROM visitors
                WHERE NOT online AND last_seen_at < now() - make_interval(secs => $1)
                ORDER BY last_seen_at LIMIT $2
                FOR UPDATE SKIP LOCKED)
            RETURNING 1)
        SELECT 'visitors' AS relation, count(*) AS count FROM gone"""),
    Rule("visitor_presence", "router", """
        WITH gone AS (
            DELETE FROM visitor_presence WHERE ctid IN (
                SELECT ctid FROM visitor_presence
                WHERE NOT online AND at < now() - make_interval(secs => $1)
                ORDER BY at LIMIT $2
                FOR UPDATE SKIP LOCKED)
            RETURNING 1)
        SELECT 'visitor_presence' AS relation, count(*) AS count FROM gone"""),
)

#: The tables pruned (the values of the counter's `table` label).
TABLES = ("processed_events", "deliveries", "delivery_attempts", "visitors", "visitor_presence")


def rules_for(service: str) -> list[Rule]:
    return [r for r in RULES if r.owner in (None, service)]


async def prune_step(pool: asyncpg.Pool, rule: Rule, older_than: float,
                     batch: int) -> dict[str, int]:
    """One statement of `rule`: what it deleted, per table."""
    rows = await pool.fetch(rule.sql, older_than, batch)
    counts = {r["relation"]: r["count"] for r in rows}
    for table, count in counts.items():
        if count:
            PRUNED.labels(table).inc(count)
    return counts


class Pruner:
    """Runs `rules` now and then: each in batches until a batch comes back short."""

    def __init__(self, pool: asyncpg.Pool, rules: Sequence[Rule], older_than: float,
                 batch: int = 500, interval: float = 300.0) -> None:
        self._pool = pool
        self._rules = list(rules)
        self._older_than = older_than
        self._batch = batch
        self._interval = interval

    async def prune(self) -> dict[str, int]:
        """Prune every rule to the end; returns the rows deleted per table."""
        total: dict[str, int] = {}
        for rule in self._rules:
            while True:
                counts = await prune_step(self._pool, rule, self._older_than, self._batch)
                for table, count in counts.items():
                    total[table] = total.get(table, 0) + count
                if counts.get(rule.name, 0) < self._batch:
                    break
                await asyncio.sleep(0)  # let other work in between batches
        return total

    async def run(self) -> None:
        """Soon after the start (a service that was down may find a backlog), then forever,
        `interval` apart (jittered, so services sharing a rule do not meet)."""
        pause = random.uniform(2.0, 10.0)
        while True:
            await asyncio.sleep(pause)
            pause = self._interval * random.uniform(0.5, 1.0)
            try:
                pruned = await self.prune()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("pruning failed (%s); trying again later", exc)  # service goes on
                continue
            if any(pruned.values()):
                log.info("pruned %s", ", ".join(f"{n} {t}" for t, n in pruned.items() if n))
