"""The gateway's SQL: small functions, each scoped to one shop.

The router owns conversation state (the gateway only publishes commands for it); the gateway
writes one thing itself, the shop's saved replies, which are configuration.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from shared.rules import TOPICS_SHOWN


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, with its own `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- staff and shop -------------------------------------------------------------------------------


async def staff_by_token(pool: asyncpg.Pool, token_sha256: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        """SELECT shop_id, staff_id, name, email, permissions FROM staff
           WHERE token_sha256 = $1 AND active""",
        token_sha256,
    )


async def shop(pool: asyncpg.Pool, shop_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        """SELECT shop_id, name, domain, currency, timezone, storefront_url FROM shops
           WHERE shop_id = $1""",
        shop_id,
    )


async def staff_member(pool: asyncpg.Pool, shop_id: str, staff_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        """SELECT staff_id, name, email, permissions, active FROM staff
           WHERE shop_id = $1 AND staff_id = $2""",
        shop_id, staff_id,
    )


async def search_staff(
    pool: asyncpg.Pool, shop_id: str, search: str | None
) -> list[asyncpg.Record]:
    """The shop's active staff, by name; `search` matches name or email, case-insensitively."""
    return await pool.fetch(
        r"""SELECT staff_id, name, email, permissions, active FROM staff
            WHERE shop_id = $1 AND active
              AND ($2::text IS NULL OR name ILIKE $2 ESCAPE '\' OR email ILIKE $2 ESCAPE '\')
            ORDER BY lower(name), staff_id""",
        shop_id, contains_pattern(search) if search else None,
    )


# --- conversations --------------------------------------------------------------------------------

_ROW_COLUMNS = """
    c.conversation_id, c.shop_id, c.channel, c.thread_ref, c.status, c.unread, c.subject,
    c.topics, c.created_at, c.last_message_at, c.last_message_preview, c.visitor_id,
    c.customer_name, c.customer_email, c.customer_id, c.customer_locale, c.customer_city,
    c.customer_country, c.customer_timezone, c.customer_online, c.last_customer_message_at,
    c.redacted_at, c.blocked_at, c.blocked_reason,
    c.assignee_staff_id, a.name AS assignee_name,
    k.currency AS cart_currency, k.subtotal AS cart_subtotal, k.items AS cart_items,
    k.discount AS cart_discount
"""
_ROW_JOINS = """
    LEFT JOIN staff a ON a.shop_id = c.shop_id AND a.staff_id = c.assignee_staff_id
    LEFT JOIN carts k ON k.shop_id = c.shop_id AND k.visitor_id = c.visitor_id
"""


@dataclass(frozen=True)
class ConversationFilter:
    status: str | None = None
    assignee_staff_id: str | None = None
    #: True: only unassigned; False: only assigned; None: either.
    unassigned: bool | None = None
    unread: bool | None = None
    topic: str | None = None
    search: str | None = None
    #: Whether the subject is searched too (only for staff who may see subjects).
    search_subject: bool = False


def _conversation_conditions(f: ConversationFilter) -> tuple[list[str], list[object]]:
    conditions: list[str] = []
    args: list[object] = []

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args) + 1}"  # $1 is the shop id

    if f.status is not None:
        conditions.append(f"c.status = {arg(f.status)}")
    if f.assignee_staff_id is not None:
        conditions.append(f"c.assignee_staff_id = {arg(f.assignee_staff_id)}")
    if f.unassigned is True:
        conditions.append("c.assignee_staff_id IS NULL")
    elif f.unassigned is False:
        conditions.append("c.assignee_staff_id IS NOT NULL")
    if f.unread is not None:
        conditions.append(f"c.unread = {arg(f.unread)}")
    if f.topic is not None:
        # Only the topics a conversation shows count (the newest ones).
        conditions.append(f"{arg(f.topic)}::text = ANY(c.topics[1:{TOPICS_SHOWN}])")
    if f.search:
        p = arg(contains_pattern(f.search))
        fields = ["c.customer_name", "c.customer_email", "c.last_message_preview"]
        if f.search_subject:
            fields.append("c.subject")
        matches = [rf"{field} ILIKE {p} ESCAPE '\'" for field in fields]
        matches.append(
            rf"""EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.conversation_id
                        AND m.text ILIKE {p} ESCAPE '\')"""
        )
        conditions.append("(" + " OR ".join(matches) + ")")
    return conditions, args


