"""What the storefront's endpoints share: the request body, the shop, rate limits, publishing,
and how a visitor's signal (presence, the cart) is read."""

from __future__ import annotations

import time
from collections import deque
from typing import Annotated, Any, TypeVar

import asyncpg
from aiokafka.errors import KafkaError
from cachetools import TTLCache
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from services.gateway import queries as q
from services.gateway.api.common import pool
from shared.config import Settings
from shared.contracts.base import error_sentence

CHANNEL = "online_store_chat"
API = "/storefront/api"
SHOP_NOT_FOUND = "shop not found"
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
#: A shop's record is reused this long (seconds): every widget request names its shop.
SHOP_CACHE_SECONDS = 30.0
SHOP_CACHE_SIZE = 10_000

VisitorId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{8,100}$")]
M = TypeVar("M", bound=BaseModel)


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


def keep_state(app: FastAPI, settings: Settings) -> None:
    """What each gateway instance keeps for the storefront: its rate limits, its shop cache."""
    limits = {**RATE_LIMITS, "chat": (settings.storefront.chat_starts_per_minute, 60.0)}
    app.state.storefront_limiter = RateLimiter(limits)
    app.state.storefront_shops = TTLCache(maxsize=SHOP_CACHE_SIZE, ttl=SHOP_CACHE_SECONDS)


def rate_limit(request: Request, kind: str, key: str) -> None:
    """A 429 past the `kind` of request's limit for `key`."""
    request.app.state.storefront_limiter.check(kind, key)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def settings(request: Request) -> Any:
    return request.app.state.service.settings


async def read_body(request: Request, kind: str) -> bytes:
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


def parse(model: type[M], raw: bytes) -> M:
    """A JSON body (whatever its content type: `sendBeacon` sends text/plain) as `model`."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise HTTPException(422, error_sentence(exc.errors()) or "invalid request body") from None


async def shop(request: Request, shop_id: str) -> asyncpg.Record:
    """The shop a request names (404 if there is none)."""
    cache: TTLCache[str, asyncpg.Record] = request.app.state.storefront_shops
    row = cache.get(shop_id)
    if row is not None:
        return row
    if len(shop_id) > 64:
        raise HTTPException(404, SHOP_NOT_FOUND)
    row = await q.shop(pool(request), shop_id)
    if row is None:
        raise HTTPException(404, SHOP_NOT_FOUND)
    cache[shop_id] = row
    return row


async def publish(request: Request, topic: str, event: BaseModel) -> None:
    try:
        await request.app.state.service.producer.send_and_wait(topic, event)
    except KafkaError:
        raise HTTPException(503, "could not be sent right now; try again") from None


class VisitorSignalIn(BaseModel):
    """What a visitor's page sends about them (presence, the cart)."""

    model_config = ConfigDict(extra="forbid")

    visitor_id: VisitorId


S = TypeVar("S", bound=VisitorSignalIn)


async def visitor_signal(request: Request, shop_id: str, kind: str, model: type[S]) -> S:
    """A visitor's signal of `kind`: its body read and parsed, its shop found, and limited per
    visitor."""
    body = parse(model, await read_body(request, kind))
    await shop(request, shop_id)
    rate_limit(request, kind, f"{shop_id}:{body.visitor_id}")
    return body
