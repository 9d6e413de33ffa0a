"""The customer-facing side of online store chat: the small HTTP API the storefront chat widget
calls (`/storefront/api/…`), the widget and a demo storefront (`/storefront/…`), and the
"continue the chat" link from emails (`/chat/continue`).

What a customer does becomes an ingress event, validated with the shared contracts and
published like any other producer would: a message on `chat.inbound` (channel
`online_store_chat`), presence signals on `storefront.activity`, cart changes on
`storefront.cart`. What the merchant sends comes back from the customer's mailbox
(`storefront_chat_messages`, written by the notifier), plus the replies that went by email
while the customer was away.

A chat is a thread of its own (`thread_ref`) with a signed token for it (HMAC with
`LINK_SIGNING_SECRET`): the token is the customer's only credential and opens that thread only.
Customers cannot send images here: a message with attachments is refused (422).
Requests are small (bodies are capped) and rate-limited per visitor, thread and address.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import APIRouter, HTTPException, Query, Request, Security
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway import live
from services.gateway.api.common import parse_uuid
from shared.contracts import ActivityEvent, CartEvent, ChatInbound
from shared.contracts.base import Email, ShortText, error_sentence
from shared.contracts.ingress import Cart
from shared.ids import derived_id
from shared.links import valid_signature
from shared.topics import CHAT_INBOUND, STOREFRONT_ACTIVITY, STOREFRONT_CART

CHANNEL = "online_store_chat"
WEB = Path(__file__).resolve().parent / "web"
API = "/storefront/api"

#: A chat token opens its thread for this long (the customer's browser keeps it).
CHAT_TOKEN_SECONDS = 90 * 24 * 3600
CHAT_TOKEN = "storefront-chat"
CUSTOMER_TICKET = "storefront-events"
#: Longest message a customer may write (the contract allows more; a chat does not need it).
MAX_MESSAGE_CHARS = 5000
#: Largest request body, by endpoint kind (bytes). A message may be the longest text written
#: with every character JSON-escaped (an emoji is 12 bytes as `\ud83d\ude00`).
MAX_BODY = {"message": 65_536, "chat": 4096, "activity": 2048, "cart": 32_768}
#: At most N requests per window (seconds), per key (visitor, thread or client address).
RATE_LIMITS: dict[str, tuple[int, float]] = {
    "chat": (30, 60.0),
    "message": (20, 60.0),
    "activity": (120, 60.0),
    "cart": (60, 60.0),
    "read": (240, 60.0),
}
#: Most messages a thread read returns (the newest).
THREAD_LIMIT = 200

VisitorId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{8,100}$")]
IMAGES_REFUSED = (
    "images and other attachments cannot be sent in this chat; send your message as text"
)
SHOP_NOT_FOUND = "shop not found"


# --- plumbing: bodies, limits, shops ---------------------------------------------------------


class RateLimiter:
    """A sliding window per key, in memory (per gateway instance: a sanity limit, not a quota)."""

    def __init__(self, limits: dict[str, tuple[int, float]], max_keys: int = 100_000) -> None:
        self._limits = limits
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._max_keys = max_keys

    def check(self, kind: str, key: str) -> None:
        limit, window = self._limits[kind]
        now = time.monotonic()
        if len(self._hits) > self._max_keys:
            self._prune(now)
        hits = self._hits.setdefault((kind, key), deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            retry = max(1, int(hits[0] + window - now) + 1)
            raise HTTPException(429, "too many requests; slow down", {"Retry-After": str(retry)})
        hits.append(now)

    def _prune(self, now: float) -> None:
        longest = max(window for _, window in self._limits.values())
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - longest]:
            del self._hits[key]


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    if not hasattr(state, "storefront_limiter"):
        state.storefront_limiter = RateLimiter(RATE_LIMITS)
    return state.storefront_limiter


async def _body(request: Request, kind: str) -> bytes:
    """The raw body, refused (413) past the endpoint's size before it is all read."""
    limit = MAX_BODY[kind]
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HTTPException(413, f"request body too large (at most {limit} bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"request body too large (at most {limit} bytes)")
    return bytes(body)


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], raw: bytes) -> M:
    """A JSON body (whatever its content type: `sendBeacon` sends text/plain) as `model`."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise HTTPException(422, error_sentence(exc.errors()) or "invalid request body") from None


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.service.pool


def _settings(request: Request) -> Any:
    return request.app.state.service.settings


async def _shop(request: Request, shop_id: str) -> asyncpg.Record:
    state = request.app.state
    if not hasattr(state, "storefront_shops"):
        state.storefront_shops = {}
    cache: dict[str, tuple[float, asyncpg.Record]] = state.storefront_shops
    hit = cache.get(shop_id)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    if len(shop_id) > 64:
        raise HTTPException(404, SHOP_NOT_FOUND)
    row = await _pool(request).fetchrow(
        "SELECT shop_id, name, domain, currency FROM shops WHERE shop_id = $1", shop_id
    )
    if row is None:
        raise HTTPException(404, SHOP_NOT_FOUND)
    if len(cache) > 10_000:
        cache.clear()
    cache[shop_id] = (time.monotonic() + 30.0, row)
    return row


async def _publish(request: Request, topic: str, event: BaseModel) -> None:
    try:
        await request.app.state.service.producer.send_and_wait(topic, event)
    except KafkaError:
        raise HTTPException(503, "could not be sent right now; try again") from None


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --- chat sessions ----------------------------------------------------------------------------


class ChatSession(BaseModel):
    """What the widget keeps to go on with a chat (in the customer's browser)."""

    token: str = Field(description="the credential of this one thread: `Authorization: Bearer`")
    shop_id: str
    thread_ref: str
    visitor_id: str
    conversation_id: str
    customer: dict[str, str | None]


def _session(
    request: Request, shop_id: str, thread_ref: str, visitor_id: str, name: str | None,
    email: str | None,
) -> ChatSession:
    token = live.sign(
        _settings(request).link_signing_secret, CHAT_TOKEN,
        [shop_id, thread_ref, visitor_id, name or "", email or ""], CHAT_TOKEN_SECONDS,
    )
    conversation_id = derived_id("conversation", shop_id, CHANNEL, thread_ref)
    return ChatSession(
        token=token, shop_id=shop_id, thread_ref=thread_ref, visitor_id=visitor_id,
        conversation_id=str(conversation_id), customer={"name": name, "email": email},
    )


class Chat(BaseModel):
    """The thread a chat token opens."""

    shop_id: str
    thread_ref: str
    visitor_id: str
    name: str | None
    email: str | None

    @property
    def conversation_id(self) -> str:
        return str(derived_id("conversation", self.shop_id, CHANNEL, self.thread_ref))


chat_bearer = HTTPBearer(auto_error=False, scheme_name="chatToken")


def _chat(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Chat:
    if credentials is None:
        raise HTTPException(401, "missing chat token", {"WWW-Authenticate": "Bearer"})
    claims = live.verify(_settings(request).link_signing_secret, CHAT_TOKEN,
                         credentials.credentials)
    if claims is None or len(claims) != 5:
        raise HTTPException(401, "invalid or expired chat token", {"WWW-Authenticate": "Bearer"})
    shop_id, thread_ref, visitor_id, name, email = claims
    return Chat(shop_id=shop_id, thread_ref=thread_ref, visitor_id=visitor_id,
                name=name or None, email=email or None)


ChatCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(chat_bearer)]


# --- the API ------------------------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


class ShopInfo(BaseModel):
    shop_id: str
    name: str
    domain: str
    currency: str
    #: How often the widget signals that the customer is still there (under the presence
    #: timeout, so an open page never looks gone).
    heartbeat_seconds: float
    max_message_chars: int


@router.get(API + "/shops/{shop_id}", response_model=ShopInfo)
async def shop_info(request: Request, shop_id: str) -> ShopInfo:
    shop = await _shop(request, shop_id)
    timeout = _settings(request).presence_timeout_seconds
    return ShopInfo(
        shop_id=shop["shop_id"], name=shop["name"], domain=shop["domain"],
        currency=shop["currency"], heartbeat_seconds=round(min(18.0, max(1.0, timeout * 0.3)), 1),
        max_message_chars=MAX_MESSAGE_CHARS,
    )


class StoreProduct(BaseModel):
    product_id: str
    title: str
    price: str
    currency: str
    url: str | None
    image_url: str | None


@router.get(API + "/shops/{shop_id}/products")
async def shop_products(request: Request, shop_id: str) -> dict[str, list[StoreProduct]]:
    """What the shop sells on its Online Store (the demo storefront's shelf)."""
    await _shop(request, shop_id)
    rows = await _pool(request).fetch(
        """SELECT product_id, title, price, currency, url, image_url FROM products
           WHERE shop_id = $1 AND online_store ORDER BY lower(title), product_id LIMIT 100""",
        shop_id,
    )
    return {"items": [StoreProduct(**{**dict(r), "price": str(r["price"])}) for r in rows]}


class StartChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visitor_id: VisitorId
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    email: Email | None = Field(
        default=None, description="where replies go by email once the customer left the store"
    )


@router.post(API + "/shops/{shop_id}/chats", response_model=ChatSession, status_code=201)
async def start_chat(request: Request, shop_id: str) -> ChatSession:
    """A new thread for this visitor: nothing is published until the first message."""
    raw = await _body(request, "chat")
    await _shop(request, shop_id)
    _limiter(request).check("chat", _client(request))
    body = _parse(StartChatIn, raw)
    thread_ref = f"web-{secrets.token_urlsafe(18)}"
    return _session(request, shop_id, thread_ref, body.visitor_id, body.name, body.email)


class ResumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shop_id: Annotated[str, StringConstraints(max_length=64)]
    conversation_id: Annotated[str, StringConstraints(max_length=64)]
    sig: Annotated[str, StringConstraints(max_length=128)]


@router.post(API + "/chats/resume", response_model=ChatSession)
async def resume_chat(request: Request) -> ChatSession:
    """Back into a conversation from the signed link of an email."""
    raw = await _body(request, "chat")
    _limiter(request).check("chat", _client(request))
    body = _parse(ResumeIn, raw)
    if not valid_signature(_settings(request).link_signing_secret, body.shop_id,
                           body.conversation_id, body.sig):
        raise HTTPException(403, "this link is not valid")
    return await _resume(request, body.shop_id, body.conversation_id)


async def _resume(request: Request, shop_id: str, conversation_id: str) -> ChatSession:
    cid = parse_uuid(conversation_id, "conversation not found")
    row = await _pool(request).fetchrow(
        """SELECT thread_ref, visitor_id, customer_name, customer_email FROM conversations
           WHERE shop_id = $1 AND conversation_id = $2 AND channel = $3""",
        shop_id, cid, CHANNEL,
    )
    if row is None:
        raise HTTPException(404, "conversation not found")
    visitor_id = row["visitor_id"] or f"v-{uuid.uuid4()}"
    return _session(request, shop_id, row["thread_ref"], visitor_id, row["customer_name"],
                    row["customer_email"])


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
async def post_message(request: Request, credentials: ChatCredentials) -> Posted:
    """The customer writes: one event on `chat.inbound`."""
    chat = _chat(request, credentials)
    raw = await _body(request, "message")
    _limiter(request).check("message", chat.thread_ref)
    body = _parse(MessageIn, raw)
    await _shop(request, chat.shop_id)
    event_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    customer = {k: v for k, v in (("name", chat.name), ("email", chat.email)) if v}
    try:
        event = ChatInbound(
            event_id=event_id, shop_id=chat.shop_id, channel=CHANNEL, thread_ref=chat.thread_ref,
            text=body.text, sent_at=now, customer=customer or None, visitor_id=chat.visitor_id,
        )
    except ValidationError as exc:
        raise HTTPException(422, error_sentence(exc.errors())) from None
    await _publish(request, CHAT_INBOUND, event)
    return Posted(
        message_id=str(derived_id("message", chat.shop_id, event_id)),
        conversation_id=chat.conversation_id, sent_at=now,
    )


class ThreadMessage(BaseModel):
    message_id: str
    author: Literal["customer", "shop"]
    text: str | None
    product: dict[str, Any] | None = None
    discount: dict[str, Any] | None = None
    image_url: str | None = None
    via: Literal["chat", "email"] = "chat"
    at: datetime


class Thread(BaseModel):
    conversation_id: str
    #: False until the first message has reached the conversation.
    started: bool
    customer: dict[str, str | None]
    messages: list[ThreadMessage]


_SHOWN_PRODUCT = ("title", "price", "currency", "url", "image_url")


def _thread_message(row: asyncpg.Record) -> ThreadMessage:
    content = row["content"]
    if isinstance(content, str):
        content = json.loads(content)
    content = content or {}
    product = content.get("product")
    discount = content.get("discount")
    return ThreadMessage(
        message_id=str(row["message_id"]),
        author=row["author"],
        text=row["text"] if row["author"] == "customer" else content.get("text", row["text"]),
        product={k: product.get(k) for k in _SHOWN_PRODUCT} if product else None,
        discount={"code": discount.get("code"), "url": discount.get("url")} if discount else None,
        image_url=content.get("image_url"),
        via=row["via"],
        at=row["at"],
    )


@router.get(API + "/chat", response_model=Thread)
async def read_thread(request: Request, credentials: ChatCredentials) -> Thread:
    """The thread as the customer sees it: their messages, what reached their chat, and the
    replies that went by email while they were away."""
    chat = _chat(request, credentials)
    _limiter(request).check("read", chat.thread_ref)
    db = _pool(request)
    cid = uuid.UUID(chat.conversation_id)
    started = bool(await db.fetchval(
        "SELECT 1 FROM conversations WHERE conversation_id = $1 AND shop_id = $2",
        cid, chat.shop_id,
    ))
    rows = await db.fetch(
        """SELECT * FROM (
             SELECT message_id::text, 'customer' AS author, text, content, 'chat' AS via,
                    sent_at AS at
               FROM messages WHERE conversation_id = $1 AND direction = 'inbound'
             UNION ALL
             SELECT s.message_id, 'shop', NULL, s.content, 'chat', coalesce(m.sent_at, s.sent_at)
               FROM storefront_chat_messages s
               -- a reply is ordered by when it was written (one delivery batch shares a time)
               LEFT JOIN messages m ON m.message_id::text = s.message_id
              WHERE s.shop_id = $2 AND s.thread_ref = $3
             UNION ALL
             SELECT message_id::text, 'shop', text, content, 'email', sent_at
               FROM messages WHERE conversation_id = $1 AND direction = 'outbound'
                AND channel = 'email' AND delivery_status = 'sent'
           ) thread ORDER BY at DESC, message_id LIMIT $4""",
        cid, chat.shop_id, chat.thread_ref, THREAD_LIMIT,
    ) if started else []
    return Thread(
        conversation_id=chat.conversation_id, started=started,
        customer={"name": chat.name, "email": chat.email},
        messages=[_thread_message(r) for r in reversed(rows)],
    )


@router.post(API + "/chat/events/ticket", response_model=live.Ticket)
async def chat_events_ticket(request: Request, credentials: ChatCredentials) -> live.Ticket:
    chat = _chat(request, credentials)
    ticket = live.sign(_settings(request).link_signing_secret, CUSTOMER_TICKET,
                       [chat.shop_id, chat.conversation_id], live.TICKET_SECONDS)
    return live.Ticket(ticket=ticket, expires_in=live.TICKET_SECONDS)


@router.get(API + "/chat/events")
async def chat_events(
    request: Request, ticket: Annotated[str | None, Query(max_length=4096)] = None
) -> Response:
    """`changed` whenever the thread changed (then read it again); `ready` first."""
    claims = live.verify(_settings(request).link_signing_secret, CUSTOMER_TICKET, ticket)
    if claims is None or len(claims) != 2:
        raise HTTPException(401, "invalid or expired ticket")
    shop_id, conversation_id = claims
    return await live.stream(request, shop_id, conversation_id,
                             {"conversation_id": conversation_id})


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visitor_id: VisitorId
    type: Literal["heartbeat", "page_view", "left"]


@router.post(API + "/shops/{shop_id}/activity", status_code=202)
async def activity(request: Request, shop_id: str) -> dict[str, str]:
    """A presence signal: the page was opened, is still open, or was left."""
    raw = await _body(request, "activity")
    body = _parse(ActivityIn, raw)
    await _shop(request, shop_id)
    _limiter(request).check("activity", f"{shop_id}:{body.visitor_id}")
    event = ActivityEvent(event_id=str(uuid.uuid4()), shop_id=shop_id,
                          visitor_id=body.visitor_id, type=body.type, at=datetime.now(UTC))
    await _publish(request, STOREFRONT_ACTIVITY, event)
    return {"status": "accepted"}


class CartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visitor_id: VisitorId
    action: Literal["add", "remove"]
    product_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1
    cart: Cart


class CartProductIn(BaseModel):
    title: ShortText
    price: Decimal


@router.post(API + "/shops/{shop_id}/cart", status_code=202)
async def cart(request: Request, shop_id: str) -> dict[str, str]:
    """A product added to or removed from the cart; the product is the shop's own record."""
    raw = await _body(request, "cart")
    body = _parse(CartIn, raw)
    await _shop(request, shop_id)
    _limiter(request).check("cart", f"{shop_id}:{body.visitor_id}")
    product = await _pool(request).fetchrow(
        """SELECT product_id, title, price FROM products
           WHERE shop_id = $1 AND product_id = $2 AND online_store""",
        shop_id, body.product_id,
    )
    if product is None:
        raise HTTPException(422, f"product {body.product_id!r} is not sold in this store")
    try:
        event = CartEvent(
            event_id=str(uuid.uuid4()), shop_id=shop_id, visitor_id=body.visitor_id,
            action=body.action, quantity=body.quantity, cart=body.cart, at=datetime.now(UTC),
            product={"id": product["product_id"], "title": product["title"],
                     "price": str(product["price"])},
        )
    except ValidationError as exc:
        raise HTTPException(422, error_sentence(exc.errors())) from None
    await _publish(request, STOREFRONT_CART, event)
    return {"status": "accepted"}


# --- pages ----------------------------------------------------------------------------------------

_CONTINUE_INVALID = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link not valid</title></head><body style="font-family: system-ui, sans-serif;
max-width: 36rem; margin: 3rem auto; padding: 0 1rem"><h1>This link is not valid</h1>
<p>The link to continue the chat is incomplete or was changed. Open it again from the email,
or start a new chat from the store.</p></body></html>"""


@router.get("/chat/continue")
async def continue_chat(
    request: Request,
    shop: Annotated[str, Query(max_length=64)] = "",
    conversation: Annotated[str, Query(max_length=64)] = "",
    sig: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """The link in a reply sent by email: back to the store with that conversation open.

    The signature is checked here and again when the page resumes the chat; the redirect
    carries it in the fragment, which browsers never send to a server."""
    if not (shop and conversation and sig) or not valid_signature(
        _settings(request).link_signing_secret, shop, conversation, sig
    ):
        return HTMLResponse(_CONTINUE_INVALID, status_code=403, headers=SECURITY_HEADERS)
    target = f"/storefront/demo?shop={shop}#continue={conversation}.{sig}"
    return RedirectResponse(target, status_code=303, headers={"Referrer-Policy": "no-referrer"})


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@router.get("/storefront/demo")
async def demo_storefront() -> FileResponse:
    """A demo storefront (`?shop=<id>`): products, a cart and the chat widget."""
    return FileResponse(
        WEB / "storefront" / "demo.html",
        headers={**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP,
                 "Cache-Control": "no-cache"},
    )


# --- CORS for the widget's API (a shop's pages are on another origin) -----------------------------


class StorefrontCors:
    """The widget runs on the shop's own pages: its API answers any origin. It uses no cookies
    (the chat token travels in a header), so allowing every origin gives nothing away."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API + "/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            response = Response(status_code=204, headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            })
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"], (b"access-control-allow-origin", b"*"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)
