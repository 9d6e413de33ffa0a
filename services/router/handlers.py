"""The router's handlers: each runs inside the consume loop's transaction (see shared.kafka)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from services.router import blocking
from services.router import queries as q
from services.router import shop_queries as sq
from services.router.assignment import Assigner
from services.router.automation import AutomatedReplies
from services.router.entries import TimelineEntry
from services.router.ingest import require_known_shops, store_customer_messages
from services.router.metrics import DELIVERY_RESULTS, HELD_RELEASED
from services.router.order_updates import OrderUpdates
from services.router.timeline import Timeline
from shared.contracts import (
    CartEvent,
    ChatInbound,
    DeliveryResult,
    OrderEvent,
    OutboundContent,
    PresenceChanged,
    TopicTag,
)
from shared.ids import derived_id, uuid_or_none
from shared.kafka.consumer import Rejected
from shared.rules import (
    IMAGE_REFUSED,
    add_topic,
    cart_event_text,
    cart_header,
    discount_applied_text,
    order_status,
)


class Router:
    """The handlers of the router's topics but the merchant's commands (commands.py) and
    Messenger's events (order_updates.py); all three write through the one `Timeline`."""

    def __init__(self, timeline: Timeline, order_updates: OrderUpdates, assigner: Assigner,
                 automated: AutomatedReplies) -> None:
        self.timeline = timeline
        self.order_updates = order_updates
        self.assigner = assigner
        self.automated = automated

    # --- customer messages ------------------------------------------------------------------------

    async def on_chat_inbound(self, conn: asyncpg.Connection, events: list[ChatInbound]) -> None:
        blocked = await blocking.blocked_reasons(conn, events)
        if blocked:
            # Refused with the reason (the consume loop then takes the batch one event at a
            # time and dead-letters this one): never stored, shown or notified.
            first = min(blocked)
            raise Rejected(f"the customer is blocked in this shop: {blocked[first]}")
        for event, refused in await store_customer_messages(conn, self.timeline.outbox, events):
            await self._refuse_attachments(conn, event, refused)
        await self.automated.away_messages(conn, events)
        # New and reopened conversations wait for an assignee, if the shop assigns them.
        await self.assigner.assign_waiting_in(conn, {e.shop_id for e in events})

    async def _refuse_attachments(
        self, conn: asyncpg.Connection, event: ChatInbound, refused: list[Any]
    ) -> None:
        """Tell the customer, on their channel, that the image was not accepted; the merchant
        sees the same on the timeline. The rest of the message was kept."""
        conversation_id = derived_id("conversation", event.shop_id, event.channel, event.thread_ref)
        conversation = await q.lock_conversation(conn, event.shop_id, str(conversation_id))
        assert conversation is not None  # stored just before, in this transaction
        notice_id = derived_id("attachment_refused", event.shop_id, event.event_id)
        await self.timeline.append(conn, conversation, TimelineEntry(
            item_id=notice_id,
            kind="attachment_refused",
            author="system",
            at=event.sent_at,
            text=IMAGE_REFUSED,
            data={"refused": len(refused)},
        ))
        await self.timeline.send(
            conn,
            conversation,
            message_id=notice_id,
            content=OutboundContent(text=IMAGE_REFUSED),
            kind="automated",
            staff_id=None,
            at=event.sent_at,
        )

    # --- presence ---------------------------------------------------------------------------------

    async def on_presence(self, conn: asyncpg.Connection, changes: list[PresenceChanged]) -> None:
        for change in changes:
            conversations = await q.set_customer_presence(
                conn, change.shop_id, change.visitor_id, change.online, change.at
            )
            if not change.online:
                continue
            for conversation in conversations:  # the customer is back: release held replies
                for held in await q.take_held_replies(conn, conversation["conversation_id"]):
                    HELD_RELEASED.inc()
                    await self.timeline.send(
                        conn, conversation, message_id=held["message_id"],
                        content=OutboundContent(**held["content"]), kind="human_reply",
                        staff_id=held["staff_id"], at=change.at,
                    )

    # --- commerce context -------------------------------------------------------------------------

    async def on_cart(self, conn: asyncpg.Connection, events: list[CartEvent]) -> None:
        await require_known_shops(conn, events)
        for event in events:
            newest = await sq.save_cart(conn, event)
            conversation = await sq.visitor_conversation(conn, event.shop_id, event.visitor_id)
            if conversation is None:
                continue  # kept for the header of a conversation this visitor may start
            cart = event.cart
            header = cart_header(
                cart.currency, cart.subtotal, [i.model_dump() for i in cart.items],
                cart.discount.model_dump() if cart.discount else None,
            ) if newest else None
            if event.action == "apply_discount":  # the contract puts the code in the cart
                code = cart.discount.code if cart.discount else ""
                text = discount_applied_text(code)
                data = {"action": event.action, "discount_code": code, "cart": header}
            else:  # add or remove: the contract names the product
                title = event.product.title if event.product else ""
                text = cart_event_text(event.action, title)
                data = {"action": event.action,
                        "product_id": event.product.id if event.product else None,
                        "quantity": event.quantity, "cart": header}
            await self.timeline.append(conn, conversation, TimelineEntry(
                item_id=derived_id("cart", event.shop_id, event.event_id),
                kind="cart_event", author="customer", at=event.at, text=text, data=data,
            ))

    async def on_topic_tag(self, conn: asyncpg.Connection, tags: list[TopicTag]) -> None:
        """Tags arrive in message order per conversation (same partition key). The batch's
        conversations are locked and updated in two statements (in a stable order), each
        conversation's tags folded in in arrival order; an unknown conversation refuses the
        batch, which the consume loop then applies one tag at a time."""
        keys: dict[tuple[uuid.UUID, str], list[TopicTag]] = {}
        for tag in tags:
            conversation_id = uuid_or_none(tag.conversation_id)
            if conversation_id is None:
                raise Rejected(f"unknown conversation {tag.conversation_id!r}")
            keys.setdefault((conversation_id, tag.shop_id), []).append(tag)
        topics = await q.lock_conversation_topics(conn, list(keys))
        for key, found in keys.items():
            if key not in topics:
                raise Rejected(f"unknown conversation {found[0].conversation_id!r}")
            for tag in found:
                topics[key] = add_topic(topics[key], tag.topic)
        await q.set_topics_many(conn, [(k[0], topics[k]) for k in keys])
        await self.automated.instant_answers(conn, tags)

    async def on_order(self, conn: asyncpg.Connection, events: list[OrderEvent]) -> None:
        await require_known_shops(conn, events)
        for event in events:
            await sq.upsert_order(conn, event, order_status(event.type))
            await self.order_updates.on_order(conn, event)

    # --- delivery results -------------------------------------------------------------------------

    async def on_delivery_result(
        self, conn: asyncpg.Connection, results: list[DeliveryResult]
    ) -> None:
        for result in results:
            message = await q.record_delivery(
                conn, result.message_id, result.status, result.reason, result.at
            )
            if message is None:
                raise Rejected(f"delivery result for unknown message {result.message_id!r}")
            DELIVERY_RESULTS.labels(result.channel, result.status).inc()
            if result.status == "failed":
                conversation = await q.lock_conversation(
                    conn, result.shop_id, str(message["conversation_id"])
                )
                assert conversation is not None
                await self.timeline.append(conn, conversation, TimelineEntry(
                    item_id=derived_id("delivery", result.event_id),
                    kind="delivery_failed",
                    author="system",
                    at=result.at,
                    message_id=message["message_id"],
                    text=result.reason,
                    data={"channel": result.channel, "error_code": result.error_code},
                ))

    # --- shop data --------------------------------------------------------------------------------

    @staticmethod
    def upserting(upsert: Any) -> Any:
        async def handle(conn: asyncpg.Connection, events: list[Any]) -> None:
            for event in events:
                try:
                    await upsert(conn, event)
                except asyncpg.UniqueViolationError as exc:
                    # Trying again cannot help: the record clashes with another one.
                    raise Rejected(sq.conflict_reason(exc)) from exc

        return handle
