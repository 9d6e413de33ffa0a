"""Presence decides where an online-store chat reply goes: the chat while the customer is in
the store, email (threaded, with a link back) once they left, or held without an email.
Against a real SMTP server (aiosmtpd) and the real stack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from shared.contracts import ActivityEvent
from shared.topics import INBOX_COMMANDS, STOREFRONT_ACTIVITY
from tests.conftest import PRESENCE_TIMEOUT, eventually
from tests.helpers import command, new_shop, open_conversation, unique


async def _signal(producer, shop_id: str, visitor_id: str, kind: str = "heartbeat") -> None:
    await producer.send_and_wait(STOREFRONT_ACTIVITY, ActivityEvent(
        event_id=unique("act"), shop_id=shop_id, visitor_id=visitor_id, type=kind,
        at=datetime.now(UTC)))


async def _presence(db, conversation_id, online: bool) -> None:
    await eventually(lambda: db.fetchval(
        "SELECT customer_online = $2 FROM conversations WHERE conversation_id = $1",
        conversation_id, online), timeout=PRESENCE_TIMEOUT * 4)


async def _reply(producer, shop_id, conversation_id, text: str) -> str:
    cmd = command(shop_id, conversation_id, "reply", text=text)
    await producer.send_and_wait(INBOX_COMMANDS, cmd)
    return cmd.command_id


async def _delivery(db, conversation_id, text: str, status: str) -> dict:
    return await eventually(lambda: db.fetchrow(
        """SELECT channel, delivery_status, delivery_reason FROM messages
           WHERE conversation_id = $1 AND text = $2 AND delivery_status = $3""",
        conversation_id, text, status), timeout=30)


async def _offline_conversation(producer, db, email: str | None = None):
    shop = await new_shop(producer, db)
    visitor = unique("visitor")
    customer = {"email": email, "name": "Maja Berg"} if email else {"name": "Maja Berg"}
    conversation = await open_conversation(producer, db, shop.shop_id, visitor_id=visitor,
                                           customer=customer)
    await _signal(producer, shop.shop_id, visitor)
    await _presence(db, conversation["conversation_id"], True)
    await _presence(db, conversation["conversation_id"], False)  # by timeout, nothing sent
    return shop, visitor, conversation


async def test_online_customer_gets_the_reply_in_the_chat(stack, producer, db, smtp):
    shop = await new_shop(producer, db)
    visitor = unique("visitor")
    email = f"{unique('maja')}@example.se"
    conversation = await open_conversation(producer, db, shop.shop_id, visitor_id=visitor,
                                           customer={"email": email, "name": "Maja"})
    cid = conversation["conversation_id"]
    await _signal(producer, shop.shop_id, visitor)
    await _presence(db, cid, True)
    await _reply(producer, shop.shop_id, cid, "Yes, in stock!")
    row = await _delivery(db, cid, "Yes, in stock!", "sent")
    assert row["channel"] == "online_store_chat"
    assert await db.fetchval(
        "SELECT count(*) FROM storefront_chat_messages WHERE conversation_id = $1", str(cid)
    ) == 1
    assert smtp.to(email) == []


async def test_offline_by_timeout_the_reply_is_emailed_in_one_thread(stack, producer, db, smtp):
    email = f"{unique('maja')}@example.se"
    shop, _, conversation = await _offline_conversation(producer, db, email)
    cid = conversation["conversation_id"]
    await _reply(producer, shop.shop_id, cid, "Your anorak ships tomorrow.")
    row = await _delivery(db, cid, "Your anorak ships tomorrow.", "sent")
    assert row["channel"] == "email"
    first = (await eventually(lambda: _async(smtp.to(email))))[0]
    await _reply(producer, shop.shop_id, cid, "Tracking: 00340434161094012345")
    await _delivery(db, cid, "Tracking: 00340434161094012345", "sent")
    emails = await eventually(lambda: _async(len(smtp.to(email)) == 2 and smtp.to(email)))
    second = emails[1]

    assert first["From"].addresses[0].display_name == "Fjord & Pine Outfitters"
    assert first["Subject"] == "Your conversation with Fjord & Pine Outfitters"
    assert second["Subject"] == "Re: Your conversation with Fjord & Pine Outfitters"
    root = f"<conversation-{cid}@shop-mail.example>"

    def header(message, name: str) -> str:
        return " ".join(str(message[name]).split())  # unfolded

    assert header(first, "In-Reply-To") == root and header(first, "References") == root
    assert header(second, "In-Reply-To") == header(first, "Message-ID")
    assert header(second, "References").split() == [root, header(first, "Message-ID")]
    assert header(first, "Message-ID") != header(second, "Message-ID")
    text = first.get_body(("plain",)).get_content()
    html = first.get_body(("html",)).get_content()
    assert "Your anorak ships tomorrow." in text and "Your anorak ships tomorrow." in html
    assert f"/chat/continue?shop={shop.shop_id}&conversation={cid}&sig=" in text
    assert "Continue the chat</a>" in html


async def _async(value):
    return value


async def test_no_email_on_file_the_reply_waits_for_the_customer(stack, producer, db):
    shop, visitor, conversation = await _offline_conversation(producer, db, email=None)
    cid = conversation["conversation_id"]
    await _reply(producer, shop.shop_id, cid, "We have it in blue too.")
    held = await _delivery(db, cid, "We have it in blue too.", "held")
    assert "gave no email" in held["delivery_reason"]
    await _signal(producer, shop.shop_id, visitor, "page_view")  # the customer is back
    row = await _delivery(db, cid, "We have it in blue too.", "sent")
    assert row["channel"] == "online_store_chat"


async def test_smtp_down_then_up_delivers_once(stack, producer, db, smtp):
    email = f"{unique('maja')}@example.se"
    shop, _, conversation = await _offline_conversation(producer, db, email)
    cid = conversation["conversation_id"]
    smtp.stop()
    try:
        await _reply(producer, shop.shop_id, cid, "Sorry for the wait!")
        await eventually(lambda: db.fetchval(
            """SELECT count(*) > 0 FROM delivery_attempts a JOIN deliveries d USING (message_id)
               WHERE d.conversation_id = $1 AND a.result = 'retry'""", str(cid)), timeout=30)
    finally:
        smtp.start()
    await _delivery(db, cid, "Sorry for the wait!", "sent")
    await asyncio.sleep(1)
    assert len(smtp.to(email)) == 1


async def test_a_slow_mail_server_is_waited_for_not_given_up_on(stack, producer, db, smtp):
    """A send taking longer than the stale age (5 s here) belongs to a live notifier: it is
    recorded as sent, never reported as of unknown outcome (that is for a dead notifier's)."""
    email = f"{unique('maja')}@example.se"
    shop, _, conversation = await _offline_conversation(producer, db, email)
    cid = conversation["conversation_id"]
    smtp.delay = 8.0
    try:
        await _reply(producer, shop.shop_id, cid, "Worth the wait")
        await _delivery(db, cid, "Worth the wait", "sent")
    finally:
        smtp.delay = 0.0
    assert len(smtp.to(email)) == 1


async def test_a_refused_address_is_a_failed_delivery_with_the_reason(stack, producer, db, smtp):
    email = f"{unique('nobody')}@example.se"
    smtp.refused.add(email)
    shop, _, conversation = await _offline_conversation(producer, db, email)
    cid = conversation["conversation_id"]
    await _reply(producer, shop.shop_id, cid, "Hello?")
    failed = await _delivery(db, cid, "Hello?", "failed")
    assert "550" in failed["delivery_reason"]
    item = await eventually(lambda: db.fetchrow(
        "SELECT text FROM timeline_items WHERE conversation_id = $1 AND kind = 'delivery_failed'",
        cid))
    assert "550" in item["text"]


async def test_no_email_is_sent_twice_across_a_notifier_restart(stack, producer, db, smtp):
    email = f"{unique('maja')}@example.se"
    shop, _, conversation = await _offline_conversation(producer, db, email)
    cid = conversation["conversation_id"]
    texts = [f"Update {i}" for i in range(5)]
    for text in texts:
        await _reply(producer, shop.shop_id, cid, text)
    await eventually(lambda: _async(len(smtp.to(email)) >= 1), interval=0.01)
    notifier = stack["notifier"]
    notifier.kill()
    notifier.start()
    await notifier.wait_ready()
    for text in texts:
        await eventually(lambda t=text: db.fetchval(
            "SELECT delivery_status IN ('sent', 'failed') FROM messages "
            "WHERE conversation_id = $1 AND text = $2", cid, t), timeout=30)
    await asyncio.sleep(1)
    subjects = [m.get_body(("plain",)).get_content().splitlines()[0] for m in smtp.to(email)]
    assert len(subjects) == len(set(subjects)), subjects  # never the same reply twice


async def test_the_customers_email_answer_comes_back_into_the_same_conversation(
    stack, producer, db, smtp
):
    from email.message import EmailMessage

    import aiosmtplib

    email = f"{unique('maja')}@example.se"
    shop, _, conversation = await _offline_conversation(producer, db, email)
    cid = conversation["conversation_id"]
    await _reply(producer, shop.shop_id, cid, "Which size do you need?")
    sent = (await eventually(lambda: _async(smtp.to(email))))[0]

    answer = EmailMessage()
    answer["From"] = f"Maja Berg <{email}>"
    answer["To"] = str(sent["From"])
    answer["Subject"] = f"Re: {sent['Subject']}"
    answer["Message-ID"] = f"<{unique('answer')}@example.se>"
    answer["In-Reply-To"] = str(sent["Message-ID"])
    answer["References"] = f"{sent['References']} {sent['Message-ID']}"
    answer.set_content(
        "Size M please!\n\nOn Mon, 23 Nov 2026, Fjord & Pine wrote:\n> Which size do you need?\n"
    )
    port = int(stack["notifier"].env["INBOUND_SMTP_PORT"])
    for _ in range(2):  # a mail server delivering twice changes nothing
        await aiosmtplib.send(answer, hostname="127.0.0.1", port=port)
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 1 FROM messages WHERE conversation_id = $1 AND text = 'Size M please!'",
        cid))
    assert await db.fetchval(
        "SELECT count(*) FROM conversations WHERE shop_id = $1", shop.shop_id) == 1
    await asyncio.sleep(0.5)
    assert await db.fetchval(
        "SELECT count(*) FROM messages WHERE conversation_id = $1 AND direction = 'inbound'",
        cid) == 2

    stranger = EmailMessage()
    stranger["From"], stranger["To"], stranger["Subject"] = email, "x@example", "hello"
    stranger.set_content("no thread here")
    try:
        await aiosmtplib.send(stranger, hostname="127.0.0.1", port=port)
        raise AssertionError("an email answering nothing of ours was accepted")
    except aiosmtplib.SMTPDataError as exc:
        assert exc.code == 550


async def test_a_visitor_online_before_writing_is_online_on_the_new_conversation(
    stack, producer, db
):
    shop = await new_shop(producer, db)
    visitor = unique("visitor")
    await _signal(producer, shop.shop_id, visitor, "page_view")
    await eventually(lambda: db.fetchval(
        "SELECT online FROM visitor_presence WHERE shop_id = $1 AND visitor_id = $2",
        shop.shop_id, visitor), timeout=PRESENCE_TIMEOUT * 4)
    conversation = await open_conversation(producer, db, shop.shop_id, visitor_id=visitor,
                                           customer={"email": "x@example.se", "name": "X"})
    assert conversation["customer_online"] is True
