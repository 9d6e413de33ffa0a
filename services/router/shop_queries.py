"""The router's SQL on shop data and commerce context (carts, orders): small functions on one
connection, inside the handler's transaction. Conversations, messages and the timeline are in
queries.py."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from shared.contracts import CartEvent, OrderEvent
from shared.rules import DiscountFacts, ProductFacts

# --- shop data (newest `at` wins, so replays and reordering are harmless) ------------------------

#: The shop data's unique constraints besides the keys, as the publisher would say it.
_UNIQUE = {
    "staff_token_sha256_key": "another staff member already has this API token (token_sha256)",
    "discount_codes_folded": "the shop already has this discount code in another letter case",
}


def conflict_reason(exc: asyncpg.UniqueViolationError) -> str:
    """Why a shop-data record cannot be kept (no value quoted: a token hash stays out of logs)."""
    name = exc.constraint_name or "?"
    what = _UNIQUE.get(name, f"it conflicts with another {exc.table_name or 'record'}")
    return f"unique constraint {name} broken: {what}"



async def upsert_shop(conn: asyncpg.Connection, e: Any) -> None:
    await conn.execute(
        """INSERT INTO shops AS s (shop_id, name, domain, currency, timezone, storefront_url,
               updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (shop_id) DO UPDATE SET name = excluded.name, domain = excluded.domain,
               currency = excluded.currency, timezone = excluded.timezone,
               storefront_url = excluded.storefront_url, updated_at = excluded.updated_at
           WHERE s.updated_at <= excluded.updated_at""",
        e.shop_id, e.name, e.domain, e.currency, e.timezone,
        str(e.storefront_url) if e.storefront_url else None, e.at,
    )


async def upsert_staff(conn: asyncpg.Connection, e: Any) -> None:
    await conn.execute(
        """INSERT INTO staff AS s (shop_id, staff_id, name, email, permissions, token_sha256,
               password_hash, active, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (shop_id, staff_id) DO UPDATE SET name = excluded.name,
               email = excluded.email, permissions = excluded.permissions,
               token_sha256 = excluded.token_sha256, password_hash = excluded.password_hash,
               active = excluded.active, updated_at = excluded.updated_at
           WHERE s.updated_at <= excluded.updated_at""",
        e.shop_id, e.staff_id, e.name, e.email, list(e.permissions), e.token_sha256,
        e.password_argon2id, e.active, e.at,
    )
    if not e.active:
        # Made inactive: signed out everywhere at once (sign-in also checks `active`).
        await conn.execute("DELETE FROM staff_sessions WHERE shop_id = $1 AND staff_id = $2",
                           e.shop_id, e.staff_id)


async def upsert_product(conn: asyncpg.Connection, e: Any) -> None:
    await conn.execute(
        """INSERT INTO products AS p (shop_id, product_id, title, price, currency, url, image_url,
               online_store, updated_at)
           VALUES ($1, $2, $3, $4::numeric, $5, $6, $7, $8, $9)
           ON CONFLICT (shop_id, product_id) DO UPDATE SET title = excluded.title,
               price = excluded.price, currency = excluded.currency, url = excluded.url,
               image_url = excluded.image_url, online_store = excluded.online_store,
               updated_at = excluded.updated_at
           WHERE p.updated_at <= excluded.updated_at""",
        e.shop_id, e.product_id, e.title, e.price, e.currency,
        str(e.url) if e.url else None, str(e.image_url) if e.image_url else None,
        e.online_store, e.at,
    )


async def upsert_discount(conn: asyncpg.Connection, e: Any) -> None:
    await conn.execute(
        """INSERT INTO discount_codes AS d (shop_id, code, status, starts_at, ends_at,
               value_type, value, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8)
           ON CONFLICT (shop_id, code) DO UPDATE SET status = excluded.status,
               starts_at = excluded.starts_at, ends_at = excluded.ends_at,
               value_type = excluded.value_type, value = excluded.value,
               updated_at = excluded.updated_at
           WHERE d.updated_at <= excluded.updated_at""",
        e.shop_id, e.code, e.status, e.starts_at, e.ends_at, e.value_type, e.value, e.at,
    )


async def product(conn: asyncpg.Connection, shop_id: str, product_id: str) -> ProductFacts | None:
    row = await conn.fetchrow(
        """SELECT product_id, title, price, currency, url, image_url, online_store
           FROM products WHERE shop_id = $1 AND product_id = $2""",
        shop_id, product_id,
    )
    return ProductFacts(**dict(row)) if row else None


async def discount(conn: asyncpg.Connection, shop_id: str, code: str) -> DiscountFacts | None:
    row = await conn.fetchrow(
        """SELECT code, status, starts_at, ends_at, value_type, value FROM discount_codes
           WHERE shop_id = $1 AND upper(code) = upper($2)""",
        shop_id, code,
    )
    return DiscountFacts(**dict(row)) if row else None


async def shop_storefront(conn: asyncpg.Connection, shop_id: str) -> asyncpg.Record | None:
    """The shop's domain and, when it has its own, its storefront's address."""
    return await conn.fetchrow(
        "SELECT domain, storefront_url FROM shops WHERE shop_id = $1", shop_id)


async def turn_off_order_updates(conn: asyncpg.Connection, shop_id: str, order_id: str) -> bool:
    status = await conn.execute(
        "UPDATE orders SET updates_enabled = false WHERE shop_id = $1 AND order_id = $2",
        shop_id, order_id,
    )
    return status.endswith(" 1")


# --- commerce context ----------------------------------------------------------------------------


async def save_cart(conn: asyncpg.Connection, e: CartEvent) -> bool:
    """Keep the visitor's newest cart; False when this event is older than the stored one."""
    status = await conn.execute(
        """INSERT INTO carts AS c (shop_id, visitor_id, currency, subtotal, items, discount,
               updated_at)
           VALUES ($1, $2, $3, $4::numeric, $5::text::jsonb, $6::text::jsonb, $7)
           ON CONFLICT (shop_id, visitor_id) DO UPDATE SET currency = excluded.currency,
               subtotal = excluded.subtotal, items = excluded.items,
               discount = excluded.discount, updated_at = excluded.updated_at
           WHERE c.updated_at <= excluded.updated_at""",
        e.shop_id, e.visitor_id, e.cart.currency, e.cart.subtotal,
        json.dumps([i.model_dump() for i in e.cart.items]),
        e.cart.discount.model_dump_json() if e.cart.discount else None, e.at,
    )
    return status.endswith(" 1")


async def visitor_conversation(
    conn: asyncpg.Connection, shop_id: str, visitor_id: str
) -> asyncpg.Record | None:
    """The visitor's online-store chat conversation (the newest, if several), locked."""
    return await conn.fetchrow(
        """SELECT * FROM conversations
           WHERE shop_id = $1 AND visitor_id = $2 AND channel = 'online_store_chat'
           ORDER BY created_at DESC LIMIT 1 FOR UPDATE""",
        shop_id, visitor_id,
    )


async def upsert_order(conn: asyncpg.Connection, e: OrderEvent, status: str) -> None:
    customer = e.customer
    await conn.execute(
        """INSERT INTO orders AS o (shop_id, order_id, order_number, status, customer_id,
               customer_email, customer_name, total_price, currency, messenger_optin, tracking,
               placed_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::numeric, $9, $10::text::jsonb,
                   $11::text::jsonb, $12, $12)
           ON CONFLICT (shop_id, order_id) DO UPDATE SET
               status = CASE WHEN o.updated_at <= excluded.updated_at
                             THEN excluded.status ELSE o.status END,
               customer_id = coalesce(excluded.customer_id, o.customer_id),
               customer_email = coalesce(excluded.customer_email, o.customer_email),
               customer_name = coalesce(excluded.customer_name, o.customer_name),
               total_price = coalesce(excluded.total_price, o.total_price),
               currency = coalesce(excluded.currency, o.currency),
               messenger_optin = coalesce(excluded.messenger_optin, o.messenger_optin),
               tracking = coalesce(excluded.tracking, o.tracking),
               placed_at = least(o.placed_at, excluded.placed_at),
               updated_at = greatest(o.updated_at, excluded.updated_at)""",
        e.shop_id, e.order_id, e.order_number, status,
        customer.customer_id if customer else None,
        customer.email if customer else None,
        customer.name if customer else None,
        e.total_price, e.currency,
        e.messenger_optin.model_dump_json() if e.messenger_optin else None,
        e.tracking.model_dump_json(exclude_none=True) if e.tracking else None,
        e.at,
    )


# --- shop names (carried by outbound messages) ---------------------------------------------------


async def shop_name(conn: asyncpg.Connection, shop_id: str) -> str | None:
    return await conn.fetchval("SELECT name FROM shops WHERE shop_id = $1", shop_id)


async def shop_name_of(conn: asyncpg.Connection, conversation: asyncpg.Record) -> str | None:
    """The conversation's shop name: read with the row when `lock_conversation` locked it,
    else looked up."""
    if "shop_name" in conversation.keys():
        return conversation["shop_name"]
    return await shop_name(conn, conversation["shop_id"])
