"""The merchant's commands (`inbox.commands`), each applied by the handler its type names.

Handlers are looked up in a table by command type (as a message bus does) rather than matched
one by one, so adding a command is one method and one table entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.router import blocking
from services.router import queries as q
from services.router import shop_queries as sq
from services.router.assignment import Assigner
from services.router.entries import TimelineEntry
from services.router.metrics import COMMANDS_REJECTED, FIRST_RESPONSE, REPLIES
from services.router.order_updates import OrderUpdates
from services.router.rules import reply_preview
from services.router.timeline import Timeline
from shared.contracts import (
    AddNoteCommand,
    AssignCommand,
    BlockCommand,
    MarkUnreadCommand,
    OutboundContent,
    ReplyCommand,
    SetStatusCommand,
    SetSubjectCommand,
    TurnOffOrderUpdatesCommand,
    UnassignCommand,
    UnblockCommand,
)
from shared.ids import derived_id
from shared.kafka.consumer import Rejected
from shared.rules import (
    RuleViolation,
    check_assignable,
    customer_is_online,
    customer_key,
    discount_link,
    product_link,
    reply_path,
)

#: Commands after which a waiting conversation may be assigned: a place freed (closed,
#: unassigned, given to someone else), or a conversation reopened without an assignee.
FREES_OR_NEEDS_AN_ASSIGNEE = frozenset({AssignCommand, UnassignCommand, SetStatusCommand})

CommandHandler = Callable[[asyncpg.Connection, asyncpg.Record, Any], Awaitable[None]]


class Commands:
    def __init__(
        self, timeline: Timeline, order_updates: OrderUpdates, presence_timeout: timedelta,
        assigner: Assigner,
    ) -> None:
        self.timeline = timeline
        self.order_updates = order_updates
        self.presence_timeout = presence_timeout
        self.assigner = assigner
        self.handlers: dict[type, CommandHandler] = {
            ReplyCommand: self._reply,
            AssignCommand: self._assign,
            UnassignCommand: self._unassign,
            SetStatusCommand: self._set_status,
            MarkUnreadCommand: self._mark_unread,
            SetSubjectCommand: self._set_subject,
            AddNoteCommand: self._add_note,
            TurnOffOrderUpdatesCommand: self._turn_off_order_updates,
            BlockCommand: self._block,
            UnblockCommand: self._unblock,
        }

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
            handler = self.handlers.get(type(command))
            if handler is None:
                continue  # a type this router does not apply: nothing to do
            try:
                await handler(conn, conversation, command)
            except RuleViolation as exc:
                COMMANDS_REJECTED.labels(command.type).inc()
                raise Rejected(str(exc)) from exc
            if type(command) in FREES_OR_NEEDS_AN_ASSIGNEE:
                await self.assigner.assign_waiting_in(conn, {command.shop_id})

    async def _command_item(
        self,
        conn: asyncpg.Connection,
        conversation: asyncpg.Record,
        command: Any,
        kind: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        await self.timeline.append(conn, conversation, TimelineEntry(
            item_id=derived_id("command", command.shop_id, command.command_id),
            kind=kind,
            author="staff",
            staff_id=command.staff_id,
            at=datetime.now(UTC),
            data=data,
        ))

    # --- conversation state -----------------------------------------------------------------------

    async def _assign(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: AssignCommand
    ) -> None:
        assignee = await q.staff_member(conn, command.shop_id, command.assignee_staff_id)
        if assignee is None:
            raise RuleViolation(f"no staff member {command.assignee_staff_id!r}")
        check_assignable(assignee["name"], assignee["permissions"], assignee["active"])
        await q.assign(conn, conversation["conversation_id"], command.assignee_staff_id)
        await self._command_item(conn, conversation, command, "assigned", {
            "assignee_staff_id": command.assignee_staff_id,
            "assignee_name": assignee["name"],
        })

    async def _unassign(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: UnassignCommand
    ) -> None:
        await q.assign(conn, conversation["conversation_id"], None)
        await self._command_item(conn, conversation, command, "unassigned", {
            "previous_assignee_staff_id": conversation["assignee_staff_id"],
        })

    async def _set_status(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: SetStatusCommand
    ) -> None:
        await q.set_status(conn, conversation["conversation_id"], command.status)
        await self._command_item(conn, conversation, command, "status_changed",
                                 {"status": command.status})

    async def _block(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: BlockCommand
    ) -> None:
        await blocking.block(conn, conversation, command.reason, command.staff_id,
                             datetime.now(UTC))
        await self._command_item(conn, conversation, command, "blocked",
                                 {"reason": command.reason})

    async def _unblock(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: UnblockCommand
    ) -> None:
        await blocking.unblock(conn, conversation)
        await self._command_item(conn, conversation, command, "unblocked")

    async def _mark_unread(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: MarkUnreadCommand
    ) -> None:
        await q.mark_unread(conn, conversation["conversation_id"])
        await self._command_item(conn, conversation, command, "marked_unread")

    async def _set_subject(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: SetSubjectCommand
    ) -> None:
        await q.set_subject(conn, conversation["conversation_id"], command.subject)
        # The subject is for staff with the messaging permission only: the timeline item
        # says that it changed, not what it says.
        await self._command_item(conn, conversation, command, "subject_changed")

    async def _add_note(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: AddNoteCommand
    ) -> None:
        note_id = derived_id("note", command.shop_id, command.command_id)
        key = customer_key(conversation["customer_id"], conversation["customer_email"],
                           str(conversation["conversation_id"]))
        await q.insert_note(conn, note_id, command.shop_id, key, command.staff_id,
                            command.text, datetime.now(UTC))
        await self._command_item(conn, conversation, command, "note_added",
                                 {"note_id": str(note_id)})

    async def _turn_off_order_updates(
        self,
        conn: asyncpg.Connection,
        conversation: asyncpg.Record,
        command: TurnOffOrderUpdatesCommand,
    ) -> None:
        if not await sq.turn_off_order_updates(conn, command.shop_id, command.order_id):
            raise RuleViolation(f"no order {command.order_id!r} in this shop")
        await self.order_updates.staff_turned_off(conn, command)
        await self._command_item(conn, conversation, command, "order_updates_off",
                                 {"order_id": command.order_id})

    # --- replies ----------------------------------------------------------------------------------

    async def _reply_content(
        self, conn: asyncpg.Connection, command: ReplyCommand, now: datetime
    ) -> OutboundContent:
        """What the reply carries, after the rules on products and discount codes."""
        fields: dict[str, Any] = {"text": command.text}
        if command.product_id:
            facts = await sq.product(conn, command.shop_id, command.product_id)
            fields["product"] = product_link(facts, command.product_id)
        if command.discount_code:
            facts = await sq.discount(conn, command.shop_id, command.discount_code)
            store = await sq.shop_storefront(conn, command.shop_id)
            fields["discount"] = discount_link(
                facts, command.discount_code, store["domain"] if store else "", now,
                store["storefront_url"] if store else None)
        if command.image_url:
            fields["image_url"] = str(command.image_url)
        return OutboundContent(**fields)

    async def _reply(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, command: ReplyCommand
    ) -> None:
        if conversation["redacted_at"] is not None:
            raise RuleViolation("the customer's data was erased: there is nobody to answer")
        now = datetime.now(UTC)
        content = await self._reply_content(conn, command, now)
        waited_since = await q.first_customer_message_without_staff_reply(
            conn, conversation["conversation_id"])
        if waited_since is not None:
            FIRST_RESPONSE.labels(conversation["channel"]).observe(
                max(0.0, (now - waited_since).total_seconds()))
        message_id = derived_id("message", command.shop_id, command.command_id)
        online = customer_is_online(conversation["customer_online"],
                                    conversation["last_customer_message_at"], now,
                                    self.presence_timeout)
        path = reply_path(conversation["channel"], online, conversation["customer_email"])
        route = "held" if path.channel is None else (
            "email_fallback" if path.email_fallback else "channel")
        REPLIES.labels(conversation["channel"], route).inc()
        await self.timeline.store_outbound(
            conn,
            conversation,
            message_id=message_id,
            author="staff",
            staff_id=command.staff_id,
            channel=path.channel or conversation["channel"],
            source_id=command.command_id,
            at=now,
            text=command.text,
            content=content,
            preview=reply_preview(content),
            delivery_status="pending" if path.channel else "held",
            delivery_reason=path.held_reason,
            data={
                "channel": path.channel or conversation["channel"],
                "email_fallback": path.email_fallback,
                "held": path.channel is None,
                **content.model_dump(mode="json", exclude_none=True, exclude={"text"}),
            },
            # As before, a replayed reply is not skipped here: its timeline item (keyed by the
            # message id) then refuses it.
            once=False,
        )
        if path.channel is None:
            return  # held until the customer is back (see on_presence)
        await self.timeline.send(conn, conversation, message_id=message_id, content=content,
                                 kind="human_reply", staff_id=command.staff_id, at=now,
                                 channel=path.channel)