async def list_conversations(
    pool: asyncpg.Pool, shop_id: str, f: ConversationFilter, limit: int, offset: int
) -> list[asyncpg.Record]:
    """A page of the shop's conversations, newest activity first."""
    conditions, args = _conversation_conditions(f)
    where = " AND ".join(["c.shop_id = $1", *conditions])
    n = len(args) + 1
    return await pool.fetch(
        f"""SELECT {_ROW_COLUMNS} FROM conversations c {_ROW_JOINS}
            WHERE {where}
            ORDER BY c.last_message_at DESC NULLS LAST, c.created_at DESC, c.conversation_id
            LIMIT ${n + 1} OFFSET ${n + 2}""",
        shop_id, *args, limit, offset,
    )


async def conversation(
    pool: asyncpg.Pool, shop_id: str, conversation_id: uuid.UUID
) -> asyncpg.Record | None:
    return await pool.fetchrow(
        f"""SELECT {_ROW_COLUMNS} FROM conversations c {_ROW_JOINS}
            WHERE c.shop_id = $1 AND c.conversation_id = $2""",
        shop_id, conversation_id,
    )


async def timeline(pool: asyncpg.Pool, conversation_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT t.item_id, t.seq, t.kind, t.author, t.staff_id, s.name AS staff_name,
                  t.message_id, t.text, t.data, t.at, m.delivery_status, m.delivery_reason
           FROM timeline_items t
           JOIN conversations c ON c.conversation_id = t.conversation_id
           LEFT JOIN messages m ON m.message_id = t.message_id
           LEFT JOIN staff s ON s.shop_id = c.shop_id AND s.staff_id = t.staff_id
           WHERE t.conversation_id = $1 ORDER BY t.seq""",
        conversation_id,
    )


# --- the customer: orders and notes ---------------------------------------------------------------

_CUSTOMER_ORDERS = """shop_id = $1
    AND (customer_id = $2 OR ($3::text IS NOT NULL AND lower(customer_email) = lower($3)))"""


async def order_count(
    pool: asyncpg.Pool, shop_id: str, customer_id: str | None, email: str | None
) -> int:
    if not customer_id and not email:
        return 0
    return await pool.fetchval(
        f"SELECT count(*) FROM orders WHERE {_CUSTOMER_ORDERS}", shop_id, customer_id, email
    )


async def recent_orders(
    pool: asyncpg.Pool, shop_id: str, customer_id: str | None, email: str | None, limit: int
) -> list[asyncpg.Record]:
    if not customer_id and not email:
        return []
    return await pool.fetch(
        f"""SELECT order_id, order_number, status, placed_at, total_price, currency,
                   updates_enabled
            FROM orders
            WHERE {_CUSTOMER_ORDERS}
            ORDER BY placed_at DESC, order_id LIMIT $4""",
        shop_id, customer_id, email, limit,
    )


async def order(pool: asyncpg.Pool, shop_id: str, order_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT order_id, order_number FROM orders WHERE shop_id = $1 AND order_id = $2",
        shop_id, order_id,
    )


async def customer_notes(
    pool: asyncpg.Pool, shop_id: str, customer_key: str
) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT n.note_id, n.text, n.staff_id, s.name AS staff_name, n.created_at
           FROM customer_notes n
           LEFT JOIN staff s ON s.shop_id = n.shop_id AND s.staff_id = n.staff_id
           WHERE n.shop_id = $1 AND n.customer_key = $2
           ORDER BY n.created_at DESC, n.note_id""",
        shop_id, customer_key,
    )


# --- catalog --------------------------------------------------------------------------------------

_PRODUCT_COLUMNS = "product_id, title, price, currency, url, image_url, online_store"


async def product(pool: asyncpg.Pool, shop_id: str, product_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE shop_id = $1 AND product_id = $2",
        shop_id, product_id,
    )


