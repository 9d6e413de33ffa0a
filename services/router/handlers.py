"""The router's handlers: each runs inside the consume loop's transaction (see shared.kafka)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.router import queries as q
from services.router.ingest import require_known_shops, store_customer_messages
from services.router.metrics import (
    COMMANDS_REJECTED,
    DELIVERY_RESULTS,
    HELD_RELEASED,
    REPLIES,
)
from services.router.order_updates import OrderUpdates
from services.router.rules import reply_preview, reply_route
from shared.contracts import (
    AddNoteCommand,
    AssignCommand,
    CartEvent,
    ChatInbound,
    DeliveryResult,
    MarkUnreadCommand,
    OrderEvent,
    OutboundContent,
    OutboundMessage,
    PresenceChanged,
    Recipient,
    ReplyCommand,
    SetStatusCommand,
    SetSubjectCommand,
    TimelineItem,
    TopicTag,
    TurnOffOrderUpdatesCommand,
    UnassignCommand,
)
from shared.db.outbox import Outbox
from shared.ids import derived_id
from shared.kafka.consumer import Rejected
from shared.rules import (
    IMAGE_REFUSED,
    RuleViolation,
    add_topic,
    cart_event_text,
    cart_header,
    check_assignable,
    customer_is_online,
    customer_key,
    discount_link,
    order_status,
    product_link,
    reply_path,
)
from shared.topics import INBOX_TIMELINE


class Router:
    def __init__(self, outbox: Outbox, presence_timeout: timedelta) -> None:
        self.outbox = outbox
        self.presence_timeout = presence_timeout
        self.order_updates = OrderUpdates(self)

    async def _timeline(
        self,
        conn: asyncpg.Connection,
        conversation: asyncpg.Record,
        *,
        item_id: uuid.UUID,
        kind: str,
        author: str,
        at: datetime,
        text: str | None = None,
        message_id: uuid.UUID | None = None,
        staff_id: str | None = None,
        data: dict[str, Any] | None = None,
        seq: int | None = None,
    ) -> None:
        """Append to the conversation's timeline (at `seq` when the caller reserved it) and
        announce it on the timeline topic."""
        seq = await q.append_timeline(
            conn,
            item_id=item_id,
            conversation_id=conversation["conversation_id"],
            kind=kind,
            author=author,
            at=at,
            text=text,
            message_id=message_id,
            staff_id=staff_id,
            data=data,
            seq=seq,
        )
        item = TimelineItem(
            event_id=str(item_id),
            shop_id=conversation["shop_id"],
            conversation_id=str(conversation["conversation_id"]),
            channel=conversation["channel"],
            seq=seq,
            kind=kind,  # type: ignore[arg-type]
            at=at,
            message_id=str(message_id) if message_id else None,
            author=author,  # type: ignore[arg-type]
            staff_id=staff_id,
            text=text,
            data=data or {},
        )
        await self.outbox.add(conn, INBOX_TIMELINE, item)

    # --- customer messages ------------------------------------------------------------------------

    async def on_chat_inbound(self, conn: asyncpg.Connection, events: list[ChatInbound]) -> None:
        for event, refused in await store_customer_messages(conn, self.outbox, events):
            await self._refuse_attachments(conn, event, refused)

    async def _refuse_attachments(
        self, conn: asyncpg.Connection, event: ChatInbound, refused: list[Any]
    ) -> None:
        """Tell the customer, on their channel, that the image was not accepted; the merchant
        sees the same on the timeline. The rest of the message was kept."""
        conversation_id = derived_id("conversation", event.shop_id, event.channel, event.thread_ref)
        conversation = await q.lock_conversation(conn, event.shop_id, str(conversation_id))
        assert conversation is not None  # stored just before, in this transaction
        notice_id = derived_id("attachment_refused", event.shop_id, event.event_id)
        await self._timeline(
            conn,
            conversation,
            item_id=notice_id,
            kind="attachment_refused",
            author="system",
            at=event.sent_at,
            text=IMAGE_REFUSED,
            data={"refused": len(refused)},
        )
        await self._send(
            conn,
            conversation,
            message_id=notice_id,
            content=OutboundContent(text=IMAGE_REFUSED),
            kind="automated",
            staff_id=None,
            at=event.sent_at,
        )

    # --- merchant commands ------------------------------------------------------------------------

    async def on_command(self, conn: asyncpg.Connection, commands: list[Any]) -> None:
        for command in commands:
            conversation = await q.lock_conversation(
                conn, command.shop_id, command.conversation_id
            )
            if conversation is None:
                raise Rejected(f"unknown conversation {command.conversation_id!r}")
            staff = await q.staff_member(conn, command.shop_id, command.staff_id)
            if staff is None:
                raise Rejected(f"unknown staff member {command.staff_id!r}")
            try:
                await self._apply_command(conn, conversation, command)
            except RuleViolation as exc:
                COMMANDS_REJECTED.labels(command.type).inc()
                raise Rejected(str(exc)) from exc

    async def _apply_command(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: Any
    ) -> None:
        conversation_id = conversation["conversation_id"]
        match command:
            case ReplyCommand():
                await self._reply(conn, conversation, command)
            case AssignCommand():
                assignee = await q.staff_member(conn, command.shop_id, command.assignee_staff_id)
                if assignee is None:
                    raise RuleViolation(f"no staff member {command.assignee_staff_id!r}")
                check_assignable(assignee["name"], assignee["permissions"], assignee["active"])
                await q.assign(conn, conversation_id, command.assignee_staff_id)
                await self._command_item(conn, conversation, command, "assigned", {
                    "assignee_staff_id": command.assignee_staff_id,
                    "assignee_name": assignee["name"],
                })
            case UnassignCommand():
                await q.assign(conn, conversation_id, None)
                await self._command_item(conn, conversation, command, "unassigned", {
                    "previous_assignee_staff_id": conversation["assignee_staff_id"],
                })
            case SetStatusCommand():
                await q.set_status(conn, conversation_id, command.status)
                await self._command_item(conn, conversation, command, "status_changed",
                                         {"status": command.status})
            case MarkUnreadCommand():
                await q.mark_unread(conn, conversation_id)
                await self._command_item(conn, conversation, command, "marked_unread")
            case SetSubjectCommand():
                await q.set_subject(conn, conversation_id, command.subject)
                # The subject is for staff with the messaging permission only: the timeline item
                # says that it changed, not what it says.
                await self._command_item(conn, conversation, command, "subject_changed")
            case AddNoteCommand():
                note_id = derived_id("note", command.shop_id, command.command_id)
                key = customer_key(conversation["customer_id"], conversation["customer_email"],
                                   str(conversation_id))
                await q.insert_note(conn, note_id, command.shop_id, key, command.staff_id,
                                    command.text, datetime.now(UTC))
                await self._command_item(conn, conversation, command, "note_added",
                                         {"note_id": str(note_id)})
            case TurnOffOrderUpdatesCommand():
                if not await q.turn_off_order_updates(conn, command.shop_id, command.order_id):
                    raise RuleViolation(f"no order {command.order_id!r} in this shop")
                await self.order_updates.staff_turned_off(conn, command)
                await self._command_item(conn, conversation, command, "order_updates_off",
                                         {"order_id": command.order_id})

    async def _command_item(
        self,
        conn: asyncpg.Connection,
        conversation: asyncpg.Record,
        command: Any,
        kind: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        await self._timeline(
            conn,
            conversation,
            item_id=derived_id("command", command.shop_id, command.command_id),
            kind=kind,
            author="staff",
            staff_id=command.staff_id,
            at=datetime.now(UTC),
            data=data,
        )

    async def _reply_content(
        self, conn: asyncpg.Connection, command: ReplyCommand, now: datetime
    ) -> OutboundContent:
        """What the reply carries, after the rules on products and discount codes."""
        fields: dict[str, Any] = {"text": command.text}
        if command.product_id:
            facts = await q.product(conn, command.shop_id, command.product_id)
            fields["product"] = product_link(facts, command.product_id)
        if command.discount_code:
            facts = await q.discount(conn, command.shop_id, command.discount_code)
            domain = await q.shop_domain(conn, command.shop_id)
            fields["discount"] = discount_link(facts, command.discount_code, domain, now)
        if command.image_url:
            fields["image_url"] = str(command.image_url)
        return OutboundContent(**fields)

    async def _reply(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: ReplyCommand
    ) -> None:
        now = datetime.now(UTC)
        content = await self._reply_content(conn, command, now)
        message_id = derived_id("message", command.shop_id, command.command_id)
        online = customer_is_online(conversation["customer_online"],
                                    conversation["last_customer_message_at"], now,
                                    self.presence_timeout)
        path = reply_path(conversation["channel"], online, conversation["customer_email"])
        route = "held" if path.channel is None else (
            "email_fallback" if path.email_fallback else "channel")
        REPLIES.labels(conversation["channel"], route).inc()
        await q.insert_message(
            conn,
            message_id=message_id,
            conversation_id=conversation["conversation_id"],
            shop_id=command.shop_id,
            direction="outbound",
            author="staff",
            staff_id=command.staff_id,
            channel=path.channel or conversation["channel"],
            source_id=command.command_id,
            sent_at=now,
            text=command.text,
            content=content.model_dump(mode="json", exclude_none=True),
            delivery_status="pending" if path.channel else "held",
            delivery_reason=path.held_reason,
        )
        seq = await q.set_last_message(
            conn, conversation["conversation_id"], now, reply_preview(content)
        )
        await self._timeline(
            conn,
            conversation,
            item_id=message_id,
            kind="merchant_reply",
            author="staff",
            staff_id=command.staff_id,
            at=now,
            text=command.text,
            message_id=message_id,
            data={
                "channel": path.channel or conversation["channel"],
                "email_fallback": path.email_fallback,
                "held": path.channel is None,
                **content.model_dump(mode="json", exclude_none=True, exclude={"text"}),
            },
            seq=seq,
        )
        if path.channel is None:
            return  # held until the customer is back (see on_presence)
        await self._send(conn, conversation, message_id=message_id, content=content,
                         kind="human_reply", staff_id=command.staff_id, at=now,
                         channel=path.channel)

    async def _send(
        self,
        conn: asyncpg.Connection,
        conversation: asyncpg.Record,
        *,
        message_id: uuid.UUID,
        content: OutboundContent,
        kind: str,
        staff_id: str | None,
        at: datetime,
        channel: str | None = None,
    ) -> None:
        """Put a message on the outbound topic of its channel: the one the customer wrote from,
        unless the routing rules chose another (`channel`)."""
        channel = channel or conversation["channel"]
        outbound = OutboundMessage(
            event_id=str(message_id),
            message_id=str(message_id),
            shop_id=conversation["shop_id"],
            conversation_id=str(conversation["conversation_id"]),
            channel=channel,
            kind=kind,  # type: ignore[arg-type]
            recipient=Recipient(
                thread_ref=conversation["thread_ref"],
                email=conversation["customer_email"],
                name=conversation["customer_name"],
                visitor_id=conversation["visitor_id"],
            ),
            content=content,
            staff_id=staff_id,
            created_at=at,
            shop_name=await q.shop_name_of(conn, conversation),
            conversation_channel=conversation["channel"],
        )
        await self.outbox.add(conn, reply_route(channel), outbound)

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
                    await self._send(
                        conn, conversation, message_id=held["message_id"],
                        content=OutboundContent(**held["content"]), kind="human_reply",
                        staff_id=held["staff_id"], at=change.at,
                    )

    # --- commerce context -------------------------------------------------------------------------

    async def on_cart(self, conn: asyncpg.Connection, events: list[CartEvent]) -> None:
        await require_known_shops(conn, events)
        for event in events:
            newest = await q.save_cart(conn, event)
            conversation = await q.visitor_conversation(conn, event.shop_id, event.visitor_id)
            if conversation is None:
                continue  # kept for the header of a conversation this visitor may start
            await self._timeline(
                conn,
                conversation,
                item_id=derived_id("cart", event.shop_id, event.event_id),
                kind="cart_event",
                author="customer",
                at=event.at,
                text=cart_event_text(event.action, event.product.title),
                data={
                    "action": event.action,
                    "product_id": event.product.id,
                    "quantity": event.quantity,
                    "cart": cart_header(event.cart.currency, event.cart.subtotal,
                                        [i.model_dump() for i in event.cart.items])
                    if newest else None,
                },
            )

    async def on_topic_tag(self, conn: asyncpg.Connection, tags: list[TopicTag]) -> None:
        """Tags arrive in message order per conversation (same partition key). The batch's
        conversations are locked and updated in two statements (in a stable order), each
        conversation's tags folded in in arrival order; an unknown conversation refuses the
        batch, which the consume loop then applies one tag at a time."""
        keys: dict[tuple[uuid.UUID, str], list[TopicTag]] = {}
        for tag in tags:
            try:
                conversation_id = uuid.UUID(tag.conversation_id)
            except ValueError:
                raise Rejected(f"unknown conversation {tag.conversation_id!r}") from None
            keys.setdefault((conversation_id, tag.shop_id), []).append(tag)
        topics = await q.lock_conversation_topics(conn, list(keys))
        for key, found in keys.items():
            if key not in topics:
                raise Rejected(f"unknown conversation {found[0].conversation_id!r}")
            for tag in found:
                topics[key] = add_topic(topics[key], tag.topic)
        await q.set_topics_many(conn, [(k[0], topics[k]) for k in keys])

    async def on_order(self, conn: asyncpg.Connection, events: list[OrderEvent]) -> None:
        await require_known_shops(conn, events)
        for event in events:
            await q.upsert_order(conn, event, order_status(event.type))
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
                await self._timeline(
                    conn,
                    conversation,
                    item_id=derived_id("delivery", result.event_id),
                    kind="delivery_failed",
                    author="system",
                    at=result.at,
                    message_id=message["message_id"],
                    text=result.reason,
                    data={"channel": result.channel, "error_code": result.error_code},
                )

    # --- shop data --------------------------------------------------------------------------------

    @staticmethod
    def upserting(upsert: Any) -> Any:
        async def handle(conn: asyncpg.Connection, events: list[Any]) -> None:
            for event in events:
                try:
                    await upsert(conn, event)
                except asyncpg.UniqueViolationError as exc:
                    # Trying again cannot help: the record clashes with another one.
                    raise Rejected(q.conflict_reason(exc)) from exc

        return handle
