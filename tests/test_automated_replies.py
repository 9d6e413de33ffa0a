"""Automated replies on the real stack: the away message outside chat hours (once per closed
period, on the customer's channel), instant answers to tagged messages (not while staff are
answering, never twice), and Meta's window for both (refused with the reason, never tagged
HUMAN_AGENT)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from services.router.automation import automated_message_id
from shared.hours import DAYS
from shared.topics import CHAT_INBOUND, INBOX_COMMANDS
from tests.conftest import eventually
from tests.helpers import chat_message, command, new_shop, open_conversation, unique
from tests.messenger_support import Meta, customer_writes, messenger_shop, numeric_id, text_of
from tests.test_api_support import client, set_chat_hours, set_instant_answer

AWAY = "Thanks {{ customer_first_name }}! {{ shop_name }} is closed now; we answer tomorrow."
SHIPPING_ANSWER = "We ship to all of Scandinavia in 2-4 days; shipping is free over 50 EUR."
RETURNS_ANSWER = "You can return anything within 30 days: reply with your order number."


def closed_now(zone: str) -> list[dict[str, str]]:
    """Hours that keep the shop closed now and for two days: one range, three days on."""
    day = (datetime.now(ZoneInfo(zone)).weekday() + 3) % 7
    return [{"day": DAYS[day], "from": "09:00", "to": "17:00"}]


async def automated(db: asyncpg.Pool, conversation_id: Any, count: int = 1,
                    timeout: float = 30) -> list[asyncpg.Record]:
    """The conversation's automated replies, once there are `count` of them."""
    async def probe() -> list[asyncpg.Record] | None:
        rows = await db.fetch(
            """SELECT m.message_id, m.text, m.author, m.staff_id, m.channel, m.delivery_status,
                      m.delivery_reason, t.data
               FROM messages m JOIN timeline_items t ON t.item_id = m.message_id
               WHERE m.conversation_id = $1 AND m.author = 'system'
                 AND t.data->>'automated' = 'true'
               ORDER BY m.sent_at""", conversation_id)
        return rows if len(rows) >= count else None

    return await eventually(probe, timeout=timeout)


async def router_metric(stack: dict, name: str, labels: str) -> float:
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"{stack['router'].url}/metrics")).text
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", body, re.M)
    return float(match.group(1)) if match else 0.0


async def test_a_message_outside_hours_gets_the_away_message_once_per_closed_period(
    stack, producer, db
):
    shop = await new_shop(producer, db)
    await set_chat_hours(stack, shop, "hours", closed_now("Europe/Berlin"), AWAY)
    conversation = await open_conversation(producer, db, shop.shop_id,
                                           text="Hello, is anyone there?")
    cid = conversation["conversation_id"]
    [away] = await automated(db, cid)
    assert away["text"] == ("Thanks Maja! Fjord & Pine Outfitters is closed now; we answer "
                            "tomorrow.")
    assert away["author"] == "system" and away["staff_id"] is None
    assert away["channel"] == "online_store_chat"  # the customer's own channel: they are here
    assert away["data"]["automation"] == "away_message"
    # Sent on the chat like any reply; the merchant still sees the customer waiting.
    await eventually(lambda: db.fetchval(
        "SELECT delivery_status = 'sent' FROM messages WHERE message_id = $1",
        away["message_id"]))
    row = await db.fetchrow("""SELECT unread, status, last_message_preview FROM conversations
                               WHERE conversation_id = $1""", cid)
    assert row["unread"] and row["status"] == "open"
    assert row["last_message_preview"] == "Hello, is anyone there?"

    # A second message in the same closed period, then one from the period a week before
    # (a late delivery): the first gets nothing, the second its own away message.
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, conversation["thread_ref"], text="Hello again?"))
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, conversation["thread_ref"], text="Sent last week",
        sent_at=datetime.now(UTC) - timedelta(days=7)))
    replies = await automated(db, cid, count=2)
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 3 FROM messages WHERE conversation_id = $1 AND author = 'customer'",
        cid))
    assert len(await automated(db, cid, count=2)) == 2
    assert replies[0]["message_id"] != replies[1]["message_id"]

    # In hours ("always"), nothing automated.
    await set_chat_hours(stack, shop, "always", [], AWAY)
    other = await open_conversation(producer, db, shop.shop_id, text="And now?")
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, other["thread_ref"], text="Sent last week",
        sent_at=datetime.now(UTC) - timedelta(days=7)))
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 2 FROM messages WHERE conversation_id = $1",
        other["conversation_id"]))
    assert not await db.fetchval(
        "SELECT count(*) FROM messages WHERE conversation_id = $1 AND author = 'system'",
        other["conversation_id"])


async def test_an_email_outside_hours_is_answered_by_email(stack, producer, db, smtp):
    shop = await new_shop(producer, db)
    await set_chat_hours(stack, shop, "hours", closed_now("Europe/Berlin"), AWAY)
    address = f"{unique('kim')}@example.no"
    conversation = await open_conversation(
        producer, db, shop.shop_id, channel="email", thread_ref=f"<{unique('m')}@example.no>",
        visitor_id=None, text="Do you have the anorak in blue?",
        customer={"email": address, "name": "Kim Dahl"})
    [away] = await automated(db, conversation["conversation_id"])
    assert away["channel"] == "email"
    [mail] = await eventually(lambda: _value(smtp.to(address)), timeout=30)
    assert "Thanks Kim!" in mail.get_body(("plain",)).get_content()
    assert mail["Auto-Submitted"] == "auto-generated"  # so the customer's mail does not answer
    # The reports count it as automated, not as a staff answer.
    async with client(stack, shop) as api:
        total = (await api.get("/reports/conversations", params={"group_by": "channel"})
                 ).json()["total"]
    assert (total["automated_replies"], total["with_staff_reply"]) == (1, 0)


