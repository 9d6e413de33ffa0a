"""A customer's chat session: one thread (`thread_ref`) and the signed token that opens it.

The token is the customer's only credential (their browser keeps it; it travels as
`Authorization: Bearer`) and opens that one thread only. It also carries who the customer said
they are and where their browser is (time zone, language), so each message brings them along.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from services.gateway.storefront.common import CHANNEL, settings
from shared import tokens
from shared.ids import derived_id

#: A chat token opens its thread for this long (the customer's browser keeps it).
CHAT_TOKEN_SECONDS = 90 * 24 * 3600
CHAT_TOKEN = tokens.Purpose("storefront-chat", CHAT_TOKEN_SECONDS)


def conversation_id(shop_id: str, thread_ref: str) -> str:
    return str(derived_id("conversation", shop_id, CHANNEL, thread_ref))


class ChatSession(BaseModel):
    """What the widget keeps to go on with a chat (in the customer's browser)."""

    token: str = Field(description="the credential of this one thread: `Authorization: Bearer`")
    shop_id: str
    thread_ref: str
    visitor_id: str
    conversation_id: str
    customer: dict[str, str | None]


class Customer(BaseModel):
    """Who the customer said they are, and where their browser is."""

    name: str | None = None
    email: str | None = None
    #: IANA time zone and BCP 47 language of the customer's browser (checked at chat start).
    timezone: str | None = None
    locale: str | None = None


def new_session(
    request: Request, shop_id: str, thread_ref: str, visitor_id: str, customer: Customer
) -> ChatSession:
    c = customer
    token = tokens.sign(settings(request).link_signing_secret, CHAT_TOKEN,
                        [shop_id, thread_ref, visitor_id, c.name or "", c.email or "",
                         c.timezone or "", c.locale or ""])
    return ChatSession(
        token=token, shop_id=shop_id, thread_ref=thread_ref, visitor_id=visitor_id,
        conversation_id=conversation_id(shop_id, thread_ref), customer=c.model_dump(),
    )


class Chat(BaseModel):
    """The thread a chat token opens."""

    shop_id: str
    thread_ref: str
    visitor_id: str
    customer: Customer

    @property
    def conversation_id(self) -> str:
        return conversation_id(self.shop_id, self.thread_ref)


chat_bearer = HTTPBearer(auto_error=False, scheme_name="chatToken")


async def current_chat(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(chat_bearer)],
) -> Chat:
    """The thread the request's chat token opens; else a 401."""
    if credentials is None:
        raise HTTPException(401, "missing chat token", {"WWW-Authenticate": "Bearer"})
    claims = tokens.verify(settings(request).link_signing_secret, CHAT_TOKEN,
                           credentials.credentials)
    # Five claims: a token from before time zone and language were kept.
    if claims is None or len(claims) not in (5, 7):
        raise HTTPException(401, "invalid or expired chat token", {"WWW-Authenticate": "Bearer"})
    shop_id, thread_ref, visitor_id, name, email, timezone, locale = [*claims, "", ""][:7]
    return Chat(shop_id=shop_id, thread_ref=thread_ref, visitor_id=visitor_id,
                customer=Customer(name=name or None, email=email or None,
                                  timezone=timezone or None, locale=locale or None))


CurrentChat = Annotated[Chat, Depends(current_chat)]