async def products(
    pool: asyncpg.Pool,
    shop_id: str,
    search: str | None,
    online_store: bool | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    return await pool.fetch(
        rf"""SELECT {_PRODUCT_COLUMNS} FROM products
             WHERE shop_id = $1
               AND ($2::boolean IS NULL OR online_store = $2)
               AND ($3::text IS NULL OR title ILIKE $3 ESCAPE '\' OR product_id = $4)
             ORDER BY lower(title), product_id LIMIT $5 OFFSET $6""",
        shop_id, online_store, contains_pattern(search) if search else None, search,
        limit, offset,
    )


_DISCOUNT_COLUMNS = "code, status, starts_at, ends_at, value_type, value"


async def discount(pool: asyncpg.Pool, shop_id: str, code: str) -> asyncpg.Record | None:
    """A discount code; codes are case-insensitive."""
    return await pool.fetchrow(
        f"""SELECT {_DISCOUNT_COLUMNS} FROM discount_codes
            WHERE shop_id = $1 AND upper(code) = upper($2)""",
        shop_id, code,
    )


async def discounts(pool: asyncpg.Pool, shop_id: str, search: str | None) -> list[asyncpg.Record]:
    return await pool.fetch(
        rf"""SELECT {_DISCOUNT_COLUMNS} FROM discount_codes
             WHERE shop_id = $1 AND ($2::text IS NULL OR code ILIKE $2 ESCAPE '\')
             ORDER BY upper(code)""",
        shop_id, contains_pattern(search) if search else None,
    )


# --- saved replies (written by the gateway: shop configuration) -----------------------------------

_SAVED_REPLY_COLUMNS = "reply_id, shortcut, body, created_by, created_at, updated_at"


async def saved_replies(
    pool: asyncpg.Pool, shop_id: str, search: str | None
) -> list[asyncpg.Record]:
    return await pool.fetch(
        rf"""SELECT {_SAVED_REPLY_COLUMNS} FROM saved_replies
             WHERE shop_id = $1
               AND ($2::text IS NULL OR shortcut ILIKE $2 ESCAPE '\' OR body ILIKE $2 ESCAPE '\')
             ORDER BY lower(shortcut)""",
        shop_id, contains_pattern(search) if search else None,
    )


async def saved_reply(
    pool: asyncpg.Pool, shop_id: str, reply_id: uuid.UUID
) -> asyncpg.Record | None:
    return await pool.fetchrow(
        f"SELECT {_SAVED_REPLY_COLUMNS} FROM saved_replies WHERE shop_id = $1 AND reply_id = $2",
        shop_id, reply_id,
    )


async def insert_saved_reply(
    pool: asyncpg.Pool, shop_id: str, shortcut: str, body: str, staff_id: str
) -> asyncpg.Record:
    """Raises asyncpg.UniqueViolationError when the shop already has this shortcut."""
    return await pool.fetchrow(
        f"""INSERT INTO saved_replies (reply_id, shop_id, shortcut, body, created_by)
            VALUES ($1, $2, $3, $4, $5) RETURNING {_SAVED_REPLY_COLUMNS}""",
        uuid.uuid4(), shop_id, shortcut, body, staff_id,
    )


async def update_saved_reply(
    pool: asyncpg.Pool, shop_id: str, reply_id: uuid.UUID, shortcut: str, body: str
) -> asyncpg.Record | None:
    """None when the shop has no such saved reply; raises asyncpg.UniqueViolationError when
    another of its saved replies has this shortcut."""
    return await pool.fetchrow(
        f"""UPDATE saved_replies SET shortcut = $3, body = $4, updated_at = now()
            WHERE shop_id = $1 AND reply_id = $2 RETURNING {_SAVED_REPLY_COLUMNS}""",
        shop_id, reply_id, shortcut, body,
    )


async def delete_saved_reply(pool: asyncpg.Pool, shop_id: str, reply_id: uuid.UUID) -> bool:
    status = await pool.execute(
        "DELETE FROM saved_replies WHERE shop_id = $1 AND reply_id = $2", shop_id, reply_id
    )
    return status == "DELETE 1"