async def _value(value: Any) -> Any:
    return value


async def test_an_instant_answer_goes_once_per_topic_and_not_while_staff_answer(
    stack, producer, db
):
    shop = await new_shop(producer, db)
    await set_instant_answer(stack, shop, "shipping", SHIPPING_ANSWER)
    await set_instant_answer(stack, shop, "returns", RETURNS_ANSWER)
    conversation = await open_conversation(
        producer, db, shop.shop_id, text="Can you ship to Norway and what does shipping cost?")
    cid = conversation["conversation_id"]
    [answer] = await automated(db, cid)
    assert answer["text"] == SHIPPING_ANSWER
    assert answer["data"]["automation"] == "instant_answer"
    assert answer["data"]["topic"] == "shipping"
    assert answer["message_id"] == automated_message_id(cid, "instant_answer", "shipping")
    row = await db.fetchrow("SELECT unread, topics FROM conversations WHERE conversation_id = $1",
                            cid)
    assert row["unread"] and "shipping" in row["topics"]  # the merchant still sees it waiting

    # Shipping again: not twice. Then returns: its own answer; tags of one conversation come in
    # order, so once the returns answer is there the second shipping tag was handled.
    for text in ("How much is shipping to Sweden?",
                 "I want to return the shoes, they are too small. How do I return them?"):
        await producer.send_and_wait(CHAT_INBOUND, chat_message(
            shop.shop_id, conversation["thread_ref"], text=text))
    replies = await automated(db, cid, count=2)
    assert [r["data"]["topic"] for r in replies] == ["shipping", "returns"]

    # Staff answer in another conversation; the customer then asks about shipping: no answer.
    staffed = await open_conversation(producer, db, shop.shop_id, text="hi")
    skipped = await router_metric(stack, "router_automated_replies_skipped_total",
                                  'kind="instant_answer",reason="staff_answering"')
    await producer.send_and_wait(INBOX_COMMANDS, command(
        shop.shop_id, staffed["conversation_id"], "reply", text="Hi! How can I help?"))
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 1 FROM messages WHERE conversation_id = $1 AND author = 'staff'",
        staffed["conversation_id"]))
    await producer.send_and_wait(CHAT_INBOUND, chat_message(
        shop.shop_id, staffed["thread_ref"], text="What does shipping to Denmark cost?"))
    await eventually(lambda: _above(stack, skipped), timeout=30)
    assert not await db.fetchval(
        "SELECT count(*) FROM messages WHERE conversation_id = $1 AND author = 'system'",
        staffed["conversation_id"])


async def _above(stack: dict, before: float) -> bool:
    return await router_metric(stack, "router_automated_replies_skipped_total",
                               'kind="instant_answer",reason="staff_answering"') > before


async def test_on_messenger_an_automated_reply_goes_inside_the_window_and_is_refused_outside(
    stack, producer, db, meta: Meta, clock
):
    # The Page is approved for Human Agent: even so an automated reply never uses the tag.
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta, human_agent=True)
    await set_chat_hours(stack, shop.shop, "hours", closed_now("Europe/Berlin"),
                         "We're closed now, back soon.")
    conversation = await customer_writes(db, meta, shop, numeric_id(), "Hello?")
    [away] = await automated(db, conversation["conversation_id"])
    await eventually(lambda: db.fetchval(
        "SELECT delivery_status = 'sent' FROM messages WHERE message_id = $1",
        away["message_id"]))
    [sent] = [s for s in await meta.sends(shop.page_id)
              if text_of(s) == "We're closed now, back soon."]
    assert (sent["messaging_type"], sent["tag"], sent["ok"]) == ("RESPONSE", None, True)

    # The next automated reply reaches the notifier 25 hours after the customer's message (a
    # router that was down, say): only the planner's clock moves, the customer's time stays.
    notifier = httpx.AsyncClient(base_url=stack["notifier"].url)
    response = await notifier.put("/dev/clock", json={"offset_seconds": 25 * 3600})
    assert response.status_code == 200, response.text
    late = await customer_writes(db, meta, shop, numeric_id(), "Anyone?")
    [refused] = await automated(db, late["conversation_id"])
    failed = await eventually(lambda: db.fetchrow(
        """SELECT delivery_status, delivery_reason FROM messages
           WHERE message_id = $1 AND delivery_status = 'failed'""", refused["message_id"]))
    assert "automated messages may only go within Meta's 24-hour window" in (
        failed["delivery_reason"])
    item = await eventually(lambda: db.fetchrow(
        """SELECT data FROM timeline_items WHERE conversation_id = $1
           AND kind = 'delivery_failed' AND message_id = $2""",
        late["conversation_id"], refused["message_id"]))
    assert item["data"]["error_code"] == "outside_window"
    sends = await meta.sends(shop.page_id)
    assert all(s.get("tag") != "HUMAN_AGENT" for s in sends), json.dumps(sends)
    assert len([s for s in sends if text_of(s) == "We're closed now, back soon."]) == 1
