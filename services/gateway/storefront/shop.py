"""The shop as the widget and the demo storefront see it, and what a visitor does there:
presence signals on `storefront.activity`, cart changes on `storefront.cart`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, StringConstraints

from services.gateway import queries as q
from services.gateway.api.common import pool, validated
from services.gateway.storefront.common import (
    API,
    MAX_MESSAGE_CHARS,
    VisitorSignalIn,
    publish,
    settings,
    shop,
    visitor_signal,
)
from shared.contracts import ActivityEvent, CartEvent
from shared.contracts.ingress import Cart
from shared.topics import STOREFRONT_ACTIVITY, STOREFRONT_CART

#: The most products the demo storefront's shelf shows.
SHELF_SIZE = 100

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


@router.get(API + "/shops/{shop_id}", response_model=ShopInfo)
async def shop_info(request: Request, shop_id: str) -> ShopInfo:
    row = await shop(request, shop_id)
    timeout = settings(request).presence_timeout_seconds
    return ShopInfo(
        shop_id=row["shop_id"], name=row["name"], domain=row["domain"],
        currency=row["currency"], heartbeat_seconds=round(min(18.0, max(1.0, timeout * 0.3)), 1),
        max_message_chars=MAX_MESSAGE_CHARS,
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


class CartIn(VisitorSignalIn):
    action: Literal["add", "remove"]
    product_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1
    cart: Cart


@router.post(API + "/shops/{shop_id}/cart", status_code=202)
async def cart(request: Request, shop_id: str) -> dict[str, str]:
    """A product added to or removed from the cart; the product is the shop's own record."""
    body = await visitor_signal(request, shop_id, "cart", CartIn)
    product = await q.product(pool(request), shop_id, body.product_id)
    if product is None or not product["online_store"]:
        raise HTTPException(422, f"product {body.product_id!r} is not sold in this store")
    event = validated(
        CartEvent, event_id=str(uuid.uuid4()), shop_id=shop_id, visitor_id=body.visitor_id,
        action=body.action, quantity=body.quantity, cart=body.cart, at=datetime.now(UTC),
        product={"id": product["product_id"], "title": product["title"],
                 "price": str(product["price"])},
    )
    await publish(request, STOREFRONT_CART, event)
    return {"status": "accepted"}
