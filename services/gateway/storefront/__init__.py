"""The customer-facing side of online store chat: the small HTTP API the storefront chat widget
calls (`/storefront/api/…`), the widget and a demo storefront (`/storefront/…`), and the
"continue the chat" link from emails (`/chat/continue`).

What a customer does becomes an ingress event, validated with the shared contracts and
published like any other producer would: a message on `chat.inbound` (channel
`online_store_chat`), presence signals on `storefront.activity`, cart changes on
`storefront.cart`. What the merchant sends comes back from the customer's mailbox
(`storefront_chat_messages`, written by the notifier), plus the replies that went by email
while the customer was away.

A chat is a thread of its own (`thread_ref`) with a signed token for it (`sessions`): the
token is the customer's only credential and opens that thread only. Requests are small (bodies
are capped) and rate-limited per visitor, thread and address.

- `chat`: start, resume, write, read the thread, follow it live;
- `shop`: the shop, its products, presence signals and cart changes;
- `pages`: the demo storefront and the "continue the chat" link;
- `cors`: cross-origin answers for the widget's API;
- `common`, `sessions`, `thread`, `queries`: what those share.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.gateway.storefront import chat, pages, shop
from services.gateway.storefront.common import keep_state
from services.gateway.storefront.cors import StorefrontCors
from shared.config import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """The storefront's routes and what each gateway instance keeps for them (rate limits, the
    shop cache). Its CORS is added with the other middleware, in `create_app`."""
    keep_state(app, settings)
    for part in (shop, chat, pages):
        app.include_router(part.router)


__all__ = ["StorefrontCors", "install"]
