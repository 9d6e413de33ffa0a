"""Shop data the rules need, published by the shop platform (one topic per entity).

Each record is a full upsert carrying `at`: a consumer keeps the newest and ignores older ones,
so redelivery and reordering across partitions are harmless.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import Field, HttpUrl, StringConstraints, model_validator

from shared.contracts.base import (
    Amount,
    Currency,
    DiscountCode,
    Event,
    Id,
    ShopId,
    ShortText,
    UtcTime,
)

Permission = Literal["online_store_chat", "messaging", "customer_privacy"]


class ShopUpserted(Event):
    shop_id: ShopId
    name: ShortText
    domain: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    currency: Currency
    timezone: Annotated[str, StringConstraints(max_length=64)] = "UTC"
    #: Where the shop's Online Store is, when not at `https://{domain}` (a development
    #: storefront): shared links (a discount's) point there.
    storefront_url: HttpUrl | None = None
    at: UtcTime

    @property
    def key(self) -> str:
        return self.shop_id


class StaffUpserted(Event):
    shop_id: ShopId
    staff_id: Id
    name: ShortText
    email: Annotated[str, StringConstraints(max_length=320)]
    permissions: list[Permission] = Field(default_factory=list, max_length=10)
    #: SHA-256 (hex) of the staff member's API token; the token itself never travels.
    token_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    #: The staff member's password as an argon2id hash (PHC string); none: no password sign-in.
    password_argon2id: Annotated[
        str, StringConstraints(pattern=r"^\$argon2id\$[A-Za-z0-9+/=$,.-]+$", max_length=512)
    ] | None = None
    active: bool = True
    at: UtcTime

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.staff_id}"


class ProductUpserted(Event):
    shop_id: ShopId
    product_id: Id
    title: ShortText
    price: Amount
    currency: Currency
    url: HttpUrl | None = None
    image_url: HttpUrl | None = None
    #: Published on the Online Store sales channel (only those can be shared in a conversation).
    online_store: bool
    at: UtcTime

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.product_id}"


class DiscountUpserted(Event):
    shop_id: ShopId
    code: DiscountCode
    status: Literal["active", "scheduled", "expired", "disabled"]
    starts_at: UtcTime | None = None
    ends_at: UtcTime | None = None
    #: What the code takes off a cart: a percentage of its subtotal, or a fixed amount in the
    #: shop's currency. Both or neither (a code of unknown value applies nothing).
    value_type: Literal["percentage", "fixed_amount"] | None = None
    value: Amount | None = None
    at: UtcTime

    @model_validator(mode="after")
    def _value(self) -> Self:
        if (self.value_type is None) != (self.value is None):
            raise ValueError("value_type and value come together")
        if self.value_type == "percentage" and Decimal(self.value or 0) > 100:
            raise ValueError("a percentage discount takes at most 100")
        return self

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.code}"
