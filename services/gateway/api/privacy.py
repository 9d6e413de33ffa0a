"""Privacy: the shop's privacy requests, a data request's export, and asking for a customer's
erasure. Everything here needs the `customer_privacy` permission."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.gateway import privacy_queries as pq
from services.gateway.api.common import Staff, errors, pool, queue
from shared.contracts import PrivacyCustomer, PrivacyRequest
from shared.contracts.base import Email
from shared.rules import PRIVACY_PERMISSION
from shared.topics import PRIVACY_REQUESTS

router = APIRouter(tags=["privacy"])


class PrivacyRequestRow(BaseModel):
    request_id: str
    kind: Literal["customer_data_request", "customer_redact", "shop_redact"]
    source: Literal["shopify", "merchant"]
    state: Literal["completed", "no_shop", "no_customer"] = Field(
        description="completed; no_customer: nobody of that description is known here (nothing "
        "was exported or erased)")
    data_request_id: str | None
    requested_by_staff_id: str | None
    conversations: int = Field(description="conversations exported or erased")
    export_ready: bool
    received_at: datetime
    completed_at: datetime


class PrivacyRequestList(BaseModel):
    items: list[PrivacyRequestRow]


class RedactCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    customer_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _someone(self) -> RedactCustomer:
        if not self.email and not self.customer_id:
            raise ValueError("give the customer's email or customer_id")
        return self


class RedactAccepted(BaseModel):
    request_id: str
    status: Literal["accepted"] = "accepted"


@router.get("/privacy/requests", response_model=PrivacyRequestList,
            summary="The shop's privacy requests and their state", responses=errors(403))
async def list_privacy_requests(
    request: Request, staff: Staff, limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PrivacyRequestList:
    staff.require(PRIVACY_PERMISSION, "this")
    rows = await pq.requests(pool(request), staff.shop_id, limit)
    return PrivacyRequestList(items=[PrivacyRequestRow(**dict(r)) for r in rows])


@router.get(
    "/privacy/requests/{data_request_id}/export",
    summary="A customer data request's export (JSON): everything held about the customer",
    responses={**errors(403, 404), 200: {"content": {"application/json": {}}}},
    response_class=Response,
)
async def privacy_export(
    request: Request, staff: Staff,
    data_request_id: Annotated[str, Path(min_length=1, max_length=200)],
) -> Response:
    staff.require(PRIVACY_PERMISSION, "this")
    body = await pq.export(pool(request), staff.shop_id, data_request_id)
    if body is None:
        raise HTTPException(404, "no export for this data request (yet)")
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="data-request-{data_request_id}.json"'})


@router.post(
    "/privacy/customers/redact", response_model=RedactAccepted, status_code=202,
    summary="Erase a customer's data in this shop (queued; see the privacy requests)",
    responses=errors(403, 422, 503),
)
async def redact_customer(request: Request, staff: Staff, body: RedactCustomer
                          ) -> RedactAccepted:
    staff.require(PRIVACY_PERMISSION, "this")
    request_id = f"merchant:{uuid.uuid4()}"
    event = PrivacyRequest(
        event_id=request_id, request_id=request_id, kind="customer_redact", source="merchant",
        shop_id=staff.shop_id,
        customer=PrivacyCustomer(email=body.email, customer_id=body.customer_id),
        requested_by_staff_id=staff.staff_id, at=datetime.now(UTC),
    )
    await queue(request, PRIVACY_REQUESTS, event, "request")
    return RedactAccepted(request_id=request_id)
