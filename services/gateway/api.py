"""The merchant API (`/api/v1`): read conversations, publish commands to `inbox.commands`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field, HttpUrl

from services.gateway import queries as q
from services.gateway.auth import StaffMember, current_staff
from shared.contracts import ReplyCommand
from shared.topics import INBOX_COMMANDS

router = APIRouter(prefix="/api/v1", tags=["merchant"])
Staff = Annotated[StaffMember, Depends(current_staff)]


class ConversationRow(BaseModel):
    conversation_id: uuid.UUID
    channel: str
    status: Literal["open", "closed"]
    unread: bool
    assignee_staff_id: str | None
    customer_name: str | None
    customer_email: str | None
    last_message_at: datetime | None
    last_message_preview: str | None


class ConversationPage(BaseModel):
    items: list[ConversationRow]
    next_offset: int | None


class TimelineEntry(BaseModel):
    item_id: uuid.UUID
    seq: int
    kind: str
    author: str
    staff_id: str | None
    message_id: uuid.UUID | None
    text: str | None
    data: dict[str, Any]
    at: datetime
    delivery_status: str | None
    delivery_reason: str | None


class ConversationDetail(ConversationRow):
    thread_ref: str
    subject: str | None = None
    timeline: list[TimelineEntry]


class ReplyBody(BaseModel):
    text: str | None = Field(default=None, max_length=20_000)
    product_id: str | None = Field(default=None, max_length=200)
    discount_code: str | None = Field(default=None, max_length=255)
    image_url: HttpUrl | None = None


class Accepted(BaseModel):
    command_id: str
    status: Literal["accepted"] = "accepted"


async def _conversation_or_404(request: Request, staff: StaffMember, conversation_id: str):
    try:
        conversation_uuid = uuid.UUID(conversation_id)
    except ValueError:
        raise HTTPException(404, "conversation not found") from None
    row = await q.conversation(request.app.state.service.pool, staff.shop_id, conversation_uuid)
    if row is None:
        raise HTTPException(404, "conversation not found")
    return row


@router.get("/conversations", response_model=ConversationPage)
async def list_conversations(
    request: Request,
    staff: Staff,
    status: Literal["open", "closed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ConversationPage:
    rows = await q.list_conversations(
        request.app.state.service.pool, staff.shop_id, status, limit + 1, offset
    )
    return ConversationPage(
        items=[ConversationRow(**dict(r)) for r in rows[:limit]],
        next_offset=offset + limit if len(rows) > limit else None,
    )


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail)
async def get_conversation(
    request: Request, staff: Staff, conversation_id: str
) -> ConversationDetail:
    row = await _conversation_or_404(request, staff, conversation_id)
    items = await q.timeline(request.app.state.service.pool, row["conversation_id"])
    fields = dict(row)
    if not staff.can("messaging"):
        fields["subject"] = None  # the subject is only for staff with the messaging permission
    return ConversationDetail(**fields, timeline=[TimelineEntry(**dict(i)) for i in items])


@router.post("/conversations/{conversation_id}/replies", status_code=202, response_model=Accepted)
async def reply(
    request: Request, staff: Staff, conversation_id: str, body: ReplyBody
) -> Accepted:
    row = await _conversation_or_404(request, staff, conversation_id)
    try:
        command = ReplyCommand(
            type="reply",
            command_id=str(uuid.uuid4()),
            shop_id=staff.shop_id,
            conversation_id=str(row["conversation_id"]),
            staff_id=staff.staff_id,
            **body.model_dump(exclude_none=True),
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    await request.app.state.service.producer.send_and_wait(INBOX_COMMANDS, command)
    return Accepted(command_id=command.command_id)
