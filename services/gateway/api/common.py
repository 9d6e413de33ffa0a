"""What every part of the merchant API shares: the caller, error bodies, publishing commands."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar, get_args

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field, ValidationError

from services.gateway import queries as q
from services.gateway.auth import StaffMember, current_staff
from shared.contracts.base import error_sentence
from shared.ids import uuid_or_none
from shared.rules import PLACEHOLDERS, unknown_placeholders
from shared.topics import INBOX_COMMANDS

log = logging.getLogger(__name__)

#: The authenticated staff member; every handler's data is confined to `staff.shop_id`.
Staff = Annotated[StaffMember, Depends(current_staff)]

CONVERSATION_NOT_FOUND = "conversation not found"
SAVED_REPLY_NOT_FOUND = "saved reply not found"

M = TypeVar("M", bound=BaseModel)


class ErrorBody(BaseModel):
    """Every 4xx answer: one message meant for the person using the API."""

    detail: str = Field(examples=["conversation not found"])


_ERROR_DESCRIPTIONS = {
    401: "Missing or invalid bearer token.",
    403: "The staff member lacks the permission this needs.",
    404: "Not found in the caller's shop.",
    405: "The operation is not allowed on this resource.",
    409: "Conflicts with existing data.",
    422: "The request is invalid or refused by the rules; `detail` says why.",
    503: "The command could not be queued; retry.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of the error answers an endpoint may give."""
    return {code: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[code]} for code in codes}


class Accepted(BaseModel):
    """The command is queued on `inbox.commands`; its effect appears on the timeline."""

    command_id: str
    status: Literal["accepted"] = "accepted"


def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.service.pool


def parse_uuid(value: str, not_found: str) -> uuid.UUID:
    """An id from the URL; a malformed one names nothing, so it is simply not found."""
    parsed = uuid_or_none(value)
    if parsed is None:
        raise HTTPException(404, not_found)
    return parsed


#: Looks up one of a shop's records by its id.
ShopLookup = Callable[[asyncpg.Pool, str, uuid.UUID], Awaitable[asyncpg.Record | None]]


def found_or_404(
    lookup: ShopLookup, path_param: str, not_found: str
) -> Callable[[Request, StaffMember, str], Awaitable[asyncpg.Record]]:
    """The caller's shop's record named by the URL's `path_param`; another shop's, or a
    malformed id, is simply not found. A FastAPI dependency, or a helper to call after the body
    is validated (a malformed body is a 422 before the lookup's 404)."""

    # The parameters' FastAPI markers are defaults, not annotations: annotations are read
    # as text (postponed) and could not name this function's arguments.
    async def record_or_404(
        request: Request, staff: Staff, record_id: str = Path(alias=path_param)
    ) -> asyncpg.Record:
        row = await lookup(pool(request), staff.shop_id, parse_uuid(record_id, not_found))
        if row is None:
            raise HTTPException(404, not_found)
        return row

    return record_or_404


conversation_or_404 = found_or_404(q.conversation, "conversation_id", CONVERSATION_NOT_FOUND)
#: The conversation the path names, for endpoints without a body.
Conversation = Annotated[asyncpg.Record, Depends(conversation_or_404)]


def search_text(description: str) -> Any:
    """The `q` query parameter: text to look for, stripped (None when there is none)."""

    async def stripped(
        q: str | None = Query(None, max_length=200, description=description),
    ) -> str | None:
        return (q.strip() or None) if q else None

    return Depends(stripped)


def validated(model: type[M], **fields: Any) -> M:
    """`model` built from `fields`; whatever its contract refuses is a 422."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise HTTPException(422, error_sentence(exc.errors())) from None


def build_command(model: type[BaseModel], **fields: Any) -> Any:
    """Build a command of `inbox.commands`; whatever its contract refuses is a 422."""
    return validated(model, command_id=str(uuid.uuid4()), **fields)


async def send_command(
    request: Request,
    staff: StaffMember,
    conversation: asyncpg.Record,
    model: type[BaseModel],
    **fields: Any,
) -> Accepted:
    """Build the staff member's command on this conversation and queue it."""
    command_type = get_args(model.model_fields["type"].annotation)[0]
    return await publish(request, build_command(
        model,
        type=command_type,
        shop_id=staff.shop_id,
        conversation_id=str(conversation["conversation_id"]),
        staff_id=staff.staff_id,
        **fields,
    ))


async def command_on(
    request: Request, staff: StaffMember, conversation_id: str, model: type[BaseModel],
    **fields: Any,
) -> Accepted:
    """Queue the staff member's command on one of their shop's conversations (else a 404).

    A helper, not a FastAPI dependency, so that a malformed body is still a 422 before the
    lookup's 404, as it is for every endpoint.
    """
    conversation = await conversation_or_404(request, staff, conversation_id)
    return await send_command(request, staff, conversation, model, **fields)


async def queue(request: Request, topic: str, event: Any, what: str) -> None:
    """Put `event` on `topic` before answering; a 503 saying `what` could not be queued when
    the broker does not take it."""
    try:
        await request.app.state.service.producer.send_and_wait(topic, event)
    except KafkaError as exc:
        log.warning("%s %s not published: %s", what, event.event_id, exc)
        raise HTTPException(503, f"the {what} could not be queued; try again") from None


async def publish(request: Request, command: Any) -> Accepted:
    await queue(request, INBOX_COMMANDS, command, "command")
    return Accepted(command_id=command.command_id)


def check_placeholders(text: str) -> None:
    """422 naming the placeholders a saved reply or an instant answer uses that do not exist."""
    unknown = unknown_placeholders(text)
    if unknown:
        raise HTTPException(
            422,
            f"unknown placeholders: {', '.join(unknown)} (known: {', '.join(PLACEHOLDERS)})",
        )
