"""Replies on Messenger through Meta's stand-in: the 24-hour window and Human Agent under a
controlled clock, and Meta's error codes (551, 190, 613, 10, 2) handled as documented."""

from __future__ import annotations

import asyncio
import re

import httpx

from services.notifier.messenger.planner import RETIRED_TAGS
from shared.contracts import DeliveryResult
from shared.topics import DELIVERY_RESULTS
from tests.conftest import eventually, read_topic
from tests.helpers import unique
from tests.messenger_support import (
    Meta,
    accepted,
    customer_writes,
    messenger_shop,
    numeric_id,
    order_event,
    publish_order,
    text_of,
)


async def _reply(shop, conversation, text: str) -> None:
    response = await shop.api.post(f"/conversations/{conversation['conversation_id']}/replies",
                                   json={"text": text})
    assert response.status_code == 202, response.text


async def _outcome(db, conversation, text: str, status: str, timeout: float = 30) -> dict:
    return await eventually(lambda: db.fetchrow(
        """SELECT message_id, delivery_status, delivery_reason FROM messages
           WHERE conversation_id = $1 AND text = $2 AND delivery_status = $3""",
        conversation["conversation_id"], text, status), timeout=timeout)


async def _calls(meta: Meta, page_id: str, text: str) -> list[dict]:
    return [s for s in await meta.sends(page_id) if text_of(s) == text]


async def _metric(stack, name: str, labels: str) -> float:
    async with httpx.AsyncClient() as client:
        body = (await client.get(f"{stack['notifier'].url}/metrics")).text
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", body, re.M)
    return float(match.group(1)) if match else 0.0


async def test_a_human_reply_at_30_h_without_human_agent_approval_is_refused_with_the_reason(
    stack, producer, db, meta, clock, prepared
):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta, human_agent=False)
    psid = numeric_id()
    conversation = await customer_writes(db, meta, shop, psid)
    await _reply(shop, conversation, "Checking with the warehouse")
    await _outcome(db, conversation, "Checking with the warehouse", "sent")
    [inside] = await _calls(meta, shop.page_id, "Checking with the warehouse")
    assert inside["messaging_type"] == "RESPONSE" and inside["recipient"] == {"id": psid}

    await clock.advance(30)
    await _reply(shop, conversation, "It ships Monday")
    failed = await _outcome(db, conversation, "It ships Monday", "failed")
    assert "Human Agent" in failed["delivery_reason"] and "30 h ago" in failed["delivery_reason"]
    item = await eventually(lambda: db.fetchrow(
        """SELECT text, data FROM timeline_items WHERE conversation_id = $1
           AND kind = 'delivery_failed' AND message_id = $2""",
        conversation["conversation_id"], failed["message_id"]))
    assert item["data"]["error_code"] == "human_agent_not_approved"
    assert item["text"] == failed["delivery_reason"]  # the merchant sees why
    assert await _calls(meta, shop.page_id, "It ships Monday") == []  # never offered to Meta
    [result] = await read_topic(prepared, DELIVERY_RESULTS,
                                lambda r: str(failed["message_id"]).encode() in r.value)
    assert DeliveryResult.model_validate_json(result.value).attempts == 1


async def test_a_human_reply_at_30_h_with_human_agent_approval_goes_with_the_tag(
    stack, producer, db, meta, clock
):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta, human_agent=True)
    psid = numeric_id()
    conversation = await customer_writes(db, meta, shop, psid)
    await clock.advance(30)
    await _reply(shop, conversation, "Sorry for the delay: it ships Monday")
    await _outcome(db, conversation, "Sorry for the delay: it ships Monday", "sent")
    [tagged] = await _calls(meta, shop.page_id, "Sorry for the delay: it ships Monday")
    assert (tagged["messaging_type"], tagged["tag"], tagged["ok"]) == (
        "MESSAGE_TAG", "HUMAN_AGENT", True)

    await clock.advance(24 * 7 - 30 + 1)  # 7 days and an hour after the customer's message
    await _reply(shop, conversation, "Anything else?")
    failed = await _outcome(db, conversation, "Anything else?", "failed")
    assert "7 days" in failed["delivery_reason"]
    assert await _calls(meta, shop.page_id, "Anything else?") == []


async def test_meta_refusing_human_agent_is_a_permission_error_not_a_window(
    stack, producer, db, meta, clock
):
    # The merchant ticked "approved" but Meta has not approved the Page.
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta, human_agent=True,
                                meta_human_agent=False)
    conversation = await customer_writes(db, meta, shop, numeric_id())
    await clock.advance(30)
    await _reply(shop, conversation, "Here is the answer")
    failed = await _outcome(db, conversation, "Here is the answer", "failed")
    assert "permission" in failed["delivery_reason"] and "(Meta 10:" in failed[
        "delivery_reason"]
    assert len(await _calls(meta, shop.page_id, "Here is the answer")) == 1  # not retried


