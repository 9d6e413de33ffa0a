"""The shop as the widget and the demo storefront see it, and what a visitor does there:
presence signals on `storefront.activity`, cart changes (a product added or removed, a discount
code applied) on `storefront.cart`."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, StringConstraints, field_serializer, model_validator

from services.gateway import queries as q
from services.gateway.api.common import pool, validated
from services.gateway.storefront.common import (
    API,
    MAX_MESSAGE_CHARS,
    VisitorSignalIn,
    client_address,
    publish,
    rate_limit,
    settings,
    shop,
    visitor_signal,
)
from services.gateway.storefront.hours import availability
from shared.contracts import ActivityEvent, CartEvent
from shared.contracts.ingress import Cart
from shared.rules import DiscountFacts, discount_amount, discount_is_active
from shared.topics import STOREFRONT_ACTIVITY, STOREFRONT_CART

#: The most products the demo storefront's shelf shows.
SHELF_SIZE = 100
#: A discount code in a storefront's address (`/discount/{CODE}`): letters and digits of any
#: script, inner spaces and the marks shops use in codes; no slashes, quotes, angle brackets or
#: control characters.
DISCOUNT_CODE_PATTERN = r"^[\w\-.!$%&*+@#=~][\w\-.!$%&*+@#=~ ]{0,254}$"
DiscountCodeIn = Annotated[str, StringConstraints(pattern=DISCOUNT_CODE_PATTERN)]

router = APIRouter(include_in_schema=False)


class ShopInfo(BaseModel):
    shop_id: str
    name: str
    domain: str
    currency: str
    #: How often the widget signals that the customer is still there (under the presence
    #: timeout, so an open page never looks gone).
    heartbeat_seconds: float
    max_message_chars: int
    #: Whether the shop's chat is staffed now (its chat hours; always without any).
    available: bool
    #: When it is staffed next, in the shop's time zone with its UTC offset; null while
    #: available, and when the shop set hours with no opening at all.
    next_available_at: datetime | None
    #: The shop's IANA time zone (its chat hours are kept in it).
    time_zone: str

    @field_serializer("next_available_at")
    def _with_shops_offset(self, value: datetime | None) -> str | None:
        # isoformat keeps the offset as "+00:00" where the default would write "Z".
        return None if value is None else value.isoformat()


@router.get(API + "/shops/{shop_id}", response_model=ShopInfo)
async def shop_info(request: Request, shop_id: str) -> ShopInfo:
    row = await shop(request, shop_id)
    timeout = settings(request).presence_timeout_seconds
    staffed = await availability(pool(request), shop_id, row["timezone"])
    return ShopInfo(
        shop_id=row["shop_id"], name=row["name"], domain=row["domain"],
        currency=row["currency"], heartbeat_seconds=round(min(18.0, max(1.0, timeout * 0.3)), 1),
        max_message_chars=MAX_MESSAGE_CHARS, available=staffed.available,
        next_available_at=staffed.next_available_at, time_zone=staffed.time_zone,
    )


class StoreProduct(BaseModel):
    product_id: str
    title: str
    price: str
    currency: str
    url: str | None
    image_url: str | None


@router.get(API + "/shops/{shop_id}/products")
async def shop_products(request: Request, shop_id: str) -> dict[str, list[StoreProduct]]:
    """What the shop sells on its Online Store (the demo storefront's shelf)."""
    await shop(request, shop_id)
    rows = await q.products(pool(request), shop_id, None, True, SHELF_SIZE, 0)
    return {"items": [StoreProduct(**{**dict(r), "price": str(r["price"])}) for r in rows]}


class ActivityIn(VisitorSignalIn):
    type: Literal["heartbeat", "page_view", "left"]


@router.post(API + "/shops/{shop_id}/activity", status_code=202)
async def activity(request: Request, shop_id: str) -> dict[str, str]:
    """A presence signal: the page was opened, is still open, or was left."""
    body = await visitor_signal(request, shop_id, "activity", ActivityIn)
    event = ActivityEvent(event_id=str(uuid.uuid4()), shop_id=shop_id,
                          visitor_id=body.visitor_id, type=body.type, at=datetime.now(UTC))
    await publish(request, STOREFRONT_ACTIVITY, event)
    return {"status": "accepted"}


class StoreDiscount(BaseModel):
    code: str
    value_type: Literal["percentage", "fixed_amount"] | None
    value: str | None
    currency: str


async def _active_discount(request: Request, shop_id: str, code: str) -> DiscountFacts:
    """The shop's active discount code `code` (any letter case); else a 404 or 422 that says
    why, in words for the customer."""
    row = await q.discount(pool(request), shop_id, code)
    if row is None:
        raise HTTPException(404, f"there is no discount code {code} in this store")
    facts = DiscountFacts(**dict(row))
    if not discount_is_active(facts, datetime.now(UTC)):
        state = {"expired": "has expired", "scheduled": "is not valid yet"}.get(
            facts.status, "cannot be used now")
        raise HTTPException(422, f"the discount code {facts.code} {state}")
    return facts


@router.get(API + "/shops/{shop_id}/discounts/{code}", response_model=StoreDiscount)
async def shop_discount(request: Request, shop_id: str, code: str) -> StoreDiscount:
    """A discount code the customer may apply to their cart (from a shared discount link)."""
    row = await shop(request, shop_id)
    rate_limit(request, "read", f"{shop_id}:{client_address(request)}")
    if len(code) > 255 or not re.fullmatch(DISCOUNT_CODE_PATTERN, code):
        raise HTTPException(404, "there is no such discount code in this store")
    facts = await _active_discount(request, shop_id, code)
    return StoreDiscount(code=facts.code, value_type=facts.value_type,  # type: ignore[arg-type]
                         value=None if facts.value is None else str(facts.value),
                         currency=row["currency"])


class CartIn(VisitorSignalIn):
    action: Literal["add", "remove", "apply_discount"]
    #: The product added or removed (none when a discount code was applied).
    product_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1
    cart: Cart

    @model_validator(mode="after")
    def _what_changed(self) -> Self:
        if self.action == "apply_discount":
            if self.cart.discount is None:
                raise ValueError("cart.discount: the discount code applied is missing")
            if self.product_id is not None:
                raise ValueError("product_id: an applied discount code names no product")
        elif self.product_id is None:
            raise ValueError(f"product_id: a cart {self.action!r} names its product")
        return self


async def _shops_discount(request: Request, shop_id: str, cart: Cart) -> dict[str, Any]:
    """The cart with its discount as the shop's record says: the code's own spelling and what
    it takes off the items' subtotal (the cart's subtotal plus what the page took off). Given
    as fields, so that the event's contract checks the amounts again."""
    fields = cart.model_dump()
    if cart.discount is None:
        return fields
    facts = await _active_discount(request, shop_id, cart.discount.code)
    before = Decimal(cart.subtotal) + Decimal(cart.discount.amount)
    off = discount_amount(facts.value_type, facts.value, before)
    fields.update(subtotal=str(before - off), discount={"code": facts.code, "amount": str(off)})
    return fields


@router.post(API + "/shops/{shop_id}/cart", status_code=202)
async def cart(request: Request, shop_id: str) -> dict[str, str]:
    """A product added to or removed from the cart (the product is the shop's own record), or
    a discount code applied to it (an active code of the shop's; what it takes off is the
    shop's rule)."""
    body = await visitor_signal(request, shop_id, "cart", CartIn)
    product_fields = None
    if body.product_id is not None:
        product = await q.product(pool(request), shop_id, body.product_id)
        if product is None or not product["online_store"]:
            raise HTTPException(422, f"product {body.product_id!r} is not sold in this store")
        product_fields = {"id": product["product_id"], "title": product["title"],
                          "price": str(product["price"])}
    event = validated(
        CartEvent, event_id=str(uuid.uuid4()), shop_id=shop_id, visitor_id=body.visitor_id,
        action=body.action, quantity=body.quantity, at=datetime.now(UTC),
        cart=await _shops_discount(request, shop_id, body.cart), product=product_fields,
    )
    await publish(request, STOREFRONT_CART, event)
    return {"status": "accepted"}
