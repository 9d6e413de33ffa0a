"""The consume loop's promises, observed through the router running as a real process:
bad input lands in the DLQ with a reason and the consumer goes on; a duplicate is stored once;
a consumer killed mid-stream and restarted loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import json

from shared.topics import CHAT_INBOUND, INBOX_COMMANDS, dlq_topic
from tests.conftest import eventually, read_topic
from tests.helpers import chat_message, new_shop, unique


def _headers(record) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


async def _stored(db, shop_id: str) -> list[str]:
    rows = await db.fetch(
        "SELECT text FROM messages WHERE shop_id = $1 AND direction = 'inbound' ORDER BY text",
        shop_id,
    )
    return [r["text"] for r in rows]


async def test_bad_input_goes_to_the_dlq_and_the_consumer_goes_on(stack, producer, db, prepared):
    shop = await new_shop(producer, db)
    marker = unique("poison")
    thread = unique("thread")
    key = f"{shop.shop_id}:online_store_chat:{thread}"
    valid = chat_message(shop.shop_id, thread, text="before the poison")
    missing_field = chat_message(shop.shop_id, thread).model_dump(mode="json")
    del missing_field["text"]
    missing_field["marker"] = marker
    wrong_type = chat_message(shop.shop_id, thread).model_dump(mode="json")
    wrong_type["sent_at"] = 12
    wrong_type["marker"] = marker
    unknown_channel = chat_message(shop.shop_id, thread).model_dump(mode="json")
    unknown_channel["channel"] = "carrier_pigeon"
    unknown_channel["marker"] = marker
    unknown_shop = chat_message(unique("no-such-shop")).model_dump(mode="json")
    unknown_shop["marker"] = marker
    poison = [
        b"{not json " + marker.encode(),
        b"\xff\xfe" + marker.encode(),  # not UTF-8
        json.dumps(missing_field).encode(),
        json.dumps(wrong_type).encode(),
        json.dumps(unknown_channel).encode(),
        json.dumps(unknown_shop).encode(),
    ]
    await producer.send_and_wait(CHAT_INBOUND, valid)
    for value in poison:
        await (await producer.send_raw(CHAT_INBOUND, value, key))
    after = chat_message(shop.shop_id, thread, text="after the poison")
    await producer.send_and_wait(CHAT_INBOUND, after)

    await eventually(lambda: _has_both(db, shop.shop_id), timeout=30)
    dead = await read_topic(
        prepared, dlq_topic(CHAT_INBOUND), lambda r: marker.encode() in r.value, expected=6
    )
    assert sorted(r.value for r in dead) == sorted(poison)  # the original bytes, untouched
    reasons = {r.value: _headers(r) for r in dead}
    assert reasons[poison[0]]["dlq.kind"] == "invalid"
    assert "json" in reasons[poison[0]]["dlq.reason"].lower()
    assert "text" in reasons[poison[2]]["dlq.reason"]
    assert "sent_at" in reasons[poison[3]]["dlq.reason"]
    assert "unknown channel" in reasons[poison[4]]["dlq.reason"]
    assert reasons[poison[5]]["dlq.kind"] == "rejected"
    assert "unknown shop" in reasons[poison[5]]["dlq.reason"]
    assert all(h["dlq.topic"] == CHAT_INBOUND for h in reasons.values())


async def _has_both(db, shop_id: str) -> bool:
    return await _stored(db, shop_id) == ["after the poison", "before the poison"]


async def test_a_command_for_another_shops_conversation_is_refused(stack, producer, db, prepared):
    mine, theirs = await new_shop(producer, db), await new_shop(producer, db)
    message = chat_message(theirs.shop_id)
    await producer.send_and_wait(CHAT_INBOUND, message)
    conversation_id = await eventually(lambda: db.fetchval(
        "SELECT conversation_id FROM conversations WHERE shop_id = $1", theirs.shop_id
    ))
    command_id = unique("cmd")
    payload = {
        "command_id": command_id, "shop_id": mine.shop_id, "staff_id": "ava",
        "conversation_id": str(conversation_id), "type": "reply", "text": "hello from elsewhere",
    }
    await (await producer.send_raw(INBOX_COMMANDS, json.dumps(payload).encode(), mine.shop_id))
    dead = await read_topic(prepared, dlq_topic(INBOX_COMMANDS), lambda r: command_id.encode()
                            in r.value)
    assert "unknown conversation" in _headers(dead[0])["dlq.reason"]
    assert await db.fetchval(
        "SELECT count(*) FROM messages WHERE conversation_id = $1 AND direction = 'outbound'",
        conversation_id,
    ) == 0


async def test_a_redelivered_event_is_stored_once(stack, producer, db):
    shop = await new_shop(producer, db)
    message = chat_message(shop.shop_id)
    for _ in range(3):
        await producer.send_and_wait(CHAT_INBOUND, message)
    later = chat_message(shop.shop_id, message.thread_ref, text="a later message")
    await producer.send_and_wait(CHAT_INBOUND, later)
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 2 FROM messages WHERE shop_id = $1", shop.shop_id
    ))
    await asyncio.sleep(0.5)  # room for a wrongly applied copy to show up
    rows = await db.fetch(
        "SELECT text FROM messages WHERE shop_id = $1 ORDER BY sent_at", shop.shop_id
    )
    assert [r["text"] for r in rows] == [message.text, "a later message"]
    items = await db.fetch(
        """SELECT t.seq, t.kind FROM timeline_items t JOIN conversations c USING (conversation_id)
           WHERE c.shop_id = $1 ORDER BY t.seq""",
        shop.shop_id,
    )
    assert [(i["seq"], i["kind"]) for i in items] == [
        (1, "customer_message"), (2, "customer_message")
    ]


async def test_router_killed_mid_stream_loses_and_duplicates_nothing(stack, producer, db):
    shop = await new_shop(producer, db)
    router = stack["router"]
    total = 600
    messages = [
        chat_message(shop.shop_id, f"thread-{i % 40}", text=f"message {i:04d}")
        for i in range(total)
    ]

    async def produce() -> None:
        for i, message in enumerate(messages):
            await producer.send(CHAT_INBOUND, message)
            if i % 50 == 49:
                await producer.flush()
                await asyncio.sleep(0.05)
        await producer.flush()

    producing = asyncio.create_task(produce())
    await eventually(lambda: db.fetchval(
        "SELECT count(*) > 0 FROM messages WHERE shop_id = $1", shop.shop_id
    ), interval=0.02)
    router.kill()  # SIGKILL: no chance to commit or clean up
    stored_at_kill = await db.fetchval(
        "SELECT count(*) FROM messages WHERE shop_id = $1", shop.shop_id
    )
    await producing
    router.start()
    await router.wait_ready()
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = $2 FROM messages WHERE shop_id = $1", shop.shop_id, total
    ), timeout=60)
    assert stored_at_kill < total, "the kill came too late to test anything"
    texts = await db.fetch(
        "SELECT text, count(*) AS n FROM messages WHERE shop_id = $1 GROUP BY text",
        shop.shop_id,
    )
    assert len(texts) == total and all(t["n"] == 1 for t in texts)
    # Each conversation's timeline is gap-free and without duplicates.
    gaps = await db.fetchval(
        """SELECT count(*) FROM (
               SELECT conversation_id, max(seq) <> count(*) AS broken
               FROM timeline_items JOIN conversations USING (conversation_id)
               WHERE shop_id = $1 GROUP BY conversation_id) s WHERE broken""",
        shop.shop_id,
    )
    assert gaps == 0