async def test_551_is_not_retried_and_stops_automated_messages(stack, producer, db, meta):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    psid, user_ref, order_id, number = numeric_id(), unique("ref"), unique("order"), "#B551"
    before = await _metric(stack, "notifier_messenger_send_errors_total", 'code="551/1545041"')
    await meta.optin(shop.page_id, psid, user_ref)
    await publish_order(producer, order_event(
        shop.shop_id, order_id, number, "created",
        messenger_optin={"user_ref": user_ref, "page_id": shop.page_id}))
    await accepted(meta, shop.page_id, lambda s: number in text_of(s))
    await meta.block(shop.page_id, psid)

    await publish_order(producer, order_event(shop.shop_id, order_id, number, "shipped"))
    failed = await eventually(lambda: db.fetchrow(
        """SELECT m.message_id, m.delivery_reason FROM messages m
           WHERE m.shop_id = $1 AND m.text LIKE '%shipped%' AND m.delivery_status = 'failed'""",
        shop.shop_id), timeout=30)
    assert "blocked" in failed["delivery_reason"]
    attempts = await db.fetch(
        "SELECT result, error_code FROM delivery_attempts WHERE message_id = $1",
        str(failed["message_id"]))
    assert [(a["result"], a["error_code"]) for a in attempts] == [("failed", "551/1545041")]
    refused = [s for s in await meta.sends(shop.page_id, ok=False)]
    assert [s["error"]["code"] for s in refused] == [551]  # one call, never repeated

    await publish_order(producer, order_event(shop.shop_id, order_id, number, "delivered"))
    stopped = await eventually(lambda: db.fetchrow(
        """SELECT delivery_reason FROM messages WHERE shop_id = $1 AND text LIKE '%delivered%'
           AND delivery_status = 'failed'""", shop.shop_id), timeout=30)
    assert "automated messages are stopped" in stopped["delivery_reason"]
    assert len(await meta.sends(shop.page_id, ok=False)) == 1  # Meta was not asked again
    after = await _metric(stack, "notifier_messenger_send_errors_total", 'code="551/1545041"')
    assert after == before + 1


async def test_190_pauses_the_channel_until_it_is_reconnected(stack, producer, db, meta):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    conversation = await customer_writes(db, meta, shop, numeric_id())
    new_token = f"token-{unique('rotated')}"
    await meta.page(shop.page_id, new_token)  # the old token is no longer valid at Meta

    await _reply(shop, conversation, "First answer")
    channel = await eventually(lambda: _state(shop, "needs_reconnection"))
    assert "access token" in channel["state_reason"]
    [refused] = await _calls(meta, shop.page_id, "First answer")
    assert refused["error"]["code"] == 190
    await _reply(shop, conversation, "Second answer")

    async def waiting(text: str):
        return await db.fetchrow(
            """SELECT d.status, d.attempts, d.last_error FROM deliveries d JOIN messages m
               ON m.message_id::text = d.message_id WHERE m.conversation_id = $1
               AND m.text = $2 AND d.status = 'pending'""",
            conversation["conversation_id"], text)

    first = await eventually(lambda: waiting("First answer"))
    assert "reconnect" in first["last_error"]
    await eventually(lambda: waiting("Second answer"))
    await asyncio.sleep(1)
    # Paused: Meta not asked; and the second answer waits behind the first (in order).
    assert await _calls(meta, shop.page_id, "Second answer") == []
    assert (await waiting("Second answer"))["attempts"] == 0

    await shop.connect(token=new_token)
    for text in ("First answer", "Second answer"):
        await _outcome(db, conversation, text, "sent", timeout=60)
    assert [s["ok"] for s in await _calls(meta, shop.page_id, "First answer")] == [False, True]
    assert [s["ok"] for s in await _calls(meta, shop.page_id, "Second answer")] == [True]


async def _state(shop, state: str) -> dict | None:
    channel = await shop.channel()
    return channel if channel["state"] == state else None


async def test_613_backs_off_then_sends(stack, producer, db, meta):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    conversation = await customer_writes(db, meta, shop, numeric_id())
    before = await _metric(stack, "notifier_messenger_send_errors_total", 'code="613"')
    await meta.fault(shop.page_id, 613)
    await _reply(shop, conversation, "Thanks for waiting")
    sent = await _outcome(db, conversation, "Thanks for waiting", "sent")
    attempts = await db.fetch(
        """SELECT result, error_code, started_at FROM delivery_attempts WHERE message_id = $1
           ORDER BY attempt""", str(sent["message_id"]))
    assert [(a["result"], a["error_code"]) for a in attempts] == [("retry", "613"),
                                                                  ("sent", None)]
    assert (attempts[1]["started_at"] - attempts[0]["started_at"]).total_seconds() >= 1.5
    assert [s["ok"] for s in await _calls(meta, shop.page_id, "Thanks for waiting")] == [
        False, True]
    assert await _metric(stack, "notifier_messenger_send_errors_total",
                         'code="613"') == before + 1


async def test_an_unexpected_error_is_tried_a_few_times_then_reported(stack, producer, db, meta):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    conversation = await customer_writes(db, meta, shop, numeric_id())
    await meta.fault(shop.page_id, 2, count=10)
    await _reply(shop, conversation, "Are you there?")
    failed = await _outcome(db, conversation, "Are you there?", "failed", timeout=40)
    assert "3 tries" in failed["delivery_reason"]
    assert len(await _calls(meta, shop.page_id, "Are you there?")) == 3


async def test_retired_tags_are_refused_by_meta_and_never_sent(graph_api, stack, producer, db,
                                                              meta):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    psid = numeric_id()
    await customer_writes(db, meta, shop, psid)
    async with httpx.AsyncClient(base_url=graph_api.url) as client:
        for tag in sorted(RETIRED_TAGS):  # Meta's answer, should anyone try
            response = await client.post(
                f"/v25.0/{shop.page_id}/messages", params={"access_token": shop.token},
                json={"recipient": {"id": psid}, "messaging_type": "MESSAGE_TAG", "tag": tag,
                      "message": {"text": "Your order shipped"}})
            assert response.status_code == 400
            assert response.json()["error"]["code"] == 100
        everything = (await client.get("/admin/sends")).json()
    # Of everything the project sent to Meta in this session, nothing carried a retired tag.
    ours = [s for s in everything if s["message"] != {"text": "Your order shipped"}]
    assert ours and all(s["tag"] in (None, "HUMAN_AGENT") for s in ours)
    assert all(s["messaging_type"] in ("RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY")
               for s in ours)
