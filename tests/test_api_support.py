"""What the merchant API tests share (no tests here): clients per staff member, conversations
opened through `chat.inbound`, and reading back what the API published on `inbox.commands`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from inbox.demo import DemoShop
from shared.contracts import INBOX_COMMAND
from shared.kafka.producer import EventProducer
from shared.topics import CHAT_INBOUND, INBOX_COMMANDS
from tests.conftest import eventually, read_topic
from tests.helpers import chat_message

API = "/api/v1"


def client(stack: dict, shop: DemoShop | None = None, staff_id: str = "ava") -> httpx.AsyncClient:
    """An API client for one staff member of `shop` (no token without a shop)."""
    headers = {"Authorization": f"Bearer {shop.tokens[staff_id]}"} if shop else {}
    return httpx.AsyncClient(base_url=stack["gateway"].url + API, headers=headers, timeout=20)


def detail(response: httpx.Response) -> str:
    """The error message of a 4xx answer, which is always a string."""
    body = response.json()
    assert isinstance(body.get("detail"), str), body
    return body["detail"]


async def open_conversation(
    producer: EventProducer,
    db: asyncpg.Pool,
    shop_id: str,
    age: timedelta = timedelta(0),
    **overrides: Any,
) -> str:
    """Send a customer message (sent `age` ago) and return the id of its conversation once the
    router stored it."""
    message = chat_message(shop_id, sent_at=datetime.now(UTC) - age, **overrides)
    await producer.send_and_wait(CHAT_INBOUND, message)
    conversation_id = await eventually(lambda: db.fetchval(
        "SELECT conversation_id FROM conversations WHERE shop_id = $1 AND thread_ref = $2",
        shop_id, message.thread_ref,
    ))
    return str(conversation_id)


async def published(settings: Any, command_id: str) -> Any:
    """The one command with this id on `inbox.commands`."""
    records = await read_topic(settings, INBOX_COMMANDS, lambda r: command_id.encode() in r.value)
    assert len(records) == 1, f"command {command_id} published {len(records)} times"
    return INBOX_COMMAND.validate_json(records[0].value)


async def published_for(settings: Any, conversation_id: str, at_least: int) -> list[Any]:
    """Every command published for a conversation (waits briefly for one more than expected,
    so that an extra one would be seen)."""
    records = await read_topic(
        settings,
        INBOX_COMMANDS,
        lambda r: conversation_id.encode() in r.value,
        expected=at_least + 1,
        timeout=3,
    )
    return [INBOX_COMMAND.validate_json(r.value) for r in records]


async def conversation_where(api: httpx.AsyncClient, conversation_id: str, check: Any) -> dict:
    """GET the conversation until `check(detail)` holds (a command's effect is asynchronous)."""

    async def probe() -> dict | None:
        response = await api.get(f"/conversations/{conversation_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        return body if check(body) else None

    return await eventually(probe)


async def listed(api: httpx.AsyncClient, **params: Any) -> list[str]:
    """The conversation ids a list request returns (one page)."""
    response = await api.get("/conversations", params=params)
    assert response.status_code == 200, response.text
    return [row["conversation_id"] for row in response.json()["items"]]


async def set_chat_hours(stack: dict, shop: DemoShop, mode: str,
                         hours: list[dict[str, str]] | None = None,
                         away_message: str = "We're away right now; back soon.") -> None:
    """The shop's chat hours and away message, set as a merchant does (its owner, Ava)."""
    async with client(stack, shop) as api:
        response = await api.put("/settings/availability", json={
            "mode": mode, "hours": hours or [], "away_message": away_message})
    assert response.status_code == 200, response.text


async def set_instant_answer(stack: dict, shop: DemoShop, topic: str, text: str) -> None:
    async with client(stack, shop) as api:
        response = await api.put(f"/settings/instant-answers/{topic}",
                                 json={"enabled": True, "text": text})
    assert response.status_code == 200, response.text
