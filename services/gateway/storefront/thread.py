"""A chat's thread as its customer sees it: who wrote, what, by which way, and when."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel


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


#: What a customer is shown of a product in a reply (not the shop's own fields).
_SHOWN_PRODUCT = ("title", "price", "currency", "url", "image_url")


def thread_message(row: asyncpg.Record) -> ThreadMessage:
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
