"""Privacy requests: Shopify's mandatory compliance webhooks as Shopify sends them, and the one
event every privacy request becomes on `privacy.requests` (whoever asked: Shopify or a staff
member through the merchant API)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.contracts.base import Email, Event, Id, ShopId, UtcTime

# --- Shopify's payloads (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance) --

Domain = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Phone = Annotated[str, StringConstraints(max_length=64)]


class _Shopify(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ShopifyCustomer(_Shopify):
    id: int | None = None
    email: Email | None = None
    phone: Phone | None = None

    @field_validator("email", "phone", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


class ShopifyDataRequest(_Shopify):
    id: int


class CustomersDataRequest(_Shopify):
    shop_id: int
    shop_domain: Domain
    orders_requested: list[int] = Field(default_factory=list, max_length=10_000)
    customer: ShopifyCustomer
    data_request: ShopifyDataRequest


class CustomersRedact(_Shopify):
    shop_id: int
    shop_domain: Domain
    customer: ShopifyCustomer
    orders_to_redact: list[int] = Field(default_factory=list, max_length=10_000)


class ShopRedact(_Shopify):
    shop_id: int
    shop_domain: Domain


# --- the event -------------------------------------------------------------------------------

PrivacyKind = Literal["customer_data_request", "customer_redact", "shop_redact"]


class PrivacyCustomer(BaseModel):
    """Whom a request is about: any of these identifies them (in that shop)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    customer_id: Id | None = None
    email: Email | None = None
    phone: Phone | None = None


class PrivacyRequest(Event):
    """A privacy request, queued before it is acknowledged and handled once (by `event_id`)."""

    request_id: Id
    kind: PrivacyKind
    source: Literal["shopify", "merchant"]
    #: The shop as the requester named it: Shopify names its domain, staff their shop id.
    shop_domain: Domain | None = None
    shop_id: ShopId | None = None
    customer: PrivacyCustomer | None = None
    #: Orders the request names (their Messenger identities are the customer's too).
    order_ids: list[Id] = Field(default_factory=list, max_length=10_000)
    #: Shopify's data request id: the export is found by it.
    data_request_id: Id | None = None
    requested_by_staff_id: Id | None = None
    at: UtcTime

    @property
    def key(self) -> str:
        return self.shop_id or self.shop_domain or self.request_id


#: Shopify's topic header -> the payload's shape and what it asks for.
COMPLIANCE_TOPICS: dict[str, tuple[type[_Shopify], PrivacyKind]] = {
    "customers/data_request": (CustomersDataRequest, "customer_data_request"),
    "customers/redact": (CustomersRedact, "customer_redact"),
    "shop/redact": (ShopRedact, "shop_redact"),
}
