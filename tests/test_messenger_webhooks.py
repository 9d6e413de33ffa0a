"""Messenger webhooks at the gateway: the verification handshake, signatures checked on the
raw body, Meta's redeliveries stored once, and how each webhook kind is translated."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid

import httpx
import pytest

from services.gateway.webhooks import PageChannel, signature_valid, translate
from shared.contracts import ChatInbound, MessengerEvent
from shared.topics import CHAT_INBOUND, MESSENGER_EVENTS
from tests.conftest import MESSENGER_APP_SECRET, MESSENGER_VERIFY_TOKEN, eventually, read_topic
from tests.messenger_support import Meta, messenger_shop, numeric_id


@pytest.fixture
async def meta(graph_api) -> Meta:
    return Meta(graph_api.url)


def _message_body(page_id: str, psid: str, mid: str, text: str = "Hi there") -> bytes:
    now = int(time.time() * 1000)
    return json.dumps({"object": "page", "entry": [{"id": page_id, "time": now, "messaging": [{
        "sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": now,
        "message": {"mid": mid, "text": text}}]}]}).encode()


def _sign(body: bytes, secret: str = MESSENGER_APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_the_verification_handshake(stack, graph_api):
    async with httpx.AsyncClient(base_url=stack["gateway"].url) as client:
        ok = await client.get("/webhooks/messenger", params={
            "hub.mode": "subscribe", "hub.verify_token": MESSENGER_VERIFY_TOKEN,
            "hub.challenge": "1158201444"})
        assert (ok.status_code, ok.text) == (200, "1158201444")
        for params in ({"hub.mode": "subscribe", "hub.verify_token": "guess",
                        "hub.challenge": "1"},
                       {"hub.mode": "unsubscribe", "hub.verify_token": MESSENGER_VERIFY_TOKEN,
                        "hub.challenge": "1"},
                       {}):
            assert (await client.get("/webhooks/messenger", params=params)).status_code == 403
    async with httpx.AsyncClient(base_url=graph_api.url) as meta:
        assert (await meta.post("/admin/subscribe")).json()["verified"] is True


async def test_a_forged_or_missing_signature_is_refused_and_nothing_is_published(
    stack, producer, db, meta, prepared
):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    psid = numeric_id()
    forged_mid, real_mid = f"m_forged_{uuid.uuid4().hex}", f"m_real_{uuid.uuid4().hex}"
    forged = _message_body(shop.page_id, psid, forged_mid)
    async with httpx.AsyncClient(base_url=stack["gateway"].url) as client:
        url = "/webhooks/messenger"
        attempts = [
            {"X-Hub-Signature-256": _sign(forged, "not-the-app-secret")},
            {"X-Hub-Signature-256": _sign(forged + b" ")},  # signed other bytes
            {"X-Hub-Signature-256": _sign(forged).replace("sha256=", "sha1=")},
            {"X-Hub-Signature-256": "sha256=" + "0" * 64},
            {},
        ]
        for headers in attempts:
            response = await client.post(url, content=forged, headers=headers)
            assert response.status_code == 403, headers
        too_large = b" " * 1_000_001
        response = await client.post(url, content=too_large,
                                     headers={"X-Hub-Signature-256": _sign(too_large)})
        assert response.status_code == 413
        real = _message_body(shop.page_id, psid, real_mid)
        response = await client.post(url, content=real,
                                     headers={"X-Hub-Signature-256": _sign(real)})
        assert response.status_code == 200
    # The signed one arrives; of the forged one there is no trace on the topic or in the store.
    await read_topic(prepared, CHAT_INBOUND, lambda r: real_mid.encode() in r.value)
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 1 FROM messages WHERE source_id = $1", f"messenger:{real_mid}"))
    assert await read_topic(prepared, CHAT_INBOUND, lambda r: forged_mid.encode() in r.value,
                            timeout=2) == []
    assert await read_topic(prepared, MESSENGER_EVENTS,
                            lambda r: forged_mid.encode() in r.value, timeout=1) == []
    assert await db.fetchval("SELECT count(*) FROM messages WHERE source_id = $1",
                             f"messenger:{forged_mid}") == 0


async def test_a_redelivered_webhook_is_stored_once(stack, producer, db, meta):
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    psid = numeric_id()
    first = await meta.message(shop.page_id, psid, "Is the beanie merino?",
                               attachments=[{"type": "image",
                                             "payload": {"url": "https://cdn.example/b.jpg"}}])
    assert first["status"] == 200
    for _ in range(2):  # Meta retries deliveries it thinks were not answered in time
        assert (await meta.redeliver(first["delivery_id"]))["status"] == 200
    conversation = await eventually(lambda: db.fetchrow(
        "SELECT * FROM conversations WHERE shop_id = $1 AND channel = 'messenger' "
        "AND thread_ref = $2", shop.shop_id, f"{shop.page_id}:{psid}"))
    await asyncio.sleep(1.5)
    messages = await db.fetch(
        "SELECT text, content FROM messages WHERE conversation_id = $1",
        conversation["conversation_id"])
    assert [m["text"] for m in messages] == ["Is the beanie merino?"]
    assert messages[0]["content"]["attachments"] == [
        {"type": "image", "url": "https://cdn.example/b.jpg"}]  # Messenger customers may
    assert await db.fetchval(                                  # send images
        "SELECT count(*) FROM timeline_items WHERE conversation_id = $1",
        conversation["conversation_id"]) == 1


# --- translation (pure) ----------------------------------------------------------------------


def test_signature_check_is_on_the_raw_bytes():
    body = b'{"object":"page"}'
    assert signature_valid("s3cret", body, "sha256=" + hmac.new(
        b"s3cret", body, hashlib.sha256).hexdigest())
    assert not signature_valid("s3cret", body + b"\n", "sha256=" + hmac.new(
        b"s3cret", body, hashlib.sha256).hexdigest())
    assert not signature_valid("", body, "sha256=")  # no app secret: nothing is trusted
    assert not signature_valid("s3cret", body, None)


def _webhook(*items: dict, page_id: str = "1001") -> dict:
    return {"object": "page", "entry": [{"id": page_id, "time": 1, "messaging": list(items)}]}


def test_each_webhook_kind_becomes_its_event():
    now = int(time.time() * 1000)
    person = {"sender": {"id": "2002"}, "recipient": {"id": "1001"}, "timestamp": now}
    payload = _webhook(
        {**person, "message": {"mid": "m_1", "text": "hello"},
         "prior_message": {"source": "checkbox_plugin", "identifier": "ref-9"}},
        {**person, "message": {"mid": "m_2", "text": "Turn off updates",
                               "quick_reply": {"payload": "ORDER_UPDATES_OFF"}}},
        {**person, "message": {"mid": "m_3", "text": "Blue", "quick_reply": {"payload": "X"}}},
        {**person, "postback": {"title": "Order update settings",
                                "payload": "ORDER_UPDATE_SETTINGS", "mid": "m_4"}},
        {"recipient": {"id": "1001"}, "timestamp": now,
         "optin": {"type": "checkbox_plugin", "user_ref": "ref-10", "ref": "cart-7"}},
        {"sender": {"id": "1001"}, "recipient": {"id": "2002"}, "timestamp": now,
         "message": {"mid": "m_5", "is_echo": True, "app_id": 42, "text": "ours"}},
        {**person, "delivery": {"mids": ["m_5"], "watermark": now}},
        {**person, "read": {"watermark": now}},
        {**person, "reaction": {"emoji": "+1"}},
    )
    events, kinds = translate(payload, {"1001": PageChannel("shop-1", "connected")})
    assert kinds == ["message", "identified", "quick_reply", "message", "postback", "optin",
                     "echo", "delivery", "read", "ignored"]
    topics = [t for t, _ in events]
    assert topics == [CHAT_INBOUND, MESSENGER_EVENTS, MESSENGER_EVENTS, CHAT_INBOUND,
                      *[MESSENGER_EVENTS] * 5]
    message = events[0][1]
    assert isinstance(message, ChatInbound)
    assert (message.event_id, message.channel, message.thread_ref, message.shop_id) == (
        "messenger:m_1", "messenger", "1001:2002", "shop-1")
    identified, quick = events[1][1], events[2][1]
    assert isinstance(identified, MessengerEvent) and (identified.psid, identified.user_ref) == (
        "2002", "ref-9")
    assert (quick.type, quick.payload) == ("quick_reply", "ORDER_UPDATES_OFF")
    assert events[3][1].text == "Blue"  # a quick reply of someone else's: a plain message
    optin = events[5][1]
    assert (optin.user_ref, optin.ref, optin.psid) == ("ref-10", "cart-7", None)
    assert events[6][1].psid == "2002"  # the echo's person is its recipient


def test_a_removed_or_unknown_page_refuses_messages_and_optins_but_not_settings():
    now = int(time.time() * 1000)
    person = {"sender": {"id": "2002"}, "recipient": {"id": "1001"}, "timestamp": now}
    payload = _webhook(
        {**person, "message": {"mid": "m_1", "text": "hello"}},
        {"recipient": {"id": "1001"}, "timestamp": now, "optin": {"user_ref": "ref-1"}},
        {**person, "postback": {"payload": "ORDER_UPDATE_SETTINGS", "title": "x"}},
        {**person, "message": {"mid": "m_2", "quick_reply": {"payload": "ORDER_UPDATES_OFF"}}},
    )
    events, _ = translate(payload, {"1001": PageChannel("shop-1", "removed")})
    assert [(e.type, e.refused_kind) for _, e in events] == [
        ("refused", "message"), ("refused", "optin"), ("postback", None), ("quick_reply", None)]
    assert "removed" in events[0][1].reason
    unknown, _ = translate(payload, {})
    assert {e.type for _, e in unknown} == {"refused"}
    assert all(e.shop_id is None and "No shop" in e.reason for _, e in unknown)


def test_a_message_the_contract_refuses_is_recorded_as_refused():
    future = int((time.time() + 3600) * 1000)  # an hour ahead: refused like any ingress event
    payload = _webhook({"sender": {"id": "2002"}, "recipient": {"id": "1001"},
                        "timestamp": future, "message": {"mid": "m_1", "text": "hi"}})
    events, _ = translate(payload, {"1001": PageChannel("shop-1", "connected")})
    [(topic, event)] = events
    assert topic == MESSENGER_EVENTS and event.type == "refused"
    assert "future" in event.reason


def test_an_item_of_the_wrong_shape_is_refused_with_its_reason_and_the_rest_counts():
    now = int(time.time() * 1000)
    person = {"sender": {"id": 2002}, "recipient": {"id": "1001"}, "timestamp": now}
    payload = {"object": "page", "entry": [
        {"id": 1001, "messaging": [
            {**person, "message": {"mid": "m_ok", "text": "hello"}},
            {**person, "sender": "x", "message": {"mid": "m_sender", "text": "hi"}},
            {**person, "message": {"mid": "m_qr", "text": "x",
                                   "quick_reply": {"payload": {"a": 1}}}},
            {**person, "message": {"mid": "m_text", "text": 42}},
            {**person, "postback": {"payload": ["x"]}},
            {**person, "delivery": {"mids": "m_ok"}},
            5, None,
        ]},
        {"id": {"not": "an id"}, "messaging": []},
        7,
        {"id": "1001", "messaging": "not a list"},
    ]}
    events, kinds = translate(payload, {"1001": PageChannel("shop-1", "connected")})
    assert kinds.count("message") == 1 and kinds.count("refused") == 4
    assert kinds.count("ignored") == 6  # 3 entries, the delivery report and 2 non-items
    message = events[0][1]
    assert isinstance(message, ChatInbound) and message.thread_ref == "1001:2002"
    refused = {e.mid: e for _, e in events[1:]}
    assert set(refused) == {"m_sender", "m_qr", "m_text", None}
    assert all(e.type == "refused" and e.shop_id == "shop-1" for e in refused.values())
    assert "sender: Input should be a valid dictionary" in refused["m_sender"].reason
    assert "message.quick_reply.payload: Input should be a valid string" in \
        refused["m_qr"].reason
    assert refused["m_text"].refused_kind == "message"
    assert refused[None].refused_kind == "postback"
    assert refused["m_qr"].psid == "2002"  # who sent it, as far as it could be read


def test_a_long_mid_is_kept_under_a_digest_rather_than_lost():
    now = int(time.time() * 1000)
    mid = "m_" + "x" * 198
    payload = _webhook({"sender": {"id": "2002"}, "recipient": {"id": "1001"},
                        "timestamp": now, "message": {"mid": mid, "text": "hi"}})
    [(topic, event)] = translate(payload, {"1001": PageChannel("shop-1", "connected")})[0]
    assert topic == CHAT_INBOUND and len(event.event_id) <= 200
    again = translate(payload, {"1001": PageChannel("shop-1", "connected")})[0][0][1]
    assert again.event_id == event.event_id  # a redelivery is still recognised
