"""The shop's Messenger channel: connect a Facebook Page, remove it, see its state; and an
order's Messenger consent with its history.

The channel is shop configuration, stored by the gateway itself. Connecting and removing need
the messaging permission. Removing stops new opt-ins and new Messenger messages (each is
recorded as refused, with the reason, on `messenger.events`); customers who opted in before
keep receiving their order updates. Connecting the same Page again resumes its conversations;
another Page starts fresh ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.gateway import messenger_queries as mq
from services.gateway.api.common import Staff, errors, pool
from shared.rules import MESSAGING_PERMISSION

router = APIRouter(tags=["channels"])

PATH = "/channels/messenger"


class MessengerChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    page_id: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Za-z_.\-]{1,64}$")
    ] = Field(description="the Facebook Page's id")
    page_access_token: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)
    ] = Field(description="the Page access token (never shown again)")
    human_agent_approved: bool = Field(
        default=False,
        description="the Page's app is approved for Meta's Human Agent feature: people may "
        "reply up to 7 days after the customer's last message",
    )


class MessengerChannel(BaseModel):
    state: Literal["not_connected", "connected", "removed", "needs_reconnection"] = Field(
        description="needs_reconnection: Meta refused the access token; messages wait until "
        "the Page is connected again with a valid token"
    )
    page_id: str | None = None
    human_agent_approved: bool = False
    state_reason: str | None = None
    connected_at: datetime | None = None
    removed_at: datetime | None = None
    updated_at: datetime | None = None


class ConsentChange(BaseModel):
    change: Literal["opted_in", "refused", "turned_off", "kept"]
    actor: Literal["customer", "staff", "system"]
    staff_id: str | None
    reason: str | None
    at: datetime


class OrderUpdatesConsent(BaseModel):
    order_id: str
    order_number: str | None
    page_id: str
    state: Literal["active", "off_by_customer", "off_by_merchant", "refused"]
    updates_enabled: bool = Field(description="false once staff turned updates off")
    state_reason: str | None
    opted_in_at: datetime
    conversation_id: str | None = Field(description="where the order's updates are shown")
    history: list[ConsentChange] = Field(description="every consent change, oldest first")


def _channel(row: asyncpg.Record | None) -> MessengerChannel:
    # The model names what is shown: the row's other columns (the Page's token) are left out.
    return MessengerChannel(**dict(row)) if row else MessengerChannel(state="not_connected")


@router.get(PATH, response_model=MessengerChannel,
            summary="The shop's Messenger channel and its state")
async def get_messenger_channel(request: Request, staff: Staff) -> MessengerChannel:
    return _channel(await mq.channel(pool(request), staff.shop_id))


@router.put(
    PATH,
    response_model=MessengerChannel,
    summary="Connect (or reconnect) a Facebook Page as the shop's Messenger channel",
    responses=errors(403, 409, 422),
)
async def connect_messenger_channel(
    request: Request, staff: Staff, body: MessengerChannelIn
) -> MessengerChannel:
    staff.require(MESSAGING_PERMISSION, "configuring the Messenger channel")
    try:
        row = await mq.connect(pool(request), staff.shop_id, body.page_id,
                               body.page_access_token, body.human_agent_approved)
    except asyncpg.UniqueViolationError:
        raise HTTPException(409, f"Page {body.page_id} is connected to another shop") from None
    return _channel(row)


@router.delete(
    PATH,
    response_model=MessengerChannel,
    summary="Remove the Messenger channel (opted-in customers keep their order updates)",
    responses=errors(403, 404),
)
async def remove_messenger_channel(request: Request, staff: Staff) -> MessengerChannel:
    staff.require(MESSAGING_PERMISSION, "configuring the Messenger channel")
    row = await mq.remove(pool(request), staff.shop_id, f"removed by {staff.name}")
    if row is None:
        raise HTTPException(404, "the shop has no Messenger channel")
    return _channel(row)


@router.get(
    PATH + "/orders/{order_id}",
    response_model=OrderUpdatesConsent,
    summary="An order's Messenger order-update consent and its history",
    responses=errors(404),
)
async def order_updates_consent(
    request: Request, staff: Staff, order_id: str
) -> OrderUpdatesConsent:
    db = pool(request)
    row = await mq.consent(db, staff.shop_id, order_id)
    if row is None:
        raise HTTPException(404, "no Messenger opt-in for this order")
    history = await mq.consent_changes(db, staff.shop_id, order_id)
    cid = row["conversation_id"]
    return OrderUpdatesConsent(**{
        **dict(row), "conversation_id": str(cid) if cid else None,
        "history": [ConsentChange(**dict(h)) for h in history],
    })
