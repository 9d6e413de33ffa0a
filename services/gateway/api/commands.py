"""Commands on a conversation: each is checked against the shop's data with the shared rules
(so a bad request is a 4xx here, not a dead letter later), then queued on `inbox.commands`.
The router applies it; its effect shows on the conversation and its timeline."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from services.gateway import queries as q
from services.gateway.api.common import (
    Accepted,
    Staff,
    build_command,
    command_on,
    conversation_or_404,
    errors,
    pool,
    publish,
    send_command,
)
from services.gateway.api.saved_replies import expand_saved_reply
from shared.contracts import (
    AddNoteCommand,
    AssignCommand,
    BlockCommand,
    MarkUnreadCommand,
    ReplyCommand,
    SetStatusCommand,
    SetSubjectCommand,
    TurnOffOrderUpdatesCommand,
    UnassignCommand,
    UnblockCommand,
)
from shared.rules import (
    DiscountFacts,
    ProductFacts,
    RuleViolation,
    check_assignable,
    discount_link,
    may_see_subject,
    product_link,
)

router = APIRouter(tags=["conversation commands"])


def _command(
    action: str, summary: str, *codes: int, method: str = "post"
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The route of a command on one conversation (`/conversations/{id}/<action>`): queued,
    so answered 202 Accepted; `codes` are the errors it may answer."""
    return getattr(router, method)(
        f"/conversations/{{conversation_id}}/{action}", status_code=202, response_model=Accepted,
        summary=summary, responses=errors(*codes),
    )


class ReplyIn(BaseModel):
    """Text, and/or one of a product, a discount code or an image; or a saved reply."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=20_000)
    product_id: str | None = Field(
        default=None, max_length=200, description="a product on the Online Store sales channel"
    )
    discount_code: str | None = Field(
        default=None,
        max_length=255,
        description="an existing, active code (case-insensitive); the customer gets a link "
        "that applies it to their cart",
    )
    image_url: HttpUrl | None = None
    saved_reply_id: uuid.UUID | None = Field(
        default=None,
        description="use this saved reply, its placeholders filled, as the text "
        "(not combined with `text`)",
    )


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: str = Field(min_length=1, max_length=200, description="see /staff/assignable")


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "closed"]


class SubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(max_length=255, description="an empty subject clears it")


class BlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=500)] = Field(
        description="why (kept with the block; the customer is not told)")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]


class OrderUpdatesOffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=200, description="an order of the shop")


def _refused(exc: RuleViolation) -> HTTPException:
    return HTTPException(422, str(exc))


@_command("replies", "Reply to the customer, on the channel they wrote from", 404, 422, 503)
async def reply(request: Request, staff: Staff, conversation_id: str, body: ReplyIn) -> Accepted:
    conversation = await conversation_or_404(request, staff, conversation_id)
    db = pool(request)
    text = body.text
    if body.saved_reply_id is not None:
        if body.text is not None:
            raise HTTPException(422, "text cannot be combined with saved_reply_id")
        saved = await q.saved_reply(db, staff.shop_id, body.saved_reply_id)
        if saved is None:
            raise HTTPException(422, "no such saved reply")
        text = await expand_saved_reply(db, staff, saved, conversation)
    command: ReplyCommand = build_command(
        ReplyCommand,
        type="reply",
        shop_id=staff.shop_id,
        conversation_id=str(conversation["conversation_id"]),
        staff_id=staff.staff_id,
        text=text,
        product_id=body.product_id,
        discount_code=body.discount_code,
        image_url=body.image_url,
    )
    try:
        if command.product_id:
            product = await q.product(db, staff.shop_id, command.product_id)
            product_link(ProductFacts(**dict(product)) if product else None, command.product_id)
        if command.discount_code:
            found = await q.discount(db, staff.shop_id, command.discount_code)
            shop = await q.shop(db, staff.shop_id)
            link = discount_link(
                DiscountFacts(**dict(found)) if found else None,
                command.discount_code,
                shop["domain"] if shop else "",
                datetime.now(UTC),
                shop["storefront_url"] if shop else None,
            )
            # Codes are case-insensitive: send the shop's own spelling.
            command = command.model_copy(update={"discount_code": link["code"]})
    except RuleViolation as exc:
        raise _refused(exc) from None
    return await publish(request, command)


@_command(
    "assign",
    "Assign to a staff member holding the online store chat permission",
    404, 422, 503,
)
async def assign(request: Request, staff: Staff, conversation_id: str, body: AssignIn) -> Accepted:
    conversation = await conversation_or_404(request, staff, conversation_id)
    member = await q.staff_member(pool(request), staff.shop_id, body.staff_id)
    if member is None:
        raise HTTPException(422, "no such staff member")
    try:
        check_assignable(member["name"], member["permissions"], member["active"])
    except RuleViolation as exc:
        raise _refused(exc) from None
    return await send_command(request, staff, conversation, AssignCommand,
                              assignee_staff_id=member["staff_id"])


@_command("unassign", "Remove the assignee", 404, 503)
async def unassign(request: Request, staff: Staff, conversation_id: str) -> Accepted:
    return await command_on(request, staff, conversation_id, UnassignCommand)


@_command("status", "Open or close (archive) the conversation", 404, 422, 503)
async def set_status(
    request: Request, staff: Staff, conversation_id: str, body: StatusIn
) -> Accepted:
    return await command_on(request, staff, conversation_id, SetStatusCommand, status=body.status)


@_command("mark-unread", "Mark the conversation unread", 404, 503)
async def mark_unread(request: Request, staff: Staff, conversation_id: str) -> Accepted:
    return await command_on(request, staff, conversation_id, MarkUnreadCommand)


@_command(
    "subject",
    "Set the subject (needs the messaging permission)",
    403, 404, 422, 503, method="put",
)
async def set_subject(
    request: Request, staff: Staff, conversation_id: str, body: SubjectIn
) -> Accepted:
    if not may_see_subject(staff.permissions):
        raise HTTPException(403, "setting the subject needs the messaging permission")
    return await command_on(
        request, staff, conversation_id, SetSubjectCommand, subject=body.subject
    )


@_command(
    "notes",
    "Leave a note on the customer (staff only, never shown to the customer)",
    404, 422, 503,
)
async def add_note(request: Request, staff: Staff, conversation_id: str, body: NoteIn) -> Accepted:
    return await command_on(request, staff, conversation_id, AddNoteCommand, text=body.text)


@_command(
    "turn-off-order-updates",
    "Send no more updates about one order (e.g. it went to the wrong person)",
    404, 422, 503,
)
async def turn_off_order_updates(
    request: Request, staff: Staff, conversation_id: str, body: OrderUpdatesOffIn
) -> Accepted:
    conversation = await conversation_or_404(request, staff, conversation_id)
    if await q.order(pool(request), staff.shop_id, body.order_id) is None:
        raise HTTPException(422, f"order {body.order_id!r} does not exist in this shop")
    return await send_command(request, staff, conversation, TurnOffOrderUpdatesCommand,
                              order_id=body.order_id)


@_command(
    "block",
    "Block the customer: on this channel they can open or continue no conversation in the shop",
    404, 422, 503,
)
async def block(request: Request, staff: Staff, conversation_id: str, body: BlockIn) -> Accepted:
    return await command_on(request, staff, conversation_id, BlockCommand, reason=body.reason)


@_command("unblock", "Unblock the customer", 404, 503)
async def unblock(request: Request, staff: Staff, conversation_id: str) -> Accepted:
    return await command_on(request, staff, conversation_id, UnblockCommand)
