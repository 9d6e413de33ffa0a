"""The merchant-facing rules of a conversation: plain functions, no I/O.

Both the gateway (to answer a bad request with a clear 4xx) and the router (the system of
record, which also receives commands straight from Kafka) apply them, from this one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

from shared.channels import CHANNELS

CHAT_PERMISSION = "online_store_chat"
MESSAGING_PERMISSION = "messaging"
#: Reading customers' data exports and asking for a customer's erasure.
PRIVACY_PERMISSION = "customer_privacy"
#: A product name is shown in a cart event only when shorter than this many characters.
CART_TITLE_LIMIT = 41
#: A conversation shows at most this many topics, newest first.
TOPICS_SHOWN = 2
#: The topics the classifier tags customer messages with, and their names for merchants.
MESSAGE_TOPICS: dict[str, str] = {
    "checkout": "Checkout",
    "order_editing": "Order editing",
    "order_status": "Order status",
    "pricing_discounts": "Pricing/Discounts",
    "product_details": "Product details",
    "product_interest": "Interest in a specific product",
    "returns": "Returns/delivered orders",
    "shipping": "Shipping",
    "store_info": "Store info",
    "wholesale": "Wholesale",
}


class RuleViolation(ValueError):
    """A request the rules refuse; the message is meant for the merchant."""


# --- what the merchant can send ------------------------------------------------------------------


@dataclass(frozen=True)
class ProductFacts:
    product_id: str
    title: str
    price: Decimal | str
    currency: str
    url: str | None
    image_url: str | None
    online_store: bool


def product_link(product: ProductFacts | None, product_id: str) -> dict[str, Any]:
    """The product card to send; only products available on the Online Store sales channel."""
    if product is None:
        raise RuleViolation(f"product {product_id!r} does not exist in this shop")
    if not product.online_store:
        raise RuleViolation(
            f"product {product.title!r} is not available on the Online Store sales channel, "
            "so it cannot be shared in a conversation"
        )
    return {
        "product_id": product.product_id,
        "title": product.title,
        "price": str(product.price),
        "currency": product.currency,
        "url": product.url,
        "image_url": product.image_url,
    }


@dataclass(frozen=True)
class DiscountFacts:
    code: str
    status: str
    starts_at: datetime | None
    ends_at: datetime | None
    #: "percentage" or "fixed_amount"; None when the shop did not say what the code is worth.
    value_type: str | None = None
    value: Decimal | None = None


def discount_is_active(discount: DiscountFacts, now: datetime) -> bool:
    return (
        discount.status == "active"
        and (discount.starts_at is None or discount.starts_at <= now)
        and (discount.ends_at is None or now < discount.ends_at)
    )


def storefront_address(shop_domain: str, storefront_url: str | None = None) -> str:
    """Where the shop's Online Store is: its own address when it has one (a development
    storefront), else its domain over HTTPS."""
    return (storefront_url or f"https://{shop_domain}").rstrip("/")


def discount_link(
    discount: DiscountFacts | None, code: str, shop_domain: str, now: datetime,
    storefront_url: str | None = None,
) -> dict[str, Any]:
    """The shareable discount link; only for codes that exist and are active now."""
    if discount is None:
        raise RuleViolation(f"discount code {code!r} does not exist in this shop")
    if not discount_is_active(discount, now):
        state = discount.status if discount.status != "active" else "not active now"
        raise RuleViolation(f"discount code {discount.code!r} is {state} and cannot be shared")
    store = storefront_address(shop_domain, storefront_url)
    return {
        "code": discount.code,
        # Shopify's shareable form: opening it applies the code to the customer's cart.
        "url": f"{store}/discount/{quote(discount.code, safe='')}",
    }


def discount_amount(value_type: str | None, value: Decimal | None, subtotal: Decimal) -> Decimal:
    """What a discount takes off a cart's subtotal: a percentage (to the cent, half up) or a
    fixed amount, never more than the subtotal; nothing for a code of unknown value."""
    if value_type is None or value is None or subtotal <= 0:
        return Decimal("0.00")
    if value_type == "percentage":
        off = (subtotal * value / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    elif value_type == "fixed_amount":
        off = value
    else:
        raise ValueError(f"unknown discount value type {value_type!r}")
    return min(off, subtotal).quantize(Decimal("0.01"))


def customer_attachments(
    channel: str, attachments: Sequence[Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Split a customer's attachments into (kept, refused): on channels where customers may not
    send images (online store chat), images are refused; the rest of the message is kept."""
    allows_images = CHANNELS[channel].customer_images
    kept = [a for a in attachments if allows_images or a.get("type") != "image"]
    refused = [a for a in attachments if not allows_images and a.get("type") == "image"]
    return kept, refused


IMAGE_REFUSED = "Images can't be sent in this chat. Your message was received without the image."


# --- commerce context ----------------------------------------------------------------------------


def cart_event_text(action: str, title: str) -> str:
    """The timeline text of a cart change; the product name only when shorter than 41 chars."""
    verb = "added" if action == "add" else "removed"
    preposition = "to" if action == "add" else "from"
    if len(title) < CART_TITLE_LIMIT:
        return f"{verb} {title} {preposition} the cart"
    return f"{verb} a product {preposition} the cart"


def discount_applied_text(code: str) -> str:
    """The timeline text of a discount code applied to the cart (from a shared link)."""
    return f"applied the discount code {code} to the cart"


