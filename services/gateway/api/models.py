"""Response models of the conversation endpoints, and how database rows become them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from pydantic import BaseModel, Field

from shared.rules import (
    cart_header,
    customer_is_online,
    customer_kind,
    reply_path,
    shown_topics,
)


class Customer(BaseModel):
    name: str | None
    email: str | None
    redacted: bool = Field(False, description="the customer's data was erased (a privacy "
                           "request): the conversation keeps only its shell")


class Assignee(BaseModel):
    staff_id: str
    name: str | None = Field(description="null when the staff member is unknown to the shop")


class CartLine(BaseModel):
    product_id: str
    title: str
    quantity: int


class CartDiscount(BaseModel):
    code: str = Field(examples=["WELCOME10"])
    amount: str = Field(examples=["21.80"], description="what it takes off (decimal string)")


class CartHeader(BaseModel):
    """The customer's active cart: subtotal, the quantity of each item, the discount code
    applied."""

    currency: str
    subtotal: str = Field(examples=["196.20"], description="decimal string, less the discount")
    items: list[CartLine]
    discount: CartDiscount | None = Field(
        default=None, description="the discount code the customer applied to the cart")


class ReplyDestination(BaseModel):
    channel: str | None = Field(description="null: the reply waits for the customer's return")
    email: str | None = Field(description="the address, when the reply goes by email")
    waiting_reason: str | None = None


class ConversationRow(BaseModel):
    conversation_id: uuid.UUID
    channel: str = Field(examples=["online_store_chat"])
    status: Literal["open", "closed"]
    customer: Customer
    online: bool = Field(description="the customer is active in the store right now")
    replies_go_to: ReplyDestination = Field(
        description="where a reply written now goes: the conversation's channel, or, for an "
        "online store chat whose customer left, their email (or nowhere yet: it waits)"
    )
    topics: list[str] = Field(description="at most two, newest first")
    unread: bool
    assignee: Assignee | None
    last_message_at: datetime | None
    last_message_preview: str | None
    cart: CartHeader | None = Field(description="null when the customer has no active cart")
    blocked: bool = Field(False, description="the customer is blocked: on this channel they "
                          "can open or continue no conversation in the shop")
    blocked_reason: str | None = None


class ConversationPage(BaseModel):
    items: list[ConversationRow]
    next_offset: int | None = Field(description="offset of the next page; null on the last")


class TimelineEntry(BaseModel):
    item_id: uuid.UUID
    seq: int
    kind: str = Field(examples=["customer_message", "merchant_reply", "cart_event"])
    author: Literal["customer", "staff", "system"]
    staff_id: str | None
    staff_name: str | None
    message_id: uuid.UUID | None
    text: str | None
    data: dict[str, Any]
    at: datetime
    delivery_status: Literal["pending", "held", "sent", "failed"] | None = Field(
        description="for merchant replies: where the delivery stands"
    )
    delivery_reason: str | None = Field(description="why a delivery failed or is held")


class Location(BaseModel):
    city: str | None
    country: str | None


class Order(BaseModel):
    order_id: str
    order_number: str
    status: str = Field(examples=["placed", "shipped", "in_transit", "delivered"])
    placed_at: datetime
    total_price: str | None = Field(description="decimal string")
    currency: str | None
    updates_enabled: bool = Field(
        description="order updates (e.g. on Messenger) are still sent for this order"
    )


class Note(BaseModel):
    note_id: uuid.UUID
    text: str
    staff_id: str
    staff_name: str | None
    created_at: datetime


class CustomerProfile(Customer):
    customer_id: str | None
    kind: Literal["new", "returning"] = Field(description="returning once an order was placed")
    location: Location
    timezone: str | None
    local_time: datetime | None = Field(description="now, in the customer's time zone")
    locale: str | None
    recent_orders: list[Order] = Field(description="up to five, newest first")
    notes: list[Note] = Field(description="staff notes on this customer, newest first")


class ConversationDetail(ConversationRow):
    customer: CustomerProfile  # type: ignore[assignment]
    thread_ref: str
    created_at: datetime
    subject: str | None = Field(
        description="null unless the caller has the messaging permission"
    )
    timeline: list[TimelineEntry] = Field(description="every item, in order (by seq)")


# --- from rows ------------------------------------------------------------------------------------


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _cart(row: asyncpg.Record) -> CartHeader | None:
    if row["cart_currency"] is None:
        return None
    header = cart_header(row["cart_currency"], row["cart_subtotal"], row["cart_items"] or [],
                         row["cart_discount"])
    return CartHeader(**header) if header else None


def row_fields(row: asyncpg.Record, presence_timeout: timedelta) -> dict[str, Any]:
    """The list row of a conversation. Online and the reply's destination come from the same
    rules and data the router routes a reply with, so what the merchant sees is what happens."""
    online = customer_is_online(row["customer_online"], row["last_customer_message_at"],
                                datetime.now(UTC), presence_timeout)
    path = reply_path(row["channel"], online, row["customer_email"])
    destination = ReplyDestination(
        channel=path.channel,
        email=row["customer_email"] if path.email_fallback else None,
        waiting_reason=path.held_reason,
    )
    assignee = None
    if row["assignee_staff_id"]:
        assignee = Assignee(staff_id=row["assignee_staff_id"], name=row["assignee_name"])
    return {
        "conversation_id": row["conversation_id"],
        "channel": row["channel"],
        "status": row["status"],
        "customer": Customer(name=row["customer_name"], email=row["customer_email"],
                             redacted=row["redacted_at"] is not None),
        "online": online,
        "replies_go_to": destination,
        "topics": shown_topics(row["topics"] or []),
        "unread": row["unread"],
        "assignee": assignee,
        "last_message_at": row["last_message_at"],
        "last_message_preview": row["last_message_preview"],
        "cart": _cart(row),
        "blocked": row["blocked_at"] is not None,
        "blocked_reason": row["blocked_reason"],
    }


def conversation_row(row: asyncpg.Record, presence_timeout: timedelta) -> ConversationRow:
    return ConversationRow(**row_fields(row, presence_timeout))


def _local_time(timezone: str | None) -> datetime | None:
    if not timezone:
        return None
    try:
        return datetime.now(UTC).astimezone(ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def customer_profile(
    row: asyncpg.Record,
    order_count: int,
    orders: list[asyncpg.Record],
    notes: list[asyncpg.Record],
) -> CustomerProfile:
    return CustomerProfile(
        name=row["customer_name"],
        email=row["customer_email"],
        redacted=row["redacted_at"] is not None,
        customer_id=row["customer_id"],
        kind=customer_kind(order_count),  # type: ignore[arg-type]
        location=Location(city=row["customer_city"], country=row["customer_country"]),
        timezone=row["customer_timezone"],
        local_time=_local_time(row["customer_timezone"]),
        locale=row["customer_locale"],
        recent_orders=[
            Order(
                order_id=o["order_id"],
                order_number=o["order_number"],
                status=o["status"],
                placed_at=o["placed_at"],
                total_price=_money(o["total_price"]),
                currency=o["currency"],
                updates_enabled=o["updates_enabled"],
            )
            for o in orders
        ],
        notes=[Note(**dict(n)) for n in notes],
    )
