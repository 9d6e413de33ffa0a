"""Privacy requests (`privacy.requests`): a customer's data exported or erased, a shop erased.

Each request is handled in one transaction with the claim of its event id, so a request
delivered again (Shopify retries a webhook) is handled once, and recorded with its state and
times, without the personal data it named. An unknown shop or customer is recorded as such and
nothing is erased.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter, Histogram

from services.router import privacy_queries as pq
from shared.contracts import PrivacyRequest
from shared.db.outbox import Outbox

REQUESTS = Counter(
    "router_privacy_requests_total",
    "Privacy requests handled, by kind (customer_data_request, customer_redact, shop_redact) "
    "and state (completed, no_shop, no_customer).",
    ["kind", "state"],
)
DELAY = Histogram(
    "router_privacy_request_delay_seconds",
    "From a privacy request's arrival (the webhook, the API call) to its completion.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


async def _shop_of(conn: asyncpg.Connection, request: PrivacyRequest) -> str | None:
    if request.shop_id:
        return request.shop_id if await pq.shop_exists(conn, request.shop_id) else None
    if request.shop_domain:
        return await pq.shop_by_domain(conn, request.shop_domain)
    return None


@dataclass
class Outcome:
    state: str
    shop_id: str | None = None
    conversations: int = 0
    #: A data request's export, with where the data was (kept with the export).
    export: tuple[pq.CustomerData, dict[str, Any]] | None = None


async def _handle(
    conn: asyncpg.Connection, outbox: Outbox, request: PrivacyRequest, now: datetime
) -> Outcome:
    """Does what the request asks."""
    shop_id = await _shop_of(conn, request)
    if shop_id is None:
        return Outcome("no_shop")
    if request.kind == "shop_redact":
        # The compacted shop-data topics forget the shop's records too.
        for topic, keys in (await pq.erase_shop(conn, shop_id)).items():
            await outbox.add_tombstones(conn, topic, keys)
        return Outcome("completed", shop_id)
    customer = request.customer
    data = await pq.find_customer(
        conn, shop_id, customer.customer_id if customer else None,
        customer.email if customer else None, request.order_ids,
    )
    if not data.found:
        return Outcome("no_customer", shop_id)
    touched = len(data.conversation_ids)
    if request.kind == "customer_data_request":
        export = await pq.export(conn, shop_id, data)
        export["request"] = {
            "request_id": request.request_id, "data_request_id": request.data_request_id,
            "shop_id": shop_id, "customer": customer.model_dump() if customer else None,
            "orders_requested": request.order_ids, "exported_at": now.isoformat(),
        }
        return Outcome("completed", shop_id, touched, (data, export))
    await pq.erase_customer(conn, shop_id, data, now)
    return Outcome("completed", shop_id, touched)


class Privacy:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def on_requests(self, conn: asyncpg.Connection, requests: list[PrivacyRequest]
                          ) -> None:
        for request in requests:
            await self._one(conn, request)

    async def _one(self, conn: asyncpg.Connection, request: PrivacyRequest) -> None:
        now = datetime.now(UTC)
        outcome = await _handle(conn, self.outbox, request, now)
        recorded = await pq.record_request(
            conn, request_id=request.request_id, kind=request.kind, source=request.source,
            shop_id=outcome.shop_id or request.shop_id, shop_domain=request.shop_domain,
            data_request_id=request.data_request_id, staff_id=request.requested_by_staff_id,
            state=outcome.state, conversations=outcome.conversations, received_at=request.at,
            completed_at=now,
        )
        if not recorded:
            return  # the same request under another event id: done before
        if outcome.export is not None and outcome.shop_id is not None:
            data, export = outcome.export
            await pq.store_export(conn, request.request_id, outcome.shop_id,
                                  request.data_request_id, data, export, now)
        REQUESTS.labels(request.kind, outcome.state).inc()
        DELAY.observe(max(0.0, (now - request.at).total_seconds()))
