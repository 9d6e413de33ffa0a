"""The router's handlers: each runs inside the consume loop's transaction (see shared.kafka)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.router import queries as q
from services.router.rules import preview, reply_route
from shared.contracts import (
    ChatInbound,
    DeliveryResult,
    MarkUnreadCommand,
    OutboundContent,
    OutboundMessage,
    Recipient,
    ReplyCommand,
    SetStatusCommand,
    TimelineItem,
)
from shared.db.outbox import Outbox
from shared.ids import derived_id
from shared.kafka.consumer import Rejected
from shared.topics import INBOX_TIMELINE


class Router:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

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
    ) -> None:
        """Append to the conversation's timeline and announce it on the timeline topic."""
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
        for event in events:
            await self._customer_message(conn, event)

    async def _customer_message(self, conn: asyncpg.Connection, event: ChatInbound) -> None:
        if not await q.shop_exists(conn, event.shop_id):
            raise Rejected(f"unknown shop {event.shop_id!r}")
        conversation = await q.upsert_conversation_for_message(
            conn,
            derived_id("conversation", event.shop_id, event.channel, event.thread_ref),
            event,
            preview(event.text, fallback="(attachment)"),
        )
        message_id = derived_id("message", event.shop_id, event.event_id)
        attachments = [a.model_dump(mode="json") for a in event.attachments]
        await q.insert_message(
            conn,
            message_id=message_id,
            conversation_id=conversation["conversation_id"],
            shop_id=event.shop_id,
            direction="inbound",
            author="customer",
            channel=event.channel,
            source_id=event.event_id,
            sent_at=event.sent_at,
            text=event.text,
            content={"attachments": attachments} if attachments else {},
        )
        await self._timeline(
            conn,
            conversation,
            item_id=message_id,
            kind="customer_message",
            author="customer",
            at=event.sent_at,
            text=event.text,
            message_id=message_id,
            data={"attachments": attachments} if attachments else None,
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
            match command:
                case ReplyCommand():
                    await self._reply(conn, conversation, command)
                case SetStatusCommand():
                    await q.set_status(conn, conversation["conversation_id"], command.status)
                    await self._command_item(conn, conversation, command, "status_changed",
                                             {"status": command.status})
                case MarkUnreadCommand():
                    await q.mark_unread(conn, conversation["conversation_id"])
                    await self._command_item(conn, conversation, command, "marked_unread")
                case _:
                    raise Rejected(f"command type {command.type!r} is not supported yet")

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

    async def _reply(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: ReplyCommand
    ) -> None:
        now = datetime.now(UTC)
        message_id = derived_id("message", command.shop_id, command.command_id)
        content = OutboundContent(
            text=command.text, image_url=str(command.image_url) if command.image_url else None
        )
        await q.insert_message(
            conn,
            message_id=message_id,
            conversation_id=conversation["conversation_id"],
            shop_id=command.shop_id,
            direction="outbound",
            author="staff",
            staff_id=command.staff_id,
            channel=conversation["channel"],
            source_id=command.command_id,
            sent_at=now,
            text=command.text,
            content=content.model_dump(mode="json", exclude_none=True),
            delivery_status="pending",
        )
        await q.set_last_message(
            conn, conversation["conversation_id"], now, preview(command.text, "(attachment)")
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
            data={"channel": conversation["channel"], "delivery_status": "pending"},
        )
        outbound = OutboundMessage(
            event_id=str(message_id),
            message_id=str(message_id),
            shop_id=command.shop_id,
            conversation_id=str(conversation["conversation_id"]),
            channel=conversation["channel"],
            recipient=Recipient(
                thread_ref=conversation["thread_ref"],
                email=conversation["customer_email"],
                name=conversation["customer_name"],
                visitor_id=conversation["visitor_id"],
            ),
            content=content,
            staff_id=command.staff_id,
            created_at=now,
        )
        await self.outbox.add(conn, reply_route(conversation["channel"]), outbound)

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
                await upsert(conn, event)

        return handle
