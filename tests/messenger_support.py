"""What the Messenger tests share: Meta's stand-in driven over HTTP, a shop with its Messenger
channel connected through the merchant API, and the clock moved for both sides."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from inbox.demo import DemoShop
from shared.contracts import OrderEvent
from shared.kafka.producer import EventProducer
from shared.topics import ORDERS_EVENTS
from tests.conftest import eventually
from tests.helpers import new_shop, unique


def numeric_id() -> str:
    """Page ids and PSIDs are numeric strings."""
    return str(random.randrange(10**14, 10**15))


class Meta:
    """The Graph API stand-in, as the tests (and the customer) use it."""

    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=20)

    async def _ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    async def page(self, page_id: str, token: str, human_agent: bool = False) -> None:
        await self._ok("PUT", f"/admin/pages/{page_id}",
                       json={"access_token": token, "human_agent_approved": human_agent})

    async def message(self, page_id: str, psid: str, text: str = "Hello!", **extra: Any) -> dict:
        return await self._ok("POST", "/customer/message",
                              json={"page_id": page_id, "psid": psid, "text": text, **extra})

    async def postback(self, page_id: str, psid: str, payload: str) -> dict:
        return await self._ok("POST", "/customer/postback",
                              json={"page_id": page_id, "psid": psid, "payload": payload})

    async def optin(self, page_id: str, psid: str, user_ref: str) -> dict:
        return await self._ok("POST", "/customer/optin",
                              json={"page_id": page_id, "psid": psid, "user_ref": user_ref})

    async def sends(self, page_id: str, ok: bool | None = None) -> list[dict]:
        params: dict[str, Any] = {"page_id": page_id}
        if ok is not None:
            params["ok"] = str(ok).lower()
        return await self._ok("GET", "/admin/sends", params=params)

    async def fault(self, page_id: str, code: int, subcode: int | None = None,
                    count: int = 1) -> None:
        await self._ok("POST", f"/admin/pages/{page_id}/faults",
                       json={"code": code, "subcode": subcode, "count": count})

    async def block(self, page_id: str, psid: str) -> None:
        await self._ok("POST", f"/admin/pages/{page_id}/people/{psid}/block",
                       json={"blocked": True})

    async def redeliver(self, delivery_id: int) -> dict:
        return await self._ok("POST", f"/admin/webhooks/{delivery_id}/redeliver")


class Clock:
    """Moves the notifier's planner clock and Meta's clock together."""

    def __init__(self, notifier_url: str, meta: Meta) -> None:
        self.notifier = httpx.AsyncClient(base_url=notifier_url, timeout=10)
        self.meta = meta
        self.offset_seconds = 0.0

    async def set(self, seconds: float) -> None:
        self.offset_seconds = seconds
        response = await self.notifier.put("/dev/clock", json={"offset_seconds": seconds})
        assert response.status_code == 200, response.text
        await self.meta._ok("PUT", "/admin/clock", json={"offset_seconds": seconds})

    async def advance(self, hours: float) -> None:
        await self.set(self.offset_seconds + hours * 3600)


class MessengerShop:
    """A test's own shop with its own Page connected as the Messenger channel."""

    def __init__(self, shop: DemoShop, api: httpx.AsyncClient, page_id: str, token: str):
        self.shop, self.api, self.page_id, self.token = shop, api, page_id, token

    @property
    def shop_id(self) -> str:
        return self.shop.shop_id

    async def connect(self, page_id: str | None = None, token: str | None = None,
                      human_agent: bool = False) -> dict:
        response = await self.api.put("/channels/messenger", json={
            "page_id": page_id or self.page_id, "page_access_token": token or self.token,
            "human_agent_approved": human_agent})
        assert response.status_code == 200, response.text
        return response.json()

    async def channel(self) -> dict:
        response = await self.api.get("/channels/messenger")
        assert response.status_code == 200, response.text
        return response.json()


async def customer_writes(db: asyncpg.Pool, meta: Meta, shop: MessengerShop, psid: str,
                          text: str = "Hello!") -> asyncpg.Record:
    """A person writes to the shop's Page; their conversation, once the router stored it."""
    await meta.message(shop.page_id, psid, text)
    return await eventually(lambda: db.fetchrow(
        "SELECT * FROM conversations WHERE shop_id = $1 AND thread_ref = $2",
        shop.shop_id, f"{shop.page_id}:{psid}"))


async def messenger_shop(
    producer: EventProducer, db: asyncpg.Pool, gateway_url: str, meta: Meta,
    human_agent: bool = False, meta_human_agent: bool | None = None,
) -> MessengerShop:
    shop = await new_shop(producer, db)
    api = httpx.AsyncClient(base_url=gateway_url + "/api/v1", timeout=20, headers={
        "Authorization": f"Bearer {shop.tokens['ava']}"})
    page_id, token = numeric_id(), f"token-{unique('page')}"
    await meta.page(page_id, token, human_agent if meta_human_agent is None else meta_human_agent)
    messenger = MessengerShop(shop, api, page_id, token)
    await messenger.connect(human_agent=human_agent)
    return messenger


def order_event(shop_id: str, order_id: str, number: str, kind: str, **extra: Any) -> OrderEvent:
    return OrderEvent.model_validate({
        "event_id": unique("order-evt"), "shop_id": shop_id, "order_id": order_id,
        "order_number": number, "type": kind, "at": datetime.now(UTC),
        "customer": {"name": "Maja Berg", "email": "maja@example.se"}, **extra,
    })


async def publish_order(producer: EventProducer, event: OrderEvent) -> None:
    await producer.send_and_wait(ORDERS_EVENTS, event)


async def accepted(meta: Meta, page_id: str, match, count: int = 1,
                   timeout: float = 30) -> list[dict]:
    """Wait until Meta accepted `count` sends matching `match`; returns them."""
    async def probe() -> list[dict] | None:
        found = [s for s in await meta.sends(page_id, ok=True) if match(s)]
        return found if len(found) >= count else None

    return await eventually(probe, timeout=timeout, interval=0.2)


def text_of(send: dict) -> str:
    return (send.get("message") or {}).get("text") or ""


def template_of(send: dict) -> dict | None:
    return (send.get("message") or {}).get("template")


async def delivery(db: asyncpg.Pool, message_id: Any, status: str, timeout: float = 30) -> dict:
    return await eventually(lambda: db.fetchrow(
        """SELECT message_id, conversation_id, delivery_status, delivery_reason FROM messages
           WHERE message_id = $1 AND delivery_status = $2""", message_id, status),
        timeout=timeout)
