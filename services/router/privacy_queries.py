"""SQL of privacy requests: finding a customer's data in a shop, exporting it, erasing it, and
erasing a shop. Each runs in the handler's transaction."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from shared.messenger import parse_thread
from shared.topics import SHOP_DISCOUNTS, SHOP_PRODUCTS, SHOP_SHOPS, SHOP_STAFF

REDACTED_REASON = "cancelled: the customer's data was erased"


@dataclass
class CustomerData:
    """Where a customer's data is in one shop."""

    conversation_ids: list[uuid.UUID] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)
    visitor_ids: list[str] = field(default_factory=list)
    #: customer_notes keys (`shared.rules.customer_key`)
    note_keys: list[str] = field(default_factory=list)
    #: Messenger people: (page id, contact) as `messenger_contacts` names them
    messenger_contacts: list[tuple[str, str]] = field(default_factory=list)
    consent_ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.conversation_ids or self.order_ids or self.consent_ids)


async def shop_by_domain(conn: asyncpg.Connection, domain: str) -> str | None:
    return await conn.fetchval(
        "SELECT shop_id FROM shops WHERE lower(domain) = lower($1) ORDER BY shop_id LIMIT 1",
        domain,
    )


async def shop_exists(conn: asyncpg.Connection, shop_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM shops WHERE shop_id = $1", shop_id))


async def find_customer(
    conn: asyncpg.Connection, shop_id: str, customer_id: str | None, email: str | None,
    order_ids: list[str],
) -> CustomerData:
    """The customer's conversations, orders, visitors, notes and Messenger identities: by
    customer id or email, by the orders named (and the Messenger people who opted in on them),
    and by the visitors and Messenger people of those conversations."""
    email = email.strip().lower() if email else None
    orders = await conn.fetch(
        """SELECT order_id, customer_id, lower(customer_email) AS email FROM orders
           WHERE shop_id = $1 AND (order_id = ANY($2::text[]) OR customer_id = $3
                                   OR lower(customer_email) = $4)""",
        shop_id, order_ids, customer_id, email,
    )
    ids = {customer_id} | {o["customer_id"] for o in orders}
    emails = {email} | {o["email"] for o in orders}
    ids.discard(None)
    emails.discard(None)
    order_list = [o["order_id"] for o in orders]
    consents = await conn.fetch(
        """SELECT c.consent_id, c.page_id, c.user_ref, c.conversation_id, i.psid
           FROM messenger_order_consents c
           LEFT JOIN messenger_identities i USING (page_id, user_ref)
           WHERE c.shop_id = $1 AND c.order_id = ANY($2::text[])""",
        shop_id, order_list,
    )
    psid_threads = [f"{c['page_id']}:{c['psid']}" for c in consents if c["psid"]]
    rows = await conn.fetch(
        """SELECT conversation_id, channel, thread_ref, visitor_id, customer_id,
                  lower(customer_email) AS email
           FROM conversations
           WHERE shop_id = $1 AND (customer_id = ANY($2::text[])
                                   OR lower(customer_email) = ANY($3::text[])
                                   OR conversation_id = ANY($4::uuid[])
                                   OR (channel = 'messenger' AND thread_ref = ANY($5::text[])))""",
        shop_id, list(ids), list(emails), [c["conversation_id"] for c in consents
                                            if c["conversation_id"]], psid_threads,
    )
    visitors = {r["visitor_id"] for r in rows if r["visitor_id"]}
    if visitors:  # the same visitor's other chats (before they gave their address)
        rows += await conn.fetch(
            """SELECT conversation_id, channel, thread_ref, visitor_id, customer_id,
                      lower(customer_email) AS email
               FROM conversations WHERE shop_id = $1 AND visitor_id = ANY($2::text[])
                 AND NOT conversation_id = ANY($3::uuid[])""",
            shop_id, list(visitors), [r["conversation_id"] for r in rows],
        )
    data = CustomerData(
        conversation_ids=sorted({r["conversation_id"] for r in rows}),
        order_ids=order_list,
        visitor_ids=sorted(visitors),
        consent_ids=[c["consent_id"] for c in consents],
    )
    keys = {f"id:{i}" for i in ids} | {f"email:{e}" for e in emails}
    keys |= {f"conversation:{c}" for c in data.conversation_ids}
    data.note_keys = sorted(keys)
    people: set[tuple[str, str]] = set()
    for c in consents:
        people.add((c["page_id"], f"user_ref:{c['user_ref']}"))
        if c["psid"]:
            people.add((c["page_id"], f"psid:{c['psid']}"))
    for r in rows:
        target = parse_thread(r["thread_ref"]) if r["channel"] == "messenger" else None
        if target is not None:
            contact = f"psid:{target.psid}" if target.psid else f"user_ref:{target.user_ref}"
            people.add((target.page_id, contact))
    data.messenger_contacts = sorted(people)
    return data


def _rows(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [json.loads(r["row"]) for r in records]


async def export(conn: asyncpg.Connection, shop_id: str, data: CustomerData) -> dict[str, Any]:
    """Everything held about the customer in the shop, as JSON-ready data."""
    conversations = _rows(await conn.fetch(
        """SELECT row_to_json(c)::text AS row FROM (
               SELECT conversation_id, channel, thread_ref, status, subject, customer_name,
                      customer_email, customer_id, customer_locale, customer_city,
                      customer_country, customer_timezone, visitor_id, topics, created_at,
                      last_message_at
               FROM conversations WHERE conversation_id = ANY($1::uuid[])
               ORDER BY created_at) c""", data.conversation_ids))
    items = _rows(await conn.fetch(
        """SELECT row_to_json(t)::text AS row FROM (
               SELECT t.conversation_id, t.seq, t.kind, t.author, t.text, t.data, t.at,
                      m.delivery_status, m.delivery_reason, m.content
               FROM timeline_items t LEFT JOIN messages m USING (message_id)
               WHERE t.conversation_id = ANY($1::uuid[]) ORDER BY t.conversation_id, t.seq) t""",
        data.conversation_ids))
    for conversation in conversations:
        conversation["timeline"] = [
            {k: v for k, v in i.items() if k != "conversation_id"}
            for i in items if i["conversation_id"] == conversation["conversation_id"]
        ]
    ids_text = [str(c) for c in data.conversation_ids]
    return {
        "conversations": conversations,
        "notes": _rows(await conn.fetch(
            """SELECT row_to_json(n)::text AS row FROM (
                   SELECT note_id, staff_id, text, created_at FROM customer_notes
                   WHERE shop_id = $1 AND customer_key = ANY($2::text[]) ORDER BY created_at) n""",
            shop_id, data.note_keys)),
        "orders": _rows(await conn.fetch(
            """SELECT row_to_json(o)::text AS row FROM (
                   SELECT order_id, order_number, status, customer_id, customer_email,
                          customer_name, total_price, currency, tracking, placed_at
                   FROM orders WHERE shop_id = $1 AND order_id = ANY($2::text[])
                   ORDER BY placed_at) o""", shop_id, data.order_ids)),
        "messenger_consents": _rows(await conn.fetch(
            """SELECT row_to_json(c)::text AS row FROM (
                   SELECT c.order_id, c.page_id, c.state, c.state_reason, c.opted_in_at,
                          (SELECT coalesce(json_agg(h ORDER BY h.at), '[]') FROM (
                               SELECT change, actor, reason, at
                               FROM messenger_consent_changes WHERE consent_id = c.consent_id
                           ) h) AS history
                   FROM messenger_order_consents c WHERE c.consent_id = ANY($1::uuid[])) c""",
            data.consent_ids)),
        "deliveries": _rows(await conn.fetch(
            """SELECT row_to_json(d)::text AS row FROM (
                   SELECT message_id, conversation_id, channel, status, attempts, last_error,
                          created_at, updated_at
                   FROM deliveries WHERE conversation_id = ANY($1::text[])
                   ORDER BY created_at) d""", ids_text)),
        "storefront_carts": _rows(await conn.fetch(
            """SELECT row_to_json(c)::text AS row FROM (
                   SELECT visitor_id, currency, subtotal, items, updated_at FROM carts
                   WHERE shop_id = $1 AND visitor_id = ANY($2::text[])) c""",
            shop_id, data.visitor_ids)),
    }


async def erase_customer(conn: asyncpg.Connection, shop_id: str, data: CustomerData,
                         now: datetime) -> None:
    """Nothing that identifies the customer or that they wrote is left; their conversations
    keep their shell (ids, channel, times, topics, counts) and show as redacted."""
    ids = data.conversation_ids
    ids_text = [str(c) for c in ids]
    await conn.execute(
        """DELETE FROM privacy_exports WHERE shop_id = $1
           AND (conversation_ids && $2::uuid[] OR customer_keys && $3::text[])""",
        shop_id, ids, data.note_keys)
    await conn.execute(
        """UPDATE messages SET text = NULL, content = '{}',
               delivery_status = CASE WHEN delivery_status IN ('pending', 'held') THEN 'failed'
                                      ELSE delivery_status END,
               delivery_reason = CASE WHEN delivery_status IN ('pending', 'held') THEN $2
                                      ELSE NULL END
           WHERE conversation_id = ANY($1::uuid[])""", ids, REDACTED_REASON)
    await conn.execute(
        "UPDATE timeline_items SET text = NULL, data = '{}' WHERE conversation_id = ANY($1)", ids)
    await conn.execute(
        "DELETE FROM storefront_chat_messages WHERE conversation_id = ANY($1::text[])", ids_text)
    # Deliveries still waiting are cancelled, never sent; none keeps what it carried.
    await conn.execute(
        """UPDATE delivery_attempts SET reason = NULL WHERE message_id IN (
               SELECT message_id FROM deliveries WHERE conversation_id = ANY($1::text[]))""",
        ids_text)
    await conn.execute(
        """UPDATE deliveries SET payload = '{}', provider_message_id = NULL,
               status = CASE WHEN status IN ('pending', 'claimed') THEN 'failed' ELSE status END,
               last_error = CASE WHEN status IN ('pending', 'claimed') THEN $2 ELSE NULL END,
               updated_at = $3
           WHERE conversation_id = ANY($1::text[])""", ids_text, REDACTED_REASON, now)
    await conn.execute(
        "DELETE FROM customer_notes WHERE shop_id = $1 AND customer_key = ANY($2::text[])",
        shop_id, data.note_keys)
    await conn.execute(
        "DELETE FROM carts WHERE shop_id = $1 AND visitor_id = ANY($2::text[])",
        shop_id, data.visitor_ids)
    for table in ("visitors", "visitor_presence"):
        await conn.execute(
            f"DELETE FROM {table} WHERE shop_id = $1 AND visitor_id = ANY($2::text[])",
            shop_id, data.visitor_ids)
    await conn.execute(
        """UPDATE orders SET customer_id = NULL, customer_email = NULL, customer_name = NULL,
               messenger_optin = NULL, tracking = NULL
           WHERE shop_id = $1 AND order_id = ANY($2::text[])""", shop_id, data.order_ids)
    await conn.execute(
        "DELETE FROM messenger_consent_changes WHERE consent_id = ANY($1::uuid[])",
        data.consent_ids)
    await conn.execute(
        "DELETE FROM messenger_order_consents WHERE consent_id = ANY($1::uuid[])",
        data.consent_ids)
    for page_id, contact in data.messenger_contacts:
        await conn.execute(
            "DELETE FROM messenger_contacts WHERE page_id = $1 AND contact = $2",
            page_id, contact)
        kind, _, value = contact.partition(":")
        await conn.execute(
            f"DELETE FROM messenger_identities WHERE page_id = $1 AND {kind} = $2",
            page_id, value)
    await conn.execute(
        """UPDATE conversations SET customer_name = NULL, customer_email = NULL,
               customer_id = NULL, customer_locale = NULL, customer_city = NULL,
               customer_country = NULL, customer_timezone = NULL, visitor_id = NULL,
               subject = NULL, last_message_preview = NULL,
               thread_ref = 'redacted:' || conversation_id, redacted_at = $2
           WHERE conversation_id = ANY($1::uuid[])""", ids, now)


#: Every table holding a shop's rows, children first.
_SHOP_TABLES = (
    "privacy_exports", "customer_notes", "saved_replies", "carts", "orders", "visitors",
    "visitor_presence", "storefront_chat_messages", "products", "discount_codes",
    "messenger_order_consents", "messenger_channels", "assignment_settings",
    "staff_availability", "chat_hours", "instant_answers",
)


async def erase_shop(conn: asyncpg.Connection, shop_id: str) -> dict[str, list[str]]:
    """Every row of the shop, staff (and their sessions and tokens) included. Returns the
    keys its records had on each shop-data topic, for tombstones there."""
    keys = {
        SHOP_SHOPS: [shop_id],
        SHOP_STAFF: [f"{shop_id}:{r['staff_id']}" for r in await conn.fetch(
            "SELECT staff_id FROM staff WHERE shop_id = $1", shop_id)],
        SHOP_PRODUCTS: [f"{shop_id}:{r['product_id']}" for r in await conn.fetch(
            "SELECT product_id FROM products WHERE shop_id = $1", shop_id)],
        SHOP_DISCOUNTS: [f"{shop_id}:{r['code']}" for r in await conn.fetch(
            "SELECT code FROM discount_codes WHERE shop_id = $1", shop_id)],
    }
    pages = [r["page_id"] for r in await conn.fetch(
        "SELECT page_id FROM messenger_channels WHERE shop_id = $1", shop_id)]
    conversations = "SELECT conversation_id FROM conversations WHERE shop_id = $1"
    await conn.execute(
        """DELETE FROM delivery_attempts WHERE message_id IN (
               SELECT message_id FROM deliveries WHERE shop_id = $1)""", shop_id)
    await conn.execute("DELETE FROM deliveries WHERE shop_id = $1", shop_id)
    await conn.execute(
        """DELETE FROM messenger_consent_changes WHERE shop_id = $1""", shop_id)
    for table in _SHOP_TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE shop_id = $1", shop_id)
    for page_id in pages:
        for table in ("messenger_contacts", "messenger_identities"):
            await conn.execute(f"DELETE FROM {table} WHERE page_id = $1", page_id)
    await conn.execute(f"DELETE FROM timeline_items WHERE conversation_id IN ({conversations})",
                       shop_id)
    await conn.execute(f"DELETE FROM messages WHERE conversation_id IN ({conversations})",
                       shop_id)
    await conn.execute("DELETE FROM conversations WHERE shop_id = $1", shop_id)
    await conn.execute("DELETE FROM staff WHERE shop_id = $1", shop_id)
    await conn.execute("DELETE FROM shops WHERE shop_id = $1", shop_id)
    return keys


async def record_request(
    conn: asyncpg.Connection, *, request_id: str, kind: str, source: str, shop_id: str | None,
    shop_domain: str | None, data_request_id: str | None, staff_id: str | None, state: str,
    conversations: int, received_at: datetime, completed_at: datetime,
) -> bool:
    """Records a request once; False when it was recorded before (a redelivery)."""
    return await conn.fetchval(
        """INSERT INTO privacy_requests (request_id, kind, source, shop_id, shop_domain,
               data_request_id, requested_by_staff_id, state, conversations, received_at,
               completed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (request_id) DO NOTHING RETURNING true""",
        request_id, kind, source, shop_id, shop_domain, data_request_id, staff_id, state,
        conversations, received_at, completed_at,
    ) or False


async def store_export(
    conn: asyncpg.Connection, request_id: str, shop_id: str, data_request_id: str | None,
    data: CustomerData, export_data: dict[str, Any], now: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO privacy_exports (request_id, shop_id, data_request_id, conversation_ids,
               customer_keys, export, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        request_id, shop_id, data_request_id, data.conversation_ids, data.note_keys,
        export_data, now,
    )
