"""Reading conversations: the list with its filters, one conversation in full."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from services.gateway import queries as q
from services.gateway.api.common import Conversation, Staff, errors, pool, search_text
from services.gateway.api.models import (
    ConversationDetail,
    ConversationPage,
    TimelineEntry,
    conversation_row,
    customer_profile,
    row_fields,
)
from shared.rules import customer_key, may_see_subject

router = APIRouter(tags=["conversations"])

#: Recent orders shown in the customer profile.
RECENT_ORDERS = 5


@router.get(
    "/conversations",
    response_model=ConversationPage,
    summary="List the shop's conversations, newest activity first",
    responses=errors(422),
)
async def list_conversations(
    request: Request,
    staff: Staff,
    search: Annotated[str | None, search_text(
        "text in the customer's name or email, the messages, the last message preview, or the "
        "subject (only for staff who may see subjects)"
    )],
    status: Literal["open", "closed"] | None = None,
    assignee: Annotated[
        str | None,
        Query(max_length=200, description="a staff id, or `me` for the caller"),
    ] = None,
    unassigned: Annotated[
        bool | None, Query(description="true: only unassigned; false: only assigned")
    ] = None,
    unread: bool | None = None,
    topic: Annotated[str | None, Query(max_length=64, description="a topic key")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ConversationPage:
    if assignee is not None and unassigned:
        raise HTTPException(422, "assignee and unassigned=true cannot be combined")
    filters = q.ConversationFilter(
        status=status,
        assignee_staff_id=staff.staff_id if assignee == "me" else assignee,
        unassigned=unassigned,
        unread=unread,
        topic=topic,
        search=search,
        search_subject=may_see_subject(staff.permissions),
    )
    rows = await q.list_conversations(pool(request), staff.shop_id, filters, limit + 1, offset)
    more, rows = len(rows) > limit, rows[:limit]
    timeout = _presence_timeout(request)
    return ConversationPage(
        items=[conversation_row(r, timeout) for r in rows],
        next_offset=offset + limit if more else None,
    )


def _presence_timeout(request: Request) -> timedelta:
    return timedelta(seconds=request.app.state.service.settings.presence_timeout_seconds)


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationDetail,
    summary="One conversation: timeline, cart header and customer profile",
    responses=errors(404),
)
async def get_conversation(request: Request, staff: Staff, row: Conversation) -> ConversationDetail:
    db, shop_id = pool(request), staff.shop_id
    customer_id, email = row["customer_id"], row["customer_email"]
    items = await q.timeline(db, row["conversation_id"])
    profile = customer_profile(
        row,
        order_count=await q.order_count(db, shop_id, customer_id, email),
        orders=await q.recent_orders(db, shop_id, customer_id, email, RECENT_ORDERS),
        notes=await q.customer_notes(
            db, shop_id, customer_key(customer_id, email, str(row["conversation_id"]))
        ),
    )
    return ConversationDetail(
        **{**row_fields(row, _presence_timeout(request)), "customer": profile},
        thread_ref=row["thread_ref"],
        created_at=row["created_at"],
        # The subject is only for staff holding the messaging permission.
        subject=row["subject"] if may_see_subject(staff.permissions) else None,
        timeline=[TimelineEntry(**dict(i)) for i in items],
    )


@router.delete(
    "/conversations/{conversation_id}",
    status_code=405,
    summary="Not allowed: conversations cannot be deleted (close them instead)",
    responses=errors(405),
    response_model=None,
)
async def delete_conversation(staff: Staff, conversation_id: str) -> JSONResponse:
    return JSONResponse(
        {"detail": "conversations cannot be deleted; close them instead"},
        status_code=405,
        headers={"Allow": "GET"},
    )
