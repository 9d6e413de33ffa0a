"""Shopify's mandatory compliance webhooks: `POST /webhooks/shopify/compliance`.

The raw body must carry `X-Shopify-Hmac-Sha256`: the base64 HMAC-SHA256 of the body with the
app's secret (`SHOPIFY_API_SECRET`), compared in constant time; otherwise 401 and nothing
happens. `X-Shopify-Topic` names what is asked (`customers/data_request`, `customers/redact`,
`shop/redact`) and the body is read as Shopify's payload of that topic (400 otherwise).

The request is queued on `privacy.requests` before the 200 (503 if the broker is away: Shopify
delivers again) and is handled once even when delivered again: its id is Shopify's
`X-Shopify-Webhook-Id`. What is done, and when, is in the merchant API's privacy requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import ValidationError

from shared.contracts import PrivacyCustomer, PrivacyRequest
from shared.contracts.base import error_sentence
from shared.contracts.privacy import (
    COMPLIANCE_TOPICS,
    CustomersDataRequest,
    CustomersRedact,
)
from shared.kafka.producer import MessageTooLarge
from shared.topics import PRIVACY_REQUESTS

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

COMPLIANCE_PATH = "/webhooks/shopify/compliance"
HMAC_HEADER = "X-Shopify-Hmac-Sha256"

COMPLIANCE_WEBHOOKS = Counter(
    "gateway_shopify_compliance_webhooks_total",
    "Shopify compliance webhook requests by topic (customers/data_request, customers/redact, "
    "shop/redact, other) and outcome (accepted, unauthorized, invalid, unavailable).",
    ["topic", "outcome"],
)


def hmac_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is the base64 HMAC-SHA256 of `body` with `secret` (never with none)."""
    if not secret or not header:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, header.strip().encode(errors="replace"))


def privacy_request(topic: str, body: bytes, webhook_id: str | None) -> PrivacyRequest:
    """The queued request of a compliance webhook; raises ValueError/ValidationError when the
    body is not Shopify's payload of that topic."""
    shape, kind = COMPLIANCE_TOPICS[topic]
    payload = shape.model_validate_json(body)
    # Shopify's id of the webhook names a delivery and its retries; without it, the body does.
    request_id = f"shopify:{webhook_id or hashlib.sha256(topic.encode() + body).hexdigest()}"
    customer = None
    order_ids: list[int] = []
    data_request_id = None
    if isinstance(payload, CustomersDataRequest | CustomersRedact):
        c = payload.customer
        customer = PrivacyCustomer(customer_id=str(c.id) if c.id is not None else None,
                                   email=c.email, phone=c.phone)
    if isinstance(payload, CustomersDataRequest):
        order_ids = payload.orders_requested
        data_request_id = str(payload.data_request.id)
    elif isinstance(payload, CustomersRedact):
        order_ids = payload.orders_to_redact
    return PrivacyRequest(
        event_id=request_id, request_id=request_id, kind=kind, source="shopify",
        shop_domain=payload.shop_domain, customer=customer,
        order_ids=[str(o) for o in order_ids], data_request_id=data_request_id,
        at=datetime.now(UTC),
    )


def _answer(topic: str, outcome: str, status: int, detail: str) -> JSONResponse:
    COMPLIANCE_WEBHOOKS.labels(topic if topic in COMPLIANCE_TOPICS else "other", outcome).inc()
    return JSONResponse({"detail": detail}, status)


@router.post(COMPLIANCE_PATH)
async def receive_compliance(request: Request) -> JSONResponse:
    service = request.app.state.service
    body = await request.body()  # its size, encoding and depth passed the request guard
    topic = request.headers.get("X-Shopify-Topic", "")
    if not hmac_valid(service.settings.shopify.api_secret.get_secret_value(), body,
                      request.headers.get(HMAC_HEADER)):
        return _answer(topic, "unauthorized", 401, f"invalid or missing {HMAC_HEADER}")
    if topic not in COMPLIANCE_TOPICS:
        return _answer(topic, "invalid", 400, "X-Shopify-Topic must be one of "
                       + ", ".join(COMPLIANCE_TOPICS))
    try:
        event = privacy_request(topic, body, request.headers.get("X-Shopify-Webhook-Id"))
    except ValidationError as exc:
        return _answer(topic, "invalid", 400, f"not a {topic} payload: "
                       + error_sentence(exc.errors(), limit=3))
    try:
        await service.producer.send_and_wait(PRIVACY_REQUESTS, event)
    except (KafkaError, MessageTooLarge) as exc:
        log.warning("compliance webhook not queued (%s): Shopify will deliver it again", exc)
        return _answer(topic, "unavailable", 503, "could not queue the request; deliver again")
    return _answer(topic, "accepted", 200, "queued")
