"""Pickers for composing a reply: the shop's products and discount codes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from services.gateway import queries as q
from services.gateway.api.common import Staff, errors, pool, search_text
from shared.rules import DiscountFacts, RuleViolation, discount_link

router = APIRouter(tags=["catalog"])


class Product(BaseModel):
    product_id: str
    title: str
    price: str = Field(description="decimal string")
    currency: str
    url: str | None
    image_url: str | None
    online_store: bool = Field(description="on the Online Store sales channel: can be shared")


class ProductPage(BaseModel):
    items: list[Product]
    next_offset: int | None


class Discount(BaseModel):
    code: str
    status: Literal["active", "scheduled", "expired", "disabled"]
    starts_at: datetime | None
    ends_at: datetime | None
    value_type: Literal["percentage", "fixed_amount"] | None = Field(
        default=None, description="what the code takes off: a percentage or a fixed amount")
    value: str | None = Field(default=None, examples=["10.00"], description="decimal string")
    shareable: bool = Field(description="active now: can be sent in a conversation")
    url: str | None = Field(description="the link that applies the code (when shareable)")


class DiscountList(BaseModel):
    items: list[Discount]


@router.get(
    "/products",
    response_model=ProductPage,
    summary="Products to share (by default only those on the Online Store)",
    responses=errors(422),
)
async def list_products(
    request: Request,
    staff: Staff,
    search: Annotated[str | None, search_text("text in the title, or an id")],
    online_store: Annotated[
        bool | None,
        Query(description="true (default): only Online Store products; false: only the others"),
    ] = True,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ProductPage:
    rows = await q.products(pool(request), staff.shop_id, search, online_store, limit + 1, offset)
    return ProductPage(
        items=[Product(**{**dict(r), "price": str(r["price"])}) for r in rows[:limit]],
        next_offset=offset + limit if len(rows) > limit else None,
    )


@router.get(
    "/discounts",
    response_model=DiscountList,
    summary="Discount codes (status=active: those that can be shared now)",
    responses=errors(422),
)
async def list_discounts(
    request: Request,
    staff: Staff,
    search: Annotated[str | None, search_text("text in the code")],
    status: Annotated[
        Literal["active", "scheduled", "expired", "disabled"] | None,
        Query(description="`active`: shareable now; others: the code's recorded status"),
    ] = None,
) -> DiscountList:
    db = pool(request)
    shop = await q.shop(db, staff.shop_id)
    domain = shop["domain"] if shop else ""
    storefront_url = shop["storefront_url"] if shop else None
    now = datetime.now(UTC)
    items = []
    for row in await q.discounts(db, staff.shop_id, search):
        try:
            facts = DiscountFacts(**dict(row))
            url: str | None = discount_link(facts, row["code"], domain, now, storefront_url)["url"]
        except RuleViolation:
            url = None
        shareable = url is not None
        if status == "active" and not shareable:
            continue
        if status not in (None, "active") and row["status"] != status:
            continue
        value = None if row["value"] is None else str(row["value"])
        items.append(Discount(**{**dict(row), "value": value}, shareable=shareable, url=url))
    return DiscountList(items=items)
