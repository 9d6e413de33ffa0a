"""The Messenger sender's SQL: what the planner needs at send time, and what Meta's answers
change (a channel needing reconnection, a person who blocked the Page).

It reads the shop's channel (gateway), the window and identities (router, from webhooks), the
conversation's last customer message (router) and the order's consent (router).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from shared.messenger import psid_thread, user_ref_thread


async def delivery(pool: asyncpg.Pool, message_id: str) -> asyncpg.Record | None:
    """The delivery as enqueued (the full Messenger payload) and its attempt number."""
    return await pool.fetchrow(
        "SELECT payload, attempts FROM deliveries WHERE message_id = $1", message_id
    )


@dataclass(frozen=True)
class Channel:
    page_id: str
    token: str
    human_agent_approved: bool
    state: str


@dataclass(frozen=True)
class Person:
    """The recipient as far as the window goes."""

    psid: str | None
    user_ref: str | None
    last_action_at: datetime | None
    blocked_at: datetime | None


async def channel(pool: asyncpg.Pool, shop_id: str) -> Channel | None:
    row = await pool.fetchrow(
        """SELECT page_id, page_access_token, human_agent_approved, state
           FROM messenger_channels WHERE shop_id = $1""",
        shop_id,
    )
    if row is None:
        return None
    return Channel(row["page_id"], row["page_access_token"], row["human_agent_approved"],
                   row["state"])


async def person(
    pool: asyncpg.Pool, shop_id: str, page_id: str, psid: str | None, user_ref: str | None
) -> Person:
    """Resolve the PSID of a checkbox user_ref (once they answered) and the last action that
    opens the window: their messages (on either conversation), postbacks, quick replies and
    opt-ins, whichever identity they came under."""
    async with pool.acquire() as conn:
        if psid is None and user_ref is not None:
            psid = await conn.fetchval(
                "SELECT psid FROM messenger_identities WHERE page_id = $1 AND user_ref = $2",
                page_id, user_ref,
            )
        refs = [user_ref] if user_ref else []
        if psid is not None:
            refs += [r["user_ref"] for r in await conn.fetch(
                "SELECT user_ref FROM messenger_identities WHERE page_id = $1 AND psid = $2",
                page_id, psid,
            ) if r["user_ref"] not in refs]
        contacts = [f"user_ref:{r}" for r in refs] + ([f"psid:{psid}"] if psid else [])
        threads = [user_ref_thread(page_id, r) for r in refs]
        if psid:
            threads.append(psid_thread(page_id, psid))
        row = await conn.fetchrow(
            """SELECT greatest(
                   (SELECT max(last_action_at) FROM messenger_contacts
                    WHERE page_id = $1 AND contact = ANY($2::text[])),
                   (SELECT max(last_customer_message_at) FROM conversations
                    WHERE shop_id = $3 AND channel = 'messenger'
                      AND thread_ref = ANY($4::text[]))) AS last_action_at,
                   (SELECT max(blocked_at) FROM messenger_contacts
                    WHERE page_id = $1 AND contact = ANY($2::text[])) AS blocked_at""",
            page_id, contacts, shop_id, threads,
        )
    return Person(psid, user_ref, row["last_action_at"], row["blocked_at"])


async def consent(pool: asyncpg.Pool, shop_id: str, order_id: str) -> str:
    """The order's consent as the planner knows it: none, active, refused, off_by_customer,
    off_by_merchant (the merchant's per-order switch on the order counts too)."""
    row = await pool.fetchrow(
        """SELECT c.state, coalesce(o.updates_enabled, true) AS updates_enabled
           FROM messenger_order_consents c
           LEFT JOIN orders o ON o.shop_id = c.shop_id AND o.order_id = c.order_id
           WHERE c.shop_id = $1 AND c.order_id = $2""",
        shop_id, order_id,
    )
    if row is None:
        return "none"
    if row["state"] == "active" and not row["updates_enabled"]:
        return "off_by_merchant"
    return row["state"]


async def needs_reconnection(pool: asyncpg.Pool, shop_id: str, token: str, reason: str) -> bool:
    """Meta refused `token`: the channel needs reconnecting, unless the merchant already
    reconnected it with another token (or removed it)."""
    status = await pool.execute(
        """UPDATE messenger_channels SET state = 'needs_reconnection', state_reason = $3,
               updated_at = now()
           WHERE shop_id = $1 AND page_access_token = $2 AND state = 'connected'""",
        shop_id, token, reason,
    )
    return status.endswith(" 1")


async def blocked(
    pool: asyncpg.Pool, page_id: str, contact: str, at: datetime, reason: str
) -> None:
    await pool.execute(
        """INSERT INTO messenger_contacts (page_id, contact, blocked_at, blocked_reason)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (page_id, contact) DO UPDATE SET blocked_at = excluded.blocked_at,
               blocked_reason = excluded.blocked_reason""",
        page_id, contact, at, reason,
    )
