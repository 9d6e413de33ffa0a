"""Saved replies: per-shop snippets with a shortcut and placeholders.

They are shop configuration, not conversation state, so the gateway stores them itself.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.gateway import queries as q
from services.gateway.api.common import (
    SAVED_REPLY_NOT_FOUND,
    Staff,
    check_placeholders,
    conversation_or_404,
    errors,
    found_or_404,
    parse_uuid,
    pool,
    search_text,
)
from services.gateway.auth import StaffMember
from shared.rules import (
    PLACEHOLDERS,
    expand_placeholders,
)
from shared.rules import (
    placeholder_values as placeholder_values_of,
)

router = APIRouter(tags=["saved replies"])

_PLACEHOLDER_HELP = "Placeholders: " + ", ".join(f"`{{{{ {p} }}}}`" for p in PLACEHOLDERS) + "."

Shortcut = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^\S+$")
]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]


class SavedReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shortcut: Shortcut = Field(
        description="unique in the shop (case-insensitive), no spaces", examples=["shipping"]
    )
    body: Body = Field(
        description=_PLACEHOLDER_HELP,
        examples=["Hi {{ customer_first_name }}, your order {{ order_number }} ships today!"],
    )


class SavedReply(BaseModel):
    saved_reply_id: uuid.UUID
    shortcut: str
    body: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class SavedReplyList(BaseModel):
    items: list[SavedReply]


class SavedReplyPreview(BaseModel):
    saved_reply_id: uuid.UUID
    conversation_id: uuid.UUID
    text: str


def _saved_reply(row: asyncpg.Record) -> SavedReply:
    fields = dict(row)
    return SavedReply(saved_reply_id=fields.pop("reply_id"), **fields)


def _duplicate(shortcut: str) -> HTTPException:
    return HTTPException(409, f"a saved reply with the shortcut {shortcut!r} already exists")


_saved_reply_or_404 = found_or_404(q.saved_reply, "saved_reply_id", SAVED_REPLY_NOT_FOUND)
#: The saved reply the path names, for endpoints with nothing else to validate first.
_SavedReplyRow = Annotated[asyncpg.Record, Depends(_saved_reply_or_404)]


# --- expansion (also used by replies) ----------------------------------------------------------


async def placeholder_values(
    db: asyncpg.Pool, staff: StaffMember, conversation: asyncpg.Record
) -> dict[str, str | None]:
    shop = await q.shop(db, staff.shop_id)
    newest = await q.recent_orders(
        db, staff.shop_id, conversation["customer_id"], conversation["customer_email"], 1
    )
    return placeholder_values_of(conversation["customer_name"],
                              newest[0]["order_number"] if newest else None,
                              shop["name"] if shop else None, staff.name)


async def expand_saved_reply(
    db: asyncpg.Pool, staff: StaffMember, saved: asyncpg.Record, conversation: asyncpg.Record
) -> str:
    return expand_placeholders(saved["body"], await placeholder_values(db, staff, conversation))


# --- endpoints -----------------------------------------------------------------------------------


@router.get("/saved-replies", response_model=SavedReplyList, summary="The shop's saved replies",
            responses=errors(422))
async def list_saved_replies(
    request: Request,
    staff: Staff,
    search: Annotated[str | None, search_text("text in shortcut or body")],
) -> SavedReplyList:
    rows = await q.saved_replies(pool(request), staff.shop_id, search)
    return SavedReplyList(items=[_saved_reply(r) for r in rows])


@router.post(
    "/saved-replies",
    status_code=201,
    response_model=SavedReply,
    summary="Create a saved reply",
    responses=errors(409, 422),
)
async def create_saved_reply(request: Request, staff: Staff, body: SavedReplyIn) -> SavedReply:
    check_placeholders(body.body)
    try:
        row = await q.insert_saved_reply(
            pool(request), staff.shop_id, body.shortcut, body.body, staff.staff_id
        )
    except asyncpg.UniqueViolationError:
        raise _duplicate(body.shortcut) from None
    return _saved_reply(row)


@router.get(
    "/saved-replies/{saved_reply_id}",
    response_model=SavedReply,
    summary="One saved reply",
    responses=errors(404),
)
async def get_saved_reply(saved: _SavedReplyRow) -> SavedReply:
    return _saved_reply(saved)


@router.put(
    "/saved-replies/{saved_reply_id}",
    response_model=SavedReply,
    summary="Replace a saved reply's shortcut and body",
    responses=errors(404, 409, 422),
)
async def update_saved_reply(
    request: Request, staff: Staff, saved_reply_id: str, body: SavedReplyIn
) -> SavedReply:
    reply_id = parse_uuid(saved_reply_id, SAVED_REPLY_NOT_FOUND)
    check_placeholders(body.body)
    try:
        row = await q.update_saved_reply(
            pool(request), staff.shop_id, reply_id, body.shortcut, body.body
        )
    except asyncpg.UniqueViolationError:
        raise _duplicate(body.shortcut) from None
    if row is None:
        raise HTTPException(404, SAVED_REPLY_NOT_FOUND)
    return _saved_reply(row)


@router.delete(
    "/saved-replies/{saved_reply_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a saved reply",
    responses=errors(404),
)
async def delete_saved_reply(request: Request, staff: Staff, saved_reply_id: str) -> Response:
    reply_id = parse_uuid(saved_reply_id, SAVED_REPLY_NOT_FOUND)
    if not await q.delete_saved_reply(pool(request), staff.shop_id, reply_id):
        raise HTTPException(404, SAVED_REPLY_NOT_FOUND)
    return Response(status_code=204)


@router.get(
    "/saved-replies/{saved_reply_id}/preview",
    response_model=SavedReplyPreview,
    summary="A saved reply expanded for one conversation",
    responses=errors(404, 422),
)
async def preview_saved_reply(
    request: Request,
    staff: Staff,
    saved_reply_id: str,
    conversation_id: Annotated[str, Query(max_length=64)],
) -> SavedReplyPreview:
    saved = await _saved_reply_or_404(request, staff, saved_reply_id)
    conversation = await conversation_or_404(request, staff, conversation_id)
    return SavedReplyPreview(
        saved_reply_id=saved["reply_id"],
        conversation_id=conversation["conversation_id"],
        text=await expand_saved_reply(pool(request), staff, saved, conversation),
    )
