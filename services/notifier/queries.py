"""The notifier's SQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from shared.contracts import OutboundMessage


def _due_after_waiting(conversation: str, before_seq: str | None = None) -> str:
    """SQL: when the last delivery of `conversation` (before `before_seq`) that waits for its
    retry is due; NULL when none waits (greatest() then ignores it)."""
    earlier = f" AND waiting.seq < {before_seq}" if before_seq else ""
    return f"""(SELECT max(next_attempt_at) FROM deliveries waiting
               WHERE waiting.conversation_id = {conversation}{earlier}
                 AND waiting.status = 'pending')"""


async def enqueue(conn: asyncpg.Connection, messages: list[OutboundMessage]) -> None:
    """New deliveries, in order. One behind a delivery of its conversation that waits for its
    retry is due no sooner (it cannot leave before it; this keeps it out of the claims)."""
    await conn.executemany(
        f"""INSERT INTO deliveries (message_id, shop_id, conversation_id, channel, payload,
                                   next_attempt_at)
           VALUES ($1, $2, $3, $4, $5::text::jsonb,
                   greatest(now(), {_due_after_waiting("$3")}))
           ON CONFLICT (message_id) DO NOTHING""",
        [(m.message_id, m.shop_id, m.conversation_id, m.channel, m.model_dump_json())
         for m in messages],
    )


#: A delivery may go when no earlier one of its conversation waits (pending) or is in the hands
#: of another worker ($1); earlier ones in this worker's hands are sent before it, in turn.
_FIRST_IN_CONVERSATION = """NOT EXISTS (
    SELECT 1 FROM deliveries earlier
    WHERE earlier.conversation_id = d.conversation_id AND earlier.seq < d.seq
      AND (earlier.status = 'pending' OR (earlier.status IN ('claimed', 'sending')
                                          AND earlier.claimed_by IS DISTINCT FROM $1)))"""


async def claim_due(
    conn: asyncpg.Connection, worker: str, limit: int, skip_channels: list[str] | None = None,
    only_channel: str | None = None,
) -> list[asyncpg.Record]:
    """Due deliveries (but those on `skip_channels`; or only those on `only_channel`), each
    free to go in its conversation's order, locked for this transaction; other notifier
    instances skip them. (In index order only: sorting on `seq` too would read every due row
    before the limit; the order within a conversation is kept by the condition.)"""
    return await conn.fetch(
        f"""SELECT message_id, shop_id, conversation_id, channel, payload, attempts
            FROM deliveries d
            WHERE status = 'pending' AND next_attempt_at <= now()
              AND NOT (channel = ANY($3::text[])) AND ($4::text IS NULL OR channel = $4)
              AND {_FIRST_IN_CONVERSATION}
            ORDER BY next_attempt_at LIMIT $2
            FOR UPDATE SKIP LOCKED""",
        worker, limit, skip_channels or [], only_channel,
    )


async def next_due_in(conn: asyncpg.Connection, worker: str,
                      skip_channels: list[str] | None = None) -> float | None:
    """Seconds until the next delivery free to go is due (0 when one is due now), leaving out
    `skip_channels`; None when none is pending. (Not `greatest(0, …)` in SQL: it ignores a
    NULL and would say 0, so the worker would spin while nothing is pending.) One held back
    behind an earlier delivery of its conversation is not counted: that one's due time or its
    end (which wakes the worker) comes first."""
    due = await conn.fetchval(
        f"""SELECT extract(epoch FROM min(next_attempt_at) - now())::float8
            FROM deliveries d WHERE status = 'pending'
              AND NOT (channel = ANY($2::text[])) AND {_FIRST_IN_CONVERSATION}""",
        worker, skip_channels or [],
    )
    return None if due is None else max(0.0, due)


async def put_back(conn: asyncpg.Connection, message_id: str, worker: str) -> None:
    """A claimed delivery goes back, untried, behind an earlier one of its conversation that
    waits for its retry (due no sooner than it)."""
    await conn.execute(
        f"""UPDATE deliveries d SET status = 'pending', claimed_by = NULL, updated_at = now(),
               next_attempt_at = greatest(d.next_attempt_at,
                                          {_due_after_waiting("d.conversation_id", "d.seq")})
           WHERE message_id = $1 AND status = 'claimed' AND claimed_by = $2""",
        message_id, worker,
    )


async def record_attempts(
    conn: asyncpg.Connection,
    rows: list[tuple[str, int, datetime, str, str | None, str | None]],
) -> None:
    """rows: (message_id, attempt, started_at, result, error_code, reason)."""
    await conn.executemany(
        """INSERT INTO delivery_attempts
               (message_id, attempt, started_at, finished_at, result, error_code, reason)
           VALUES ($1, $2, $3, now(), $4, $5, $6)""",
        rows,
    )


async def finish(
    conn: asyncpg.Connection, rows: list[tuple[str, str, int, str | None, str | None]]
) -> None:
    """rows: (message_id, status, attempts, error, provider_message_id)."""
    await conn.executemany(
        """UPDATE deliveries SET status = $2, attempts = $3, last_error = $4,
               provider_message_id = $5, updated_at = now()
           WHERE message_id = $1""",
        rows,
    )


async def mark_claimed(conn: asyncpg.Connection, message_ids: list[str], worker: str) -> None:
    if not message_ids:
        return
    await conn.execute(
        """UPDATE deliveries SET status = 'claimed', claimed_by = $2, updated_at = now()
           WHERE message_id = ANY($1::text[])""",
        message_ids, worker,
    )


async def mark_sending(
    conn: asyncpg.Connection, message_id: str, attempt: int, worker: str
) -> bool:
    """Record the send as in flight, if this worker still holds the claim."""
    status = await conn.execute(
        """UPDATE deliveries SET status = 'sending', attempts = $2, updated_at = now()
           WHERE message_id = $1 AND status = 'claimed' AND claimed_by = $3""",
        message_id, attempt, worker,
    )
    return status.endswith(" 1")


async def renew_leases(conn: asyncpg.Connection, worker: str, message_ids: list[str]) -> None:
    """The claims and sends `worker` has in hand are still its own (see the stale checks)."""
    await conn.execute(
        """UPDATE deliveries SET updated_at = now()
           WHERE message_id = ANY($2::text[]) AND status IN ('claimed', 'sending')
             AND claimed_by = $1""",
        worker, message_ids,
    )


async def release_stale_claims(conn: asyncpg.Connection, older_than: float) -> int:
    """Claims of a notifier that died before sending them: safe to try again."""
    status = await conn.execute(
        """UPDATE deliveries SET status = 'pending', updated_at = now()
           WHERE status = 'claimed' AND updated_at < now() - make_interval(secs => $1)""",
        older_than,
    )
    return int(status.split()[-1])


async def take_stale_sends(conn: asyncpg.Connection, older_than: float) -> list[asyncpg.Record]:
    return await conn.fetch(
        """UPDATE deliveries SET status = 'failed', updated_at = now()
           WHERE message_id IN (
               SELECT message_id FROM deliveries
               WHERE status = 'sending' AND updated_at < now() - make_interval(secs => $1)
               FOR UPDATE SKIP LOCKED)
           RETURNING message_id, shop_id, conversation_id, channel, payload, attempts,
               updated_at""",
        older_than,
    )


async def retry_later(
    conn: asyncpg.Connection, rows: list[tuple[str, int, float, str]]
) -> None:
    """rows: (message_id, attempts, delay_seconds, error). The later deliveries of the
    conversation are put off as long (they wait behind it anyway)."""
    await conn.executemany(
        """WITH retried AS (
               UPDATE deliveries SET status = 'pending', attempts = $2, last_error = $4,
                   updated_at = now(),
                   next_attempt_at = now() + make_interval(secs => $3)
               WHERE message_id = $1
               RETURNING conversation_id, seq, next_attempt_at)
           UPDATE deliveries later SET next_attempt_at = retried.next_attempt_at
           FROM retried
           WHERE later.conversation_id = retried.conversation_id AND later.seq > retried.seq
             AND later.status = 'pending' AND later.next_attempt_at < retried.next_attempt_at""",
        rows,
    )


async def store_chat_message(conn: asyncpg.Connection, message: OutboundMessage) -> None:
    await conn.execute(
        """INSERT INTO storefront_chat_messages
               (message_id, shop_id, thread_ref, conversation_id, content, sent_at)
           VALUES ($1, $2, $3, $4, $5::text::jsonb, now())
           ON CONFLICT (message_id) DO NOTHING""",
        message.message_id, message.shop_id, message.recipient.thread_ref,
        message.conversation_id, message.content.model_dump_json(exclude_none=True),
    )


async def sent_in_conversation(
    conn: asyncpg.Connection, conversation_id: str, channel: str, before_message_id: str
) -> list[str]:
    """The message ids already delivered on `channel` in this conversation, oldest first."""
    rows = await conn.fetch(
        """SELECT message_id FROM deliveries
           WHERE conversation_id = $1 AND channel = $2 AND status = 'sent'
             AND message_id <> $3
           ORDER BY updated_at, message_id""",
        conversation_id, channel, before_message_id,
    )
    return [r["message_id"] for r in rows]


async def thread_of_email(pool: asyncpg.Pool, ids: list[str]) -> asyncpg.Record | None:
    """The conversation one of our emails belongs to (shop_id, conversation_id, channel,
    thread_ref): from the delivery that sent it, or from the thread root's conversation id."""
    root = "conversation-"
    conversation_ids = [i.removeprefix(root) for i in ids if i.startswith(root)]
    return await pool.fetchrow(
        """SELECT shop_id, conversation_id,
                  coalesce(payload->>'conversation_channel', payload->>'channel') AS channel,
                  payload->'recipient'->>'thread_ref' AS thread_ref
           FROM deliveries
           WHERE message_id = ANY($1::text[]) OR conversation_id = ANY($2::text[])
           ORDER BY (message_id = ANY($1::text[])) DESC
           LIMIT 1""",
        ids, conversation_ids,
    )
