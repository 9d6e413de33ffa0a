"""Order updates on Messenger, and the customer's and the merchant's say over them.

- An `orders.events` event carrying `messenger_optin{user_ref, page_id}` creates the order's
  consent (one per order: a new order needs a new opt-in). It is active when the shop's channel
  is connected (or waiting for reconnection) to that Page, refused with the reason otherwise
  (no channel, another Page, channel removed). Either way the audit trail records it.
- With an active consent and the order's updates on, `created`, `shipped` (with tracking),
  `delivery_update` and `delivered` each become an order update: a message on the order's
  Messenger conversation (thread `<page_id>:user_ref:<user_ref>`, created with the consent so
  the merchant sees the updates on a timeline) and an `outbound.messenger` message of kind
  `order_update`. The notifier's planner decides at send time between free text (inside
  Meta's 24-hour window) and a utility template (outside it), and checks the consent again.
- The customer's "Order update settings" postback is answered with a prompt (quick replies:
  turn off / keep); turning off stops every active consent of that person on that Page, keeping
  changes nothing; both are acknowledged and recorded.
- The merchant's `turn_off_order_updates` (applied on `orders.updates_enabled` by the command
  handler) also turns the consent off, with the staff member in the audit trail.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.router import messenger_queries as mq
from services.router import shop_queries as sq
from services.router.entries import TimelineEntry
from services.router.rules import preview
from services.router.timeline import Timeline
from shared.contracts import (
    MessengerEvent,
    MessengerOutbound,
    MessengerRecipient,
    OrderEvent,
    OrderUpdate,
    OutboundContent,
    QuickReply,
    TurnOffOrderUpdatesCommand,
)
from shared.ids import derived_id
from shared.messenger import (
    KEEP_TITLE,
    KEPT_ACK,
    NO_UPDATES,
    ORDER_UPDATE_SETTINGS,
    ORDER_UPDATES,
    ORDER_UPDATES_KEEP,
    ORDER_UPDATES_OFF,
    SETTINGS_PROMPT,
    TURN_OFF_TITLE,
    TURNED_OFF_ACK,
    optin_decision,
    order_update_text,
    psid_thread,
    user_ref_thread,
)
from shared.topics import OUTBOUND_TOPICS

CUSTOMER_TURNED_OFF = "Turned off by the customer from Messenger (Order update settings)."
CUSTOMER_KEPT = "The customer chose to keep getting updates (Order update settings)."


def _conversation_id(shop_id: str, thread_ref: str) -> uuid.UUID:
    # The same id the router gives a conversation it opens from chat.inbound.
    return derived_id("conversation", shop_id, "messenger", thread_ref)


class OrderUpdates:
    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline

    # --- orders.events ----------------------------------------------------------------------------

    async def on_order(self, conn: asyncpg.Connection, event: OrderEvent) -> None:
        if event.messenger_optin is not None:
            await self._opt_in(conn, event)
        update = ORDER_UPDATES.get(event.type)
        if update is None:
            return
        consent = await mq.consent(conn, event.shop_id, event.order_id)
        if consent is None or consent["state"] != "active":
            return
        if not await mq.updates_enabled(conn, event.shop_id, event.order_id):
            return
        conversation = await mq.lock_conversation(conn, consent["conversation_id"])
        if conversation is None:
            return
        tracking = (event.tracking.model_dump(mode="json", exclude_none=True) if event.tracking
                    else await mq.order_tracking(conn, event.shop_id, event.order_id)) or {}
        shop_name = await sq.shop_name(conn, event.shop_id)
        text = order_update_text(update, event.order_number, shop_name, tracking)
        order_update = OrderUpdate(
            order_id=event.order_id,
            order_number=event.order_number,
            update=update,  # type: ignore[arg-type]
            tracking_number=tracking.get("number"),
            tracking_url=tracking.get("url"),
            carrier=tracking.get("carrier"),
        )
        await self._send(
            conn, conversation,
            message_id=derived_id("order_update", event.shop_id, event.event_id),
            source_id=event.event_id,
            text=text,
            kind="order_update",
            recipient=MessengerRecipient(
                thread_ref=conversation["thread_ref"], page_id=consent["page_id"],
                user_ref=consent["user_ref"], name=conversation["customer_name"],
                email=conversation["customer_email"],
            ),
            order_update=order_update,
            data={"order_update": order_update.model_dump(mode="json", exclude_none=True)},
        )

    async def _opt_in(self, conn: asyncpg.Connection, event: OrderEvent) -> None:
        optin = event.messenger_optin
        assert optin is not None
        if await mq.consent(conn, event.shop_id, event.order_id) is not None:
            return  # one consent per order: the first opt-in decides
        channel = await mq.channel(conn, event.shop_id)
        state, reason = optin_decision(channel["page_id"] if channel else None,
                                       channel["state"] if channel else None, optin.page_id)
        conversation_id = None
        if state == "active" and not await mq.shop_exists(conn, event.shop_id):
            state, reason = "refused", "Opt-in refused: the shop is unknown."
        if state == "active":
            thread_ref = user_ref_thread(optin.page_id, optin.user_ref)
            conversation = await mq.ensure_conversation(
                conn, _conversation_id(event.shop_id, thread_ref), event.shop_id, thread_ref,
                event.customer, event.at,
            )
            conversation_id = conversation["conversation_id"]
            # The checkout opt-in is the customer's action that opens Meta's window.
            await mq.touch(conn, optin.page_id, f"user_ref:{optin.user_ref}", event.at)
        consent_id = derived_id("messenger_consent", event.shop_id, event.order_id)
        await mq.insert_consent(
            conn, consent_id=consent_id, shop_id=event.shop_id, order_id=event.order_id,
            page_id=optin.page_id, user_ref=optin.user_ref, conversation_id=conversation_id,
            state=state, reason=reason, at=event.at,
        )
        await mq.record_change(
            conn, change_id=derived_id("consent_change", str(consent_id), event.event_id),
            consent_id=consent_id, shop_id=event.shop_id, order_id=event.order_id,
            change="opted_in" if state == "active" else "refused",
            actor="customer" if state == "active" else "system",
            reason=reason or "Opted in at checkout.", source_event_id=event.event_id,
            at=event.at,
        )

    # --- the merchant's per-order switch ----------------------------------------------------------

    async def staff_turned_off(
        self, conn: asyncpg.Connection, command: TurnOffOrderUpdatesCommand
    ) -> None:
        consent = await mq.consent(conn, command.shop_id, command.order_id)
        if consent is None or consent["state"] != "active":
            return
        reason = f"Turned off by staff ({command.staff_id})."
        await mq.set_consent_state(conn, consent["consent_id"], "off_by_merchant", reason)
        await mq.record_change(
            conn, change_id=derived_id("consent_change", str(consent["consent_id"]),
                                       command.command_id),
            consent_id=consent["consent_id"], shop_id=command.shop_id,
            order_id=command.order_id, change="turned_off", actor="staff",
            staff_id=command.staff_id, reason=reason, source_event_id=command.command_id,
            at=datetime.now(UTC),
        )

    # --- messenger.events -------------------------------------------------------------------------

    async def on_messenger_events(
        self, conn: asyncpg.Connection, events: list[MessengerEvent]
    ) -> None:
        for event in events:
            if event.shop_id is None or event.type in ("refused", "echo", "delivery", "read"):
                continue
            if event.user_ref and event.psid:
                await mq.link(conn, event.page_id, event.user_ref, event.psid, event.at)
            if event.type == "optin" and event.user_ref:
                await mq.touch(conn, event.page_id, f"user_ref:{event.user_ref}", event.at)
            if event.psid and event.type in ("postback", "quick_reply", "optin"):
                await mq.touch(conn, event.page_id, f"psid:{event.psid}", event.at)
            if event.psid is None:
                continue
            if event.type == "postback" and event.payload == ORDER_UPDATE_SETTINGS:
                await self._settings_prompt(conn, event)
            elif event.type == "quick_reply" and event.payload == ORDER_UPDATES_OFF:
                await self._answer(conn, event, turn_off=True)
            elif event.type == "quick_reply" and event.payload == ORDER_UPDATES_KEEP:
                await self._answer(conn, event, turn_off=False)

    async def _person_conversation(
        self, conn: asyncpg.Connection, event: MessengerEvent, consents: list[asyncpg.Record]
    ) -> asyncpg.Record:
        """Where to answer: the newest order's conversation, else the person's own."""
        if consents:
            conversation = await mq.lock_conversation(conn, consents[0]["conversation_id"])
            if conversation is not None:
                return conversation
        assert event.psid and event.shop_id
        thread_ref = psid_thread(event.page_id, event.psid)
        return await mq.ensure_conversation(
            conn, _conversation_id(event.shop_id, thread_ref), event.shop_id, thread_ref, None,
            event.at,
        )

    async def _settings_prompt(self, conn: asyncpg.Connection, event: MessengerEvent) -> None:
        assert event.shop_id and event.psid
        consents = await mq.active_consents_of(conn, event.shop_id, event.page_id, event.psid)
        conversation = await self._person_conversation(conn, event, consents)
        quick = [QuickReply(title=TURN_OFF_TITLE, payload=ORDER_UPDATES_OFF),
                 QuickReply(title=KEEP_TITLE, payload=ORDER_UPDATES_KEEP)] if consents else []
        await self._send(
            conn, conversation,
            message_id=derived_id("messenger_automated", event.shop_id, event.event_id),
            source_id=event.event_id,
            text=SETTINGS_PROMPT if consents else NO_UPDATES,
            kind="automated",
            recipient=MessengerRecipient(thread_ref=conversation["thread_ref"],
                                         page_id=event.page_id, psid=event.psid),
            quick_replies=quick,
            settings=True,
            data={"automated": True, "quick_replies": [r.model_dump() for r in quick],
                  "orders": [c["order_id"] for c in consents]},
        )

    async def _answer(
        self, conn: asyncpg.Connection, event: MessengerEvent, turn_off: bool
    ) -> None:
        assert event.shop_id and event.psid
        consents = await mq.active_consents_of(conn, event.shop_id, event.page_id, event.psid)
        for consent in consents:
            consent_id = consent["consent_id"]
            if turn_off:
                await mq.set_consent_state(conn, consent_id, "off_by_customer",
                                           CUSTOMER_TURNED_OFF)
            await mq.record_change(
                conn, change_id=derived_id("consent_change", str(consent_id), event.event_id),
                consent_id=consent_id, shop_id=event.shop_id, order_id=consent["order_id"],
                change="turned_off" if turn_off else "kept", actor="customer",
                reason=CUSTOMER_TURNED_OFF if turn_off else CUSTOMER_KEPT,
                source_event_id=event.event_id, at=event.at,
            )
            if turn_off:
                conversation = await mq.lock_conversation(conn, consent["conversation_id"])
                if conversation is not None:
                    await self.timeline.append(conn, conversation, TimelineEntry(
                        item_id=derived_id("order_updates_off", event.event_id, str(consent_id)),
                        kind="order_updates_off", author="customer", at=event.at,
                        text=CUSTOMER_TURNED_OFF,
                        data={"order_id": consent["order_id"], "by": "customer"},
                    ))
        conversation = await self._person_conversation(conn, event, consents)
        await self._send(
            conn, conversation,
            message_id=derived_id("messenger_automated", event.shop_id, event.event_id),
            source_id=event.event_id,
            text=(TURNED_OFF_ACK if turn_off else KEPT_ACK) if consents else NO_UPDATES,
            kind="automated",
            settings=True,
            recipient=MessengerRecipient(thread_ref=conversation["thread_ref"],
                                         page_id=event.page_id, psid=event.psid),
            data={"automated": True},
        )

    # --- one outbound message ---------------------------------------------------------------------

    async def _send(
        self,
        conn: asyncpg.Connection,
        conversation: asyncpg.Record,
        *,
        message_id: uuid.UUID,
        source_id: str,
        text: str,
        kind: str,
        recipient: MessengerRecipient,
        order_update: OrderUpdate | None = None,
        quick_replies: list[QuickReply] | None = None,
        settings: bool = False,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Store the message on the conversation's timeline (author: system) and put it on
        `outbound.messenger`; its delivery result comes back like any reply's."""
        now = datetime.now(UTC)
        content = OutboundContent(text=text)
        if not await self.timeline.store_outbound(
            conn, conversation, message_id=message_id, author="system", channel="messenger",
            source_id=source_id, at=now, text=text, content=content, preview=preview(text),
            data={"channel": "messenger", "kind": kind, **(data or {})},
        ):
            return  # already sent: a replayed event
        outbound = MessengerOutbound(
            event_id=str(message_id),
            message_id=str(message_id),
            shop_id=conversation["shop_id"],
            conversation_id=str(conversation["conversation_id"]),
            channel="messenger",
            kind=kind,  # type: ignore[arg-type]
            recipient=recipient,
            content=content,
            created_at=now,
            shop_name=await sq.shop_name_of(conn, conversation),
            conversation_channel="messenger",
            order_update=order_update,
            quick_replies=quick_replies or [],
            order_updates_settings=settings,
        )
        await self.timeline.publish(conn, OUTBOUND_TOPICS["messenger"], outbound)