def cart_header(
    currency: str, subtotal: Decimal | str, items: Iterable[Mapping[str, Any]],
    discount: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The conversation header's cart: subtotal (less its discount), per-item quantities and
    the discount code applied; None when empty."""
    lines = [
        {"product_id": i["product_id"], "title": i["title"], "quantity": int(i["quantity"])}
        for i in items
        if int(i["quantity"]) > 0
    ]
    if not lines:
        return None
    header: dict[str, Any] = {"currency": currency, "subtotal": str(subtotal), "items": lines}
    if discount:
        header["discount"] = {"code": discount["code"], "amount": str(discount["amount"])}
    return header


def customer_kind(order_count: int) -> str:
    """New until the customer has placed an order; returning after."""
    return "returning" if order_count > 0 else "new"


def customer_key(customer_id: str | None, email: str | None, conversation_id: str) -> str:
    """Whose notes these are: the platform's customer id, else the email, else the thread."""
    if customer_id:
        return f"id:{customer_id}"
    if email:
        return f"email:{email.strip().lower()}"
    return f"conversation:{conversation_id}"


def shown_topics(topics: Sequence[str]) -> list[str]:
    """Topics are stored newest first; a conversation shows at most two."""
    return list(topics[:TOPICS_SHOWN])


def add_topic(topics: Sequence[str], topic: str) -> list[str]:
    """A new tag goes first; a repeated topic moves to the front; at most two are kept."""
    return [topic, *(t for t in topics if t != topic)][:TOPICS_SHOWN]


# --- presence and the email fallback ----------------------------------------------------------

@dataclass(frozen=True)
class ReplyPath:
    """Where a reply goes: `channel` it travels on, or held (channel None) with the reason."""

    channel: str | None
    held_reason: str | None = None

    @property
    def email_fallback(self) -> bool:
        return self.channel == "email"


NO_EMAIL_HELD = "Waiting for the customer to come back: they left the store and gave no email."


def customer_is_online(
    customer_online: bool | None,
    last_customer_message_at: datetime | None,
    now: datetime,
    presence_timeout: timedelta,
) -> bool:
    """Presence decides; with no presence signal ever seen, a customer who wrote within the
    presence timeout counts as there."""
    if customer_online is not None:
        return customer_online
    return last_customer_message_at is not None and (
        now - last_customer_message_at < presence_timeout
    )


def reply_path(channel: str, online: bool, email: str | None) -> ReplyPath:
    """A reply leaves on the channel the customer wrote from. The exception: online store chat
    when the customer has left the store goes by email, or waits for them without an email."""
    if channel != "online_store_chat" or online:
        return ReplyPath(channel)
    if email:
        return ReplyPath("email")
    return ReplyPath(None, NO_EMAIL_HELD)


# --- staff ---------------------------------------------------------------------------------------


def assignable(permissions: Iterable[str], active: bool = True) -> bool:
    return active and CHAT_PERMISSION in set(permissions)


def check_assignable(name: str, permissions: Iterable[str], active: bool = True) -> None:
    if not active:
        raise RuleViolation(f"{name} is not an active staff member")
    if not assignable(permissions):
        raise RuleViolation(
            f"{name} does not have the online store chat permission and cannot be assigned"
        )


def may_see_subject(permissions: Iterable[str]) -> bool:
    return MESSAGING_PERMISSION in set(permissions)


# --- saved replies -------------------------------------------------------------------------------

PLACEHOLDERS = ("customer_first_name", "customer_name", "order_number", "shop_name", "staff_name")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def unknown_placeholders(body: str) -> list[str]:
    return sorted({m for m in _PLACEHOLDER.findall(body) if m not in PLACEHOLDERS})


def expand_placeholders(body: str, values: Mapping[str, str | None]) -> str:
    """Fill `{{ placeholder }}`s; one without a value becomes empty, never the raw braces."""

    def fill(match: re.Match[str]) -> str:
        return values.get(match.group(1)) or ""

    expanded = _PLACEHOLDER.sub(fill, body)
    return re.sub(r"[ \t]{2,}", " ", expanded).replace(" ,", ",").replace(" !", "!").strip()


# --- automated replies ---------------------------------------------------------------------------

#: An instant answer stays quiet while staff are answering: they wrote within this long.
STAFF_ANSWERING = timedelta(minutes=10)


def staff_wrote_recently(last_staff_message_at: datetime | None, now: datetime) -> bool:
    return last_staff_message_at is not None and now - last_staff_message_at < STAFF_ANSWERING


def placeholder_values(
    customer_name: str | None, order_number: str | None, shop_name: str | None,
    staff_name: str | None,
) -> dict[str, str | None]:
    """What each placeholder stands for in one conversation (an automated reply has no staff
    name: its placeholder becomes empty)."""
    return {
        "customer_first_name": first_name(customer_name),
        "customer_name": customer_name,
        "order_number": order_number,
        "shop_name": shop_name,
        "staff_name": staff_name,
    }


def first_name(full_name: str | None) -> str | None:
    return full_name.split()[0] if full_name and full_name.split() else None


# --- orders --------------------------------------------------------------------------------------

_ORDER_STATUS = {
    "created": "placed",
    "fulfilled": "fulfilled",
    "shipped": "shipped",
    "delivery_update": "in_transit",
    "delivered": "delivered",
    "cancelled": "cancelled",
}


def order_status(event_type: str) -> str:
    """The status a merchant sees for an order after this life-cycle event."""
    return _ORDER_STATUS[event_type]


# --- blocking -------------------------------------------------------------------------------------


def customer_identities(
    channel: str, thread_ref: str | None, visitor_id: str | None, email: str | None
) -> list[str]:
    """How a customer is recognised in a shop, for blocking: the thread on its channel (a
    Messenger person, an email thread), the store visitor, the email address."""
    found = []
    if thread_ref and not thread_ref.startswith("redacted:"):
        found.append(f"thread:{channel}:{thread_ref}")
    if visitor_id:
        found.append(f"visitor:{visitor_id}")
    if email and email.strip():
        found.append(f"email:{email.strip().lower()}")
    return found
