"""Automated replies, for when nobody is there: the shop's away message to a customer message
outside its chat hours, and the shop's instant answer to a message the classifier tagged.

Each is stored on the timeline as a message from the system (`data.automated`), never as a
staff member, and leaves on the channel the customer wrote from (online store chat goes by
email if the customer left the store and gave one). It never marks the conversation read or
answered, nor replaces the list's preview: the merchant still sees the customer's message,
waiting. On Messenger the send
planner decides, as for any send: automated messages only inside the 24-hour window, never with
the HUMAN_AGENT tag.

"At most once" is the message id: derived from the conversation, the kind of reply and its
key (the closed period, the topic), and stored once, so a replayed event sends nothing twice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

import asyncpg

from services.router import automation_queries as aq
from services.router import queries as q
from services.router.metrics import AUTOMATED_REPLIES, AUTOMATED_REPLIES_SKIPPED
from services.router.rules import preview
from services.router.timeline import Timeline
from shared.contracts import ChatInbound, OutboundContent, TopicTag
from shared.db.automation import enabled_instant_answers, shop_hours
from shared.hours import closed_period
from shared.ids import derived_id
from shared.rules import (
    MESSAGE_TOPICS,
    customer_is_online,
    expand_placeholders,
    placeholder_values,
    reply_path,
    staff_wrote_recently,
)

Automation = Literal["away_message", "instant_answer"]


class AutomatedReplies:
    def __init__(self, timeline: Timeline, presence_timeout: timedelta) -> None:
        self.timeline = timeline
        self.presence_timeout = presence_timeout

    async def away_messages(self, conn: asyncpg.Connection, events: list[ChatInbound]) -> None:
        """Answer the stored batch's messages that arrived outside their shop's chat hours, once
        per conversation and closed period. Shops that keep no hours cost one lookup per batch."""
        settings = await shop_hours(conn, {e.shop_id for e in events}, keeping_hours_only=True)
        for event in events:
            shop = settings.get(event.shop_id)
            if shop is None or (period := closed_period(shop.hours, event.sent_at)) is None:
                continue
            conversation_id = derived_id("conversation", event.shop_id, event.channel,
                                         event.thread_ref)
            conversation = await q.lock_conversation(conn, event.shop_id, str(conversation_id))
            if conversation is None:
                continue
            await self._send(conn, conversation, "away_message", period, shop.away_message,
                             {})

    async def instant_answers(self, conn: asyncpg.Connection, tags: list[TopicTag]) -> None:
        """Answer tagged messages whose topic has an instant answer turned on, unless staff wrote
        in the conversation in the last minutes; once per topic and conversation."""
        answers = await enabled_instant_answers(conn, {(t.shop_id, t.topic) for t in tags})
        for tag in tags:
            text = answers.get((tag.shop_id, tag.topic))
            if text is None:
                continue
            conversation = await q.lock_conversation(conn, tag.shop_id, tag.conversation_id)
            if conversation is None or conversation["redacted_at"] is not None:
                continue
            last_staff = await aq.last_staff_message_at(conn, conversation["conversation_id"])
            if staff_wrote_recently(last_staff, datetime.now(UTC)):
                AUTOMATED_REPLIES_SKIPPED.labels("instant_answer", "staff_answering").inc()
                continue
            await self._send(conn, conversation, "instant_answer", tag.topic, text, {
                "topic": tag.topic, "topic_name": MESSAGE_TOPICS.get(tag.topic, tag.topic),
                "answers_message_id": tag.message_id,
            })

    async def _send(
        self, conn: asyncpg.Connection, conversation: asyncpg.Record, automation: Automation,
        key: str, template: str, data: dict[str, object],
    ) -> None:
        message_id = automated_message_id(conversation["conversation_id"], automation, key)
        text = expand_placeholders(template, placeholder_values(
            conversation["customer_name"],
            await aq.newest_order_number(conn, conversation["shop_id"],
                                         conversation["customer_id"],
                                         conversation["customer_email"]),
            conversation["shop_name"], None,
        ))
        now = datetime.now(UTC)
        online = customer_is_online(conversation["customer_online"],
                                    conversation["last_customer_message_at"], now,
                                    self.presence_timeout)
        # A store chat customer who left without an email still finds it in the chat's thread
        # when they come back: an automated reply is never held.
        channel = reply_path(conversation["channel"], online,
                             conversation["customer_email"]).channel or conversation["channel"]
        content = OutboundContent(text=text)
        stored = await self.timeline.store_outbound(
            conn, conversation, message_id=message_id, author="system", channel=channel,
            source_id=f"{automation}:{key}", at=now, text=text, content=content,
            preview=preview(text), staff_reply=False,
            data={"automated": True, "automation": automation, "channel": channel,
                  "email_fallback": channel != conversation["channel"], **data},
        )
        if not stored:
            AUTOMATED_REPLIES_SKIPPED.labels(automation, "already_sent").inc()
            return
        AUTOMATED_REPLIES.labels(automation, channel).inc()
        await self.timeline.send(conn, conversation, message_id=message_id, content=content,
                                 kind="automated", staff_id=None, at=now, channel=channel)


def automated_message_id(conversation_id: uuid.UUID, automation: Automation, key: str
                         ) -> uuid.UUID:
    """The one id an automated reply of this kind and key can have in a conversation."""
    return derived_id("automated", str(conversation_id), automation, key)
