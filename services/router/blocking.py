"""Blocking: a blocked conversation's customer identities (`shared.rules.customer_identities`)
open or continue no conversation in the shop; their messages are refused with the reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from shared.rules import customer_identities


def identities_of_conversation(conversation: asyncpg.Record) -> list[str]:
    return customer_identities(conversation["channel"], conversation["thread_ref"],
                               conversation["visitor_id"], conversation["customer_email"])


def identities_of_message(event: Any) -> list[str]:
    email = event.customer.email if event.customer else None
    return customer_identities(event.channel, event.thread_ref, event.visitor_id, email)


async def block(conn: asyncpg.Connection, conversation: asyncpg.Record, reason: str,
                staff_id: str, at: datetime) -> None:
    await conn.executemany(
        """INSERT INTO blocked_identities (shop_id, identity, conversation_id, reason, staff_id,
               blocked_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (shop_id, identity) DO UPDATE SET reason = excluded.reason,
               conversation_id = excluded.conversation_id, staff_id = excluded.staff_id,
               blocked_at = excluded.blocked_at""",
        [(conversation["shop_id"], identity, conversation["conversation_id"], reason, staff_id, at)
         for identity in identities_of_conversation(conversation)],
    )
    await conn.execute(
        "UPDATE conversations SET blocked_at = $2, blocked_reason = $3 WHERE conversation_id = $1",
        conversation["conversation_id"], at, reason)


async def unblock(conn: asyncpg.Connection, conversation: asyncpg.Record) -> None:
    await conn.execute(
        "DELETE FROM blocked_identities WHERE shop_id = $1 AND identity = ANY($2::text[])",
        conversation["shop_id"], identities_of_conversation(conversation))
    await conn.execute(
        "DELETE FROM blocked_identities WHERE conversation_id = $1",
        conversation["conversation_id"])
    await conn.execute(
        "UPDATE conversations SET blocked_at = NULL, blocked_reason = NULL "
        "WHERE conversation_id = $1", conversation["conversation_id"])


async def blocked_reasons(conn: asyncpg.Connection, events: list[Any]) -> dict[int, str]:
    """For the events from a blocked identity: their index -> why (one query per batch)."""
    wanted = {(e.shop_id, i) for e in events for i in identities_of_message(e)}
    if not wanted:
        return {}
    rows = await conn.fetch(
        """SELECT shop_id, identity, reason FROM blocked_identities
           WHERE (shop_id, identity) IN (SELECT * FROM unnest($1::text[], $2::text[]))""",
        [s for s, _ in wanted], [i for _, i in wanted])
    reasons = {(r["shop_id"], r["identity"]): r["reason"] for r in rows}
    found = {}
    for n, event in enumerate(events):
        for identity in identities_of_message(event):
            if (event.shop_id, identity) in reasons:
                found[n] = reasons[(event.shop_id, identity)]
                break
    return found
