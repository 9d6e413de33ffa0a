"""The chat API the widget calls: start a chat or resume one from an email's link, write, read
the thread, and follow it live.

What a customer writes is one event on `chat.inbound` (channel `online_store_chat`). Customers
cannot send images here: a message with attachments is refused (422).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.gateway import live
from services.gateway.api.common import CONVERSATION_NOT_FOUND, parse_uuid, pool, validated
from services.gateway.storefront import queries as sq
from services.gateway.storefront.common import (
    API,
    CHANNEL,
    MAX_MESSAGE_CHARS,
    VisitorId,
    client_address,
    parse,
    publish,
    rate_limit,
    read_body,
    settings,
    shop,
)
from services.gateway.storefront.hours import availability
from services.gateway.storefront.sessions import ChatSession, CurrentChat, Customer, new_session
from services.gateway.storefront.thread import Thread, thread_message
from shared import tokens
from shared.contracts import ChatInbound
from shared.contracts.base import Email, LanguageTag, TimeZoneName
from shared.ids import derived_id
from shared.links import valid_signature
from shared.rules import customer_identities
from shared.topics import CHAT_INBOUND

#: Most messages a thread read returns (the newest).
THREAD_LIMIT = 200
CUSTOMER_TICKET = tokens.Purpose("storefront-events", live.TICKET_SECONDS)
IMAGES_REFUSED = (
    "images and other attachments cannot be sent in this chat; send your message as text"
)

router = APIRouter(include_in_schema=False)


class StartChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visitor_id: VisitorId
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    email: Email | None = Field(
        default=None, description="where replies go by email once the customer left the store"
    )
    timezone: TimeZoneName | None = Field(
        default=None, description="the browser's IANA time zone (Europe/Zurich)")
    locale: LanguageTag | None = Field(
        default=None, description="the browser's language, a BCP 47 tag (de-CH)")


#: What a blocked customer reads in the widget (the merchant's reason is not shown to them).
BLOCKED = "This shop is not taking messages from you in this chat."
#: Why a chat outside the shop's hours needs an email address: nobody answers in the chat now.
EMAIL_WHILE_AWAY = ("email: the shop is away right now (outside its chat hours); leave an email "
                    "address so that the answer can reach you")


async def refuse_blocked(request: Request, shop_id: str, channel: str, thread_ref: str | None,
                         visitor_id: str | None, email: str | None) -> None:
    identities = customer_identities(channel, thread_ref, visitor_id, email)
    if identities and await sq.blocked_reason(pool(request), shop_id, identities) is not None:
        raise HTTPException(403, BLOCKED)


@router.post(API + "/shops/{shop_id}/chats", response_model=ChatSession, status_code=201)
async def start_chat(request: Request, shop_id: str) -> ChatSession:
    """A new thread for this visitor: nothing is published until the first message. Outside
    the shop's chat hours it needs the customer's email address (422 without)."""
    raw = await read_body(request, "chat")
    row = await shop(request, shop_id)
    rate_limit(request, "chat", client_address(request))
    body = parse(StartChatIn, raw)
    thread_ref = f"web-{secrets.token_urlsafe(18)}"
    await refuse_blocked(request, shop_id, CHANNEL, None, body.visitor_id, body.email)
    # Outside hours nobody is there to answer in the chat: a chat must be reachable by email.
    # (A chat already started goes on without one.)
    if body.email is None:
        staffed = await availability(pool(request), shop_id, row["timezone"])
        if not staffed.available:
            raise HTTPException(422, EMAIL_WHILE_AWAY)
    customer = Customer(name=body.name, email=body.email, timezone=body.timezone,
                        locale=body.locale)
    return new_session(request, shop_id, thread_ref, body.visitor_id, customer)


class ResumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shop_id: Annotated[str, StringConstraints(max_length=64)]
    conversation_id: Annotated[str, StringConstraints(max_length=64)]
    sig: Annotated[str, StringConstraints(max_length=128)]


@router.post(API + "/chats/resume", response_model=ChatSession)
async def resume_chat(request: Request) -> ChatSession:
    """Back into a conversation from the signed link of an email."""
    raw = await read_body(request, "chat")
    rate_limit(request, "chat", client_address(request))
    body = parse(ResumeIn, raw)
    if not valid_signature(settings(request).link_signing_secret, body.shop_id,
                           body.conversation_id, body.sig):
        raise HTTPException(403, "this link is not valid")
    cid = parse_uuid(body.conversation_id, CONVERSATION_NOT_FOUND)
    row = await sq.chat_conversation(pool(request), body.shop_id, cid, CHANNEL)
    if row is None:
        raise HTTPException(404, CONVERSATION_NOT_FOUND)
    visitor_id = row["visitor_id"] or f"v-{uuid.uuid4()}"
    customer = Customer(name=row["customer_name"], email=row["customer_email"],
                        timezone=row["customer_timezone"], locale=row["customer_locale"])
    return new_session(request, body.shop_id, row["thread_ref"], visitor_id, customer)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
    ]

    @model_validator(mode="before")
    @classmethod
    def _no_attachments(cls, data: Any) -> Any:
        # Said first and plainly, whatever else the message holds; none at all is no message.
        if isinstance(data, dict) and "attachments" in data:
            if data["attachments"]:
                raise ValueError(IMAGES_REFUSED)
            data = {k: v for k, v in data.items() if k != "attachments"}
        return data


class Posted(BaseModel):
    message_id: str
    conversation_id: str
    sent_at: datetime


@router.post(API + "/chat/messages", response_model=Posted, status_code=202)
async def post_message(request: Request, chat: CurrentChat) -> Posted:
    """The customer writes: one event on `chat.inbound`."""
    raw = await read_body(request, "message")
    rate_limit(request, "message", chat.thread_ref)
    body = parse(MessageIn, raw)
    await shop(request, chat.shop_id)
    await refuse_blocked(request, chat.shop_id, CHANNEL, chat.thread_ref, chat.visitor_id,
                         chat.customer.email)
    event_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    customer = chat.customer.model_dump(exclude_none=True)
    event = validated(
        ChatInbound, event_id=event_id, shop_id=chat.shop_id, channel=CHANNEL,
        thread_ref=chat.thread_ref, text=body.text, sent_at=now, customer=customer or None,
        visitor_id=chat.visitor_id,
    )
    await publish(request, CHAT_INBOUND, event)
    return Posted(
        message_id=str(derived_id("message", chat.shop_id, event_id)),
        conversation_id=chat.conversation_id, sent_at=now,
    )


@router.get(API + "/chat", response_model=Thread)
async def read_thread(request: Request, chat: CurrentChat) -> Thread:
    """The thread as the customer sees it: their messages, what reached their chat, and the
    replies that went by email while they were away."""
    rate_limit(request, "read", chat.thread_ref)
    db = pool(request)
    cid = uuid.UUID(chat.conversation_id)
    started = await sq.conversation_exists(db, chat.shop_id, cid)
    rows = await sq.thread(db, chat.shop_id, cid, chat.thread_ref, THREAD_LIMIT) if started else []
    return Thread(
        conversation_id=chat.conversation_id, started=started,
        customer={"name": chat.customer.name, "email": chat.customer.email},
        messages=[thread_message(r) for r in reversed(rows)],
    )


@router.post(API + "/chat/events/ticket", response_model=live.Ticket)
async def chat_events_ticket(request: Request, chat: CurrentChat) -> live.Ticket:
    return live.issue_ticket(settings(request), CUSTOMER_TICKET,
                             [chat.shop_id, chat.conversation_id])


async def _ticket_conversation(
    request: Request, ticket: Annotated[str | None, Query(max_length=4096)] = None
) -> tuple[str, str]:
    """The shop and conversation a customer's stream is for, from its ticket."""
    shop_id, conversation_id = live.ticket_claims(settings(request), CUSTOMER_TICKET, ticket)
    return shop_id, conversation_id


@router.get(API + "/chat/events", response_class=EventSourceResponse)
async def chat_events(
    conversation: Annotated[tuple[str, str], Depends(_ticket_conversation)], hub: live.ReadyHub
) -> AsyncIterator[ServerSentEvent]:
    """`changed` whenever the thread changed (then read it again); `ready` first."""
    shop_id, conversation_id = conversation
    async for event in live.updates(hub, shop_id, conversation_id,
                                    {"conversation_id": conversation_id}):
        yield event
