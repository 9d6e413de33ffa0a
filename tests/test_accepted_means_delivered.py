"""Accepted means delivered: whatever an HTTP ingress endpoint answers 2xx reaches the merchant's
timeline or its documented destination, and whatever it refuses (4xx) leaves no trace.

One corpus of what people really write (many scripts, emoji, control and invisible characters,
the length limits) and of what no store can keep or no contract takes (NUL, lone surrogates,
too long, blank, the wrong JSON type, deep nesting) goes through every ingress path: the
storefront chat (starting a chat, messages, cart changes, presence signals), the signed
Messenger webhook and the merchant's commands. Every accepted item is then looked for where it
belongs, and the dead-letter topics must hold nothing of this shop: the router never has to
refuse what the edge accepted."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.topics import (
    CHAT_INBOUND,
    INBOX_COMMANDS,
    MESSENGER_EVENTS,
    STOREFRONT_ACTIVITY,
    STOREFRONT_CART,
    dlq_topic,
)
from tests.conftest import MESSENGER_APP_SECRET, eventually, read_topic
from tests.helpers import new_shop, open_conversation, unique
from tests.messenger_support import Meta, messenger_shop, numeric_id

SF = "/storefront/api"
#: This file's own client address: the storefront's per-address rate limits stay its own.
ADDRESS = "127.0.0.2"

#: What customers and merchants write, limits included: each must arrive exactly as written.
WRITTEN = [
    "Hello! Do you ship the anorak to Sweden?",
    "Kann ich die Größe umtauschen? ½ Preis für Ärmel?",
    "Tiếng Việt: áo khoác này còn size M không?",
    "你好\uff0c这件外套有货吗\uff1f",
    "مرحبا، هل يتوفر هذا المنتج؟",
    "שלום \u202eright-to-left override\u202c back",
    "emoji 😀👍🏽👨‍👩‍👧‍👦🇸🇪",
    "combining e\u0301 a\u0308, zero\u200bwidth and joiner\u200d",
    "BOM \ufeff, non-characters \ufffe \uffff \U0010ffff, private use \ue000",
    "controls \x01\x02\x07\x1b[31m red \x7f and C1 \x85\x9f",
    "lines\nmore\r\nand\u2028separators\u2029end",
    "quotes ' \" ` and backslashes \\ \\\\",
    "not a NUL: \\u0000, %00 and &#0; written as text",
    "'); DROP TABLE messages; -- <script>alert(1)</script> {{name}} ${x} %s %n",
    "a" * 5000,
    "😀" * 5000,
]
#: Text values no store can keep or no contract takes (by JSON type: the wrong ones too).
REFUSED_TEXTS: dict[str, Any] = {
    "NUL": "x\x00y",
    "only NUL": "\x00",
    "lone surrogate": "\ud800",
    "lone low surrogate": "a\udc00b",
    "blank": "  \n ",
    "empty": "",
    "number": 42,
    "object": {"text": "hi"},
    "list": ["hi"],
    "null": None,
    "boolean": True,
}
DEEP: Any = "deep"
for _ in range(100):
    DEEP = [DEEP]


class Tally:
    """Per ingress path: how many were sent, accepted, found where they belong, refused."""

    def __init__(self) -> None:
        self.rows: dict[str, Counter[str]] = {}

    def add(self, path: str, what: str, n: int = 1) -> None:
        self.rows.setdefault(path, Counter())[what] += n

    def report(self) -> str:
        return "\n".join(
            f"{path}: {c['sent']} sent, {c['accepted']} accepted, {c['found']} of them found "
            f"where they belong; {c['refused']} refused (4xx), none of them found anywhere"
            for path, c in self.rows.items())


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()  # ASCII escapes: a lone surrogate travels as \ud800


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(MESSENGER_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def _storefront(stack: dict) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack["gateway"].url, timeout=30,
                             transport=httpx.AsyncHTTPTransport(local_address=ADDRESS))


def _api(stack: dict, shop: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack["gateway"].url + "/api/v1", timeout=30,
                             headers={"Authorization": f"Bearer {shop.tokens['ava']}",
                                      "Content-Type": "application/json"})


async def _timeline(api: httpx.AsyncClient, conversation_id: str, kind: str, count: int
                    ) -> list[dict]:
    async def probe() -> list[dict] | None:
        response = await api.get(f"/conversations/{conversation_id}")
        if response.status_code == 404:
            return None  # not stored yet
        assert response.status_code == 200, response.text
        items = [i for i in response.json()["timeline"] if i["kind"] == kind]
        return items if len(items) >= count else None

    return await eventually(probe, timeout=40)


async def _start(sf: httpx.AsyncClient, shop_id: str, **fields: Any) -> httpx.Response:
    body = {"visitor_id": unique("visitor"), "name": "Maja", **fields}
    return await sf.post(f"{SF}/shops/{shop_id}/chats", content=_json(body))


async def _no_dead_letters(prepared: Any, marker: str) -> None:
    for topic in (CHAT_INBOUND, STOREFRONT_CART, STOREFRONT_ACTIVITY, INBOX_COMMANDS,
                  MESSENGER_EVENTS):
        dead = await read_topic(prepared, dlq_topic(topic), lambda r: marker.encode() in r.value,
                                timeout=2)
        assert dead == [], f"{topic}: accepted at the edge, refused later: {dead[0].headers}"


@pytest.mark.timeout(300)
async def test_whatever_the_storefront_accepts_reaches_the_merchant(stack, producer, db,
                                                                    prepared):
    shop = await new_shop(producer, db)
    tally = Tally()
    async with _storefront(stack) as sf, _api(stack, shop) as api:
        # Messages: the ones people write on one thread, the refused ones on another.
        written = (await _start(sf, shop.shop_id)).json()
        refused = (await _start(sf, shop.shop_id)).json()
        for text in WRITTEN:
            response = await sf.post(f"{SF}/chat/messages", content=_json({"text": text}),
                                     headers={"Authorization": f"Bearer {written['token']}"})
            tally.add("storefront message", "sent")
            assert response.status_code == 202, (text[:40], response.text)
            tally.add("storefront message", "accepted")
        hostile = [*REFUSED_TEXTS.values(), "a" * 5001, DEEP]
        for text in hostile:
            response = await sf.post(f"{SF}/chat/messages", content=_json({"text": text}),
                                     headers={"Authorization": f"Bearer {refused['token']}"})
            tally.add("storefront message", "sent")
            assert 400 <= response.status_code < 500, (repr(text)[:40], response.text)
            tally.add("storefront message", "refused")
        items = await _timeline(api, written["conversation_id"], "customer_message", len(WRITTEN))
        assert [i["text"] for i in items] == [t.strip() for t in WRITTEN]
        tally.add("storefront message", "found", len(items))

        # A chat started with any name and email the widget takes carries them to the merchant.
        people = [("Åsa Öberg-Ñúñez", "asa+tag@example.se"), ("李小龙", None),
                  ("😀 Emoji \u200bName", "ünï@exämple.se"), ("O'Brien \"Q\" <b>", "a@b"),
                  ("a" * 100, "x" * 300 + "@example.se")]
        for name, email in people:
            response = await _start(sf, shop.shop_id, name=name,
                                    **({"email": email} if email else {}))
            tally.add("storefront chat start", "sent")
            assert response.status_code == 201, (name[:20], response.text)
            tally.add("storefront chat start", "accepted")
            session = response.json()
            first = await sf.post(f"{SF}/chat/messages", content=_json({"text": "Hi"}),
                                  headers={"Authorization": f"Bearer {session['token']}"})
            assert first.status_code == 202, first.text
            await _timeline(api, session["conversation_id"], "customer_message", 1)
            customer = (await api.get(f"/conversations/{session['conversation_id']}")
                        ).json()["customer"]
            assert (customer["name"], customer["email"]) == (name, email)
            tally.add("storefront chat start", "found")
        for fields in ({"name": "x\x00"}, {"name": "\udfff"}, {"name": " "}, {"name": "a" * 101},
                       {"name": 5}, {"email": "no-at"}, {"email": "a\x00@b"},
                       {"email": "x" * 320 + "@b"}, {"visitor_id": "short"}, {"name": DEEP}):
            response = await _start(sf, shop.shop_id, **fields)
            tally.add("storefront chat start", "sent")
            assert 400 <= response.status_code < 500, (fields, response.text)
            tally.add("storefront chat start", "refused")

        # Cart changes: each accepted one is the visitor's cart; amounts the store cannot hold
        # (numeric(14,2)) or forms it reads otherwise are refused up front.
        cart_url = f"{SF}/shops/{shop.shop_id}/cart"

        def cart(visitor: str, **change: Any) -> dict[str, Any]:
            return {"visitor_id": visitor, "action": "add", "product_id": "p-anorak",
                    "quantity": 1, "cart": {"currency": "EUR", "subtotal": "189.00", "items": [
                        {"product_id": "p-anorak", "title": "Fjord Rain Anorak", "quantity": 1}]},
                    **change}

        def items(title: str, quantity: int = 1) -> list[dict[str, Any]]:
            return [{"product_id": "p-anorak", "title": title, "quantity": quantity}]

        good_carts = [
            {"cart": {"currency": "EUR", "subtotal": "999999999999.99", "items": []}},
            {"cart": {"currency": "EUR", "subtotal": "0", "items": items("😀 " * 100)}},
            {"cart": {"currency": "SEK", "subtotal": "12.5", "items": items(WRITTEN[9], 1000)}},
            {"cart": {"currency": "EUR", "subtotal": "7.", "items": items(WRITTEN[12])}},
            {"quantity": 1000, "action": "remove"},
            {"quantity": "3"},  # a number written as a string is still that number
        ]
        accepted: dict[str, dict[str, Any]] = {}
        for change in good_carts:
            body = cart(unique("cart-v"), **change)
            response = await sf.post(cart_url, content=_json(body))
            tally.add("storefront cart", "sent")
            assert response.status_code == 202, (change, response.text)
            tally.add("storefront cart", "accepted")
            accepted[body["visitor_id"]] = body
        bad_carts = [
            {"cart": {"currency": "EUR", "subtotal": subtotal, "items": []}}
            for subtotal in ("1000000000000", "1e3", "-1", "NaN", " 1", "1_000", "0x10", "", 5)
        ] + [
            {"cart": {"currency": "EUR", "subtotal": "1", "items": items("x\x00")}},
            {"cart": {"currency": "EUR", "subtotal": "1", "items": items("\ud834")}},
            {"cart": {"currency": "EUR", "subtotal": "1", "items": items("t", 0)}},
            {"cart": {"currency": "EUR", "subtotal": "1", "items": {"p": 1}}},
            {"cart": {"currency": "eur", "subtotal": "1", "items": []}},
            {"product_id": "p-anorak\x00"}, {"product_id": ["p-anorak"]}, {"quantity": 1001},
            {"quantity": 1.5}, {"action": "steal"}, {"cart": DEEP},
        ]
        for change in bad_carts:
            response = await sf.post(cart_url, content=_json(cart(unique("cart-v"), **change)))
            tally.add("storefront cart", "sent")
            assert 400 <= response.status_code < 500, (change, response.text)
            tally.add("storefront cart", "refused")
        rows = await eventually(lambda: _rows(db, "carts", shop.shop_id, len(accepted)),
                                timeout=40)
        assert set(rows) == set(accepted)  # nothing refused is there
        for visitor, row in rows.items():
            sent = accepted[visitor]["cart"]
            assert row["subtotal"] == Decimal(sent["subtotal"]).quantize(Decimal("0.01"))
            stored = row["items"]
            assert (json.loads(stored) if isinstance(stored, str) else stored) == sent["items"]
        tally.add("storefront cart", "found", len(rows))

        # Presence signals.
        activity = f"{SF}/shops/{shop.shop_id}/activity"
        good_visitors = [f"v-{uuid.uuid4().hex[:6]}", "v:" + "x" * 98,
                         f"v.a_b-c:{uuid.uuid4().hex}"]
        for visitor in good_visitors:
            response = await sf.post(activity, content=_json({"visitor_id": visitor,
                                                              "type": "page_view"}))
            tally.add("storefront activity", "sent")
            assert response.status_code == 202, response.text
            tally.add("storefront activity", "accepted")
        for body in ({"visitor_id": "v-short", "type": "heartbeat"},
                     {"visitor_id": "v" * 101, "type": "heartbeat"},
                     {"visitor_id": "v-abcdefgh\x00", "type": "heartbeat"},
                     {"visitor_id": "vïsitor-123", "type": "heartbeat"},
                     {"visitor_id": 12345678, "type": "heartbeat"},
                     {"visitor_id": unique("v"), "type": "dance"},
                     {"visitor_id": unique("v"), "type": ["left"]}, DEEP):
            response = await sf.post(activity, content=_json(body))
            tally.add("storefront activity", "sent")
            assert 400 <= response.status_code < 500, (body, response.text)
            tally.add("storefront activity", "refused")
        visitors = await eventually(lambda: _rows(db, "visitors", shop.shop_id,
                                                  len(good_visitors)), timeout=40)
        assert set(visitors) == set(good_visitors)
        tally.add("storefront activity", "found", len(visitors))
        # A page left before any signal of it arrived (sendBeacon on a quick visit): nothing to
        # keep, nothing to fail on. The signal after it is applied only once it was handled.
        quick = f"v-quick-{uuid.uuid4().hex[:8]}"
        for kind in ("left", "page_view"):
            response = await sf.post(activity, content=_json({"visitor_id": quick,
                                                              "type": kind}))
            tally.add("storefront activity", "sent")
            assert response.status_code == 202, response.text
            tally.add("storefront activity", "accepted")
        await eventually(lambda: _rows(db, "visitors", shop.shop_id, len(good_visitors) + 1),
                         timeout=40)
        tally.add("storefront activity", "found", 2)

    assert await db.fetchval(
        "SELECT count(*) FROM conversations WHERE shop_id = $1 AND thread_ref = $2",
        shop.shop_id, refused["thread_ref"]) == 0
    await _no_dead_letters(prepared, shop.shop_id)
    print("\n" + tally.report())


async def _rows(db: Any, table: str, shop_id: str, count: int) -> dict[str, Any] | None:
    rows = await db.fetch(f"SELECT * FROM {table} WHERE shop_id = $1", shop_id)
    return {r["visitor_id"]: r for r in rows} if len(rows) >= count else None


@pytest.mark.timeout(300)
async def test_whatever_the_messenger_webhook_accepts_is_stored_or_refused_with_its_reason(
    stack, producer, db, prepared, graph_api
):
    meta = Meta(graph_api.url)
    shop = await messenger_shop(producer, db, stack["gateway"].url, meta)
    tally = Tally()
    psid = numeric_id()
    now = int(time.time() * 1000)

    def item(mid: str, **message: Any) -> dict[str, Any]:
        return {"sender": {"id": psid}, "recipient": {"id": shop.page_id}, "timestamp": now,
                "message": {"mid": mid, **message}}

    def webhook(*items: Any) -> bytes:
        return _json({"object": "page", "entry": [
            {"id": shop.page_id, "time": now, "messaging": list(items)}]})

    async def post(body: bytes) -> httpx.Response:
        tally.add("messenger webhook", "sent")
        return await client.post("/webhooks/messenger", content=body,
                                 headers={"X-Hub-Signature-256": _sign(body)})

    stored: dict[str, str] = {}
    refused_items: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=stack["gateway"].url, timeout=30) as client:
        for text in [*WRITTEN, "😀" * 20_000]:
            mid = f"m_{uuid.uuid4().hex}"
            response = await post(webhook(item(mid, text=text)))
            assert response.status_code == 200, response.text
            tally.add("messenger webhook", "accepted")
            stored[mid] = text
        # Items of the wrong shape or breaking the contract: the delivery is taken (Meta would
        # only deliver it again), each such item recorded as refused with its reason.
        for field, change in {
            "message.text": {"message": {"text": 42}},
            "message.quick_reply.payload": {"message": {"text": "x", "quick_reply": {
                "payload": {"a": 1}}}},
            "message.attachments": {"message": {"text": "x", "attachments": "image"}},
            "message.is_echo": {"message": {"text": "x", "is_echo": {"yes": True}}},
            "sender": {"sender": "x"},
            "timestamp": {"timestamp": "yesterday"},
            "text: String should have at most 20000": {"message": {"text": "a" * 20_001}},
            "in the future": {"timestamp": now + 3_600_000},
        }.items():
            mid = f"m_{uuid.uuid4().hex}"
            raw = item(mid, text="hello")
            for key, value in change.items():
                raw[key] = {**raw[key], **value} if key == "message" else value
            raw["message"]["mid"] = mid
            response = await post(webhook(raw))
            assert response.status_code == 200, (field, response.text)
            tally.add("messenger webhook", "accepted")
            refused_items[mid] = field
        # What no store can keep, or cannot be read at all: refused as a whole, nothing kept.
        lost_mids = []
        for text in ("x\x00y", "\ud800", DEEP):
            mid = f"m_{uuid.uuid4().hex}"
            lost_mids.append(mid)
            response = await post(webhook(item(mid, text=text)))
            assert 400 <= response.status_code < 500, response.text
            tally.add("messenger webhook", "refused")
        entry_deep = _json({"object": "page", "entry": DEEP})
        assert 400 <= (await post(entry_deep)).status_code < 500
        tally.add("messenger webhook", "refused")
        for body in (b'{"object": "page", "entry": 5}', b'{"object": "user"}', b"[]"):
            assert (await post(body)).status_code == 400
            tally.add("messenger webhook", "refused")

    async def all_stored() -> dict[str, str] | None:
        rows = await db.fetch("SELECT source_id, text FROM messages WHERE shop_id = $1",
                              shop.shop_id)
        found = {r["source_id"].removeprefix("messenger:"): r["text"] for r in rows}
        return found if len(found) >= len(stored) else None

    found = await eventually(all_stored, timeout=40)
    assert found == stored  # every message exactly as written, nothing refused among them
    tally.add("messenger webhook", "found", len(found))
    records = await read_topic(prepared, MESSENGER_EVENTS,
                               lambda r: shop.page_id.encode() in r.value,
                               expected=len(refused_items), timeout=30)
    refusals = {e["mid"]: e for e in (json.loads(r.value) for r in records)
                if e["type"] == "refused"}
    assert set(refusals) == set(refused_items)
    for mid, field in refused_items.items():
        assert refusals[mid]["refused_kind"] == "message"
        assert field in refusals[mid]["reason"], refusals[mid]["reason"]
    tally.add("messenger webhook", "found", len(refusals))
    assert not any(m.encode() in r.value for r in records for m in lost_mids)
    await _no_dead_letters(prepared, shop.page_id)
    print("\n" + tally.report())


@pytest.mark.timeout(300)
async def test_whatever_the_merchant_api_accepts_reaches_the_timeline(stack, producer, db,
                                                                      prepared):
    shop = await new_shop(producer, db)
    conversation = await open_conversation(producer, db, shop.shop_id, customer=None)
    cid = str(conversation["conversation_id"])
    tally = Tally()
    async with _api(stack, shop) as api:
        replies = [*WRITTEN, "😀" * 20_000]
        for text in replies:
            response = await api.post(f"/conversations/{cid}/replies",
                                      content=_json({"text": text}))
            tally.add("merchant reply", "sent")
            assert response.status_code == 202, (text[:40], response.text)
            tally.add("merchant reply", "accepted")
        for text in [*REFUSED_TEXTS.values(), "a" * 20_001, DEEP]:
            response = await api.post(f"/conversations/{cid}/replies",
                                      content=_json({"text": text}))
            tally.add("merchant reply", "sent")
            assert 400 <= response.status_code < 500, (repr(text)[:40], response.text)
            tally.add("merchant reply", "refused")
        notes = [t for t in WRITTEN if len(t) <= 5000]
        for text in notes:
            response = await api.post(f"/conversations/{cid}/notes",
                                      content=_json({"text": text}))
            tally.add("merchant note", "sent")
            assert response.status_code == 202, (text[:40], response.text)
            tally.add("merchant note", "accepted")
        for text in [*REFUSED_TEXTS.values(), "a" * 5001]:
            response = await api.post(f"/conversations/{cid}/notes",
                                      content=_json({"text": text}))
            tally.add("merchant note", "sent")
            assert 400 <= response.status_code < 500, (repr(text)[:40], response.text)
            tally.add("merchant note", "refused")

        items = await _timeline(api, cid, "merchant_reply", len(replies))
        assert [i["text"] for i in items] == replies
        tally.add("merchant reply", "found", len(items))
        await _timeline(api, cid, "note_added", len(notes))
        shown = (await api.get(f"/conversations/{cid}")).json()["customer"]["notes"]
        assert [n["text"] for n in reversed(shown)] == [t.strip() for t in notes]
        tally.add("merchant note", "found", len(shown))
    await _no_dead_letters(prepared, cid)
    print("\n" + tally.report())
