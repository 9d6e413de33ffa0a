"""The merchant API's reads: the conversation list (filters, pagination, Online, topics, cart)
and one conversation (timeline, cart header, customer profile), each confined to the caller's
shop. Data arrives through the real paths: Kafka topics, the router, presence, the API."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import UTC, datetime, timedelta

from shared.contracts import ActivityEvent, CartEvent, StaffUpserted, TopicTag
from shared.topics import CLASSIFIER_TAGS, SHOP_STAFF, STOREFRONT_ACTIVITY, STOREFRONT_CART
from tests.conftest import PRESENCE_TIMEOUT, eventually
from tests.helpers import new_shop, unique
from tests.test_api_support import (
    client,
    conversation_where,
    detail,
    listed,
    open_conversation,
)


async def test_every_endpoint_needs_a_valid_token(stack, producer, db):
    shop = await new_shop(producer, db)
    async with client(stack) as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
        operations = [
            (method, path.removeprefix("/api/v1").replace("{conversation_id}", str(uuid.uuid4()))
             .replace("{saved_reply_id}", str(uuid.uuid4())))
            for path, ops in document["paths"].items()
            for method in ops
        ]
        assert len(operations) >= 20
        for method, path in operations:
            for headers, message in (
                ({}, "missing bearer token"),
                ({"Authorization": "Bearer not-a-token"}, "invalid token"),
                ({"Authorization": f"Basic {shop.tokens['ava']}"}, "missing bearer token"),
            ):
                response = await anonymous.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, response.text)
                assert detail(response) == message
                assert response.headers["www-authenticate"] == "Bearer"

    # A staff member who is no longer active loses access with the same token.
    async with client(stack, shop, "carla") as carla:
        assert (await carla.get("/me")).status_code == 200
        await producer.send_and_wait(SHOP_STAFF, StaffUpserted(
            event_id=unique("staff"), shop_id=shop.shop_id, staff_id="carla",
            name="Carla Nguyen", email="carla@fjordpine.example", permissions=[],
            token_sha256=hashlib.sha256(shop.tokens["carla"].encode()).hexdigest(),
            active=False, at=datetime.now(UTC),
        ))

        async def refused() -> bool:
            return (await carla.get("/me")).status_code == 401

        await eventually(refused)


async def test_a_conversation_row_and_its_detail(stack, producer, db):
    shop = await new_shop(producer, db)
    visitor = unique("visitor")
    cid = await open_conversation(
        producer, db, shop.shop_id, visitor_id=visitor, text="Hej! Is the anorak warm?",
        customer={"email": "sven@example.se", "name": "Sven Ek", "city": "Malmö",
                  "country": "SE", "timezone": "Europe/Stockholm", "locale": "sv-SE"},
    )
    async with client(stack, shop) as api:
        [row] = (await api.get("/conversations")).json()["items"]
        assert row["conversation_id"] == cid
        assert row["channel"] == "online_store_chat"
        assert row["status"] == "open" and row["unread"] is True
        assert row["customer"] == {"name": "Sven Ek", "email": "sven@example.se"}
        assert row["assignee"] is None and row["topics"] == [] and row["cart"] is None
        assert row["last_message_preview"] == "Hej! Is the anorak warm?"
        assert row["last_message_at"] is not None

        one = (await api.get(f"/conversations/{cid}")).json()
        assert {k: one[k] for k in row if k != "customer"} == {
            k: row[k] for k in row if k != "customer"
        }
        assert one["thread_ref"] and one["created_at"]
        profile = one["customer"]
        assert profile["name"] == "Sven Ek" and profile["email"] == "sven@example.se"
        assert profile["kind"] == "new" and profile["recent_orders"] == []
        assert profile["location"] == {"city": "Malmö", "country": "SE"}
        assert (profile["timezone"], profile["locale"]) == ("Europe/Stockholm", "sv-SE")
        assert profile["local_time"].endswith(("+01:00", "+02:00"))
        assert profile["notes"] == []
        [item] = one["timeline"]
        assert (item["seq"], item["kind"], item["author"], item["text"]) == (
            1, "customer_message", "customer", "Hej! Is the anorak warm?"
        )

        # Online follows the visitor's storefront signals: on with activity, off when they
        # leave, and off again when the signals stop for longer than the presence timeout.
        last_signal = 0.0

        async def signal(kind: str) -> None:
            nonlocal last_signal
            last_signal = time.monotonic()
            await producer.send_and_wait(STOREFRONT_ACTIVITY, ActivityEvent(
                event_id=unique("act"), shop_id=shop.shop_id, visitor_id=visitor, type=kind,
                at=datetime.now(UTC),
            ))

        async def online_while_active() -> bool:
            await signal("heartbeat")
            [row] = (await api.get("/conversations")).json()["items"]
            return row["online"] and (await api.get(f"/conversations/{cid}")).json()["online"]

        async def offline() -> bool:
            [row] = (await api.get("/conversations")).json()["items"]
            return not row["online"] and not (await api.get(f"/conversations/{cid}")).json()[
                "online"]

        await eventually(online_while_active, interval=0.3)
        last_heartbeat = last_signal
        await signal("left")
        await eventually(offline)
        # Off because they left: the last heartbeat has not timed out yet.
        assert time.monotonic() - last_heartbeat < PRESENCE_TIMEOUT
        await eventually(online_while_active, interval=0.3)
        await eventually(offline, timeout=PRESENCE_TIMEOUT + 60)  # silence: the timeout
        # Offline: the merchant sees that a reply now goes to the email given at chat start.
        detail = (await api.get(f"/conversations/{cid}")).json()
        assert detail["replies_go_to"] == {
            "channel": "email", "email": "sven@example.se", "waiting_reason": None
        }

        # The cart of the conversation's visitor: subtotal and the quantity of each item.
        await producer.send_and_wait(STOREFRONT_CART, CartEvent.model_validate({
            "event_id": unique("cart"), "shop_id": shop.shop_id, "visitor_id": visitor,
            "action": "add", "quantity": 2, "at": datetime.now(UTC),
            "product": {"id": "p-anorak", "title": "Fjord Rain Anorak", "price": "189.00"},
            "cart": {"currency": "EUR", "subtotal": "407.00", "items": [
                {"product_id": "p-anorak", "title": "Fjord Rain Anorak", "quantity": 2},
                {"product_id": "p-wool-beanie", "title": "Merino Wool Beanie", "quantity": 1},
            ]},
        }))
        expected_cart = {"currency": "EUR", "subtotal": "407.00", "items": [
            {"product_id": "p-anorak", "title": "Fjord Rain Anorak", "quantity": 2},
            {"product_id": "p-wool-beanie", "title": "Merino Wool Beanie", "quantity": 1},
        ], "discount": None}

        async def cart_in_list() -> dict | None:
            [row] = (await api.get("/conversations")).json()["items"]
            return row["cart"]

        assert await eventually(cart_in_list) == expected_cart
        one = (await api.get(f"/conversations/{cid}")).json()
        assert one["cart"] == expected_cart
        assert [i["kind"] for i in one["timeline"]] == ["customer_message", "cart_event"]
        assert one["timeline"][1]["text"] == "added Fjord Rain Anorak to the cart"


async def test_customer_profile_orders_and_notes(stack, producer, db, prepared):
    shop = await new_shop(producer, db)  # its demo data: two orders of maja.berg@example.com
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 2 FROM orders WHERE shop_id = $1", shop.shop_id
    ))
    # Matched by email, whatever its case; no customer id given in the chat.
    customer = {"email": "Maja.Berg@Example.com", "name": "Maja Berg"}
    cid = await open_conversation(producer, db, shop.shop_id, customer=customer)
    async with client(stack, shop, "ben") as ben, client(stack, shop) as ava:
        profile = (await ben.get(f"/conversations/{cid}")).json()["customer"]
        assert profile["kind"] == "returning"
        assert [(o["order_id"], o["order_number"], o["status"], o["total_price"],
                 o["currency"], o["updates_enabled"]) for o in profile["recent_orders"]] == [
            ("o-1002", "#1002", "shipped", "29.00", "EUR", True),
            ("o-1001", "#1001", "delivered", "218.00", "EUR", True),
        ]
        # Notes are about the customer: any staff member writes them, every one sees them.
        first = await ben.post(f"/conversations/{cid}/notes", json={"text": "Prefers email"})
        assert first.status_code == 202, first.text
        await conversation_where(ava, cid, lambda d: len(d["customer"]["notes"]) == 1)
        second = await ava.post(f"/conversations/{cid}/notes", json={"text": "VIP customer"})
        assert second.status_code == 202, second.text
        one = await conversation_where(ava, cid, lambda d: len(d["customer"]["notes"]) == 2)
        assert [(n["text"], n["staff_id"], n["staff_name"]) for n in one["customer"]["notes"]] == [
            ("VIP customer", "ava", "Ava Lindqvist"), ("Prefers email", "ben", "Ben Okafor"),
        ]
        # Another conversation of the same customer shows the same notes and orders.
        other = await open_conversation(
            producer, db, shop.shop_id, channel="email", visitor_id=None,
            customer={"email": "maja.berg@example.com", "name": "Maja Berg"},
        )
        again = (await ava.get(f"/conversations/{other}")).json()["customer"]
        assert [n["text"] for n in again["notes"]] == ["VIP customer", "Prefers email"]
        assert again["kind"] == "returning" and len(again["recent_orders"]) == 2
        # A stranger is a new customer without notes.
        stranger = await open_conversation(
            producer, db, shop.shop_id, customer={"email": "new@example.org", "name": "Nia"}
        )
        fresh = (await ava.get(f"/conversations/{stranger}")).json()["customer"]
        assert (fresh["kind"], fresh["recent_orders"], fresh["notes"]) == ("new", [], [])


async def test_filters_search_topics_and_pagination(stack, producer, db):
    shop = await new_shop(producer, db)
    people = [
        ("Alice Andersson", "alice@example.com", "Where is my parcel? It was due Monday."),
        ("Bob Brown", "bob@example.com", "Is the beanie 100% merino wool?"),
        ("Chen Wei", "chen@example.net", "Do you have beanie_blue in stock?"),
        ("Dana Diaz", "dana@example.com", "Can I order for my shop?"),
        ("Eve Ek", "eve@example.com", "Need it before Friday, checkout fails"),
    ]
    ids = []
    for n, (name, email, text) in enumerate(people):  # oldest first
        ids.append(await open_conversation(
            producer, db, shop.shop_id, age=timedelta(minutes=10 - n), text=text,
            customer={"name": name, "email": email},
        ))
    alice, bob, chen, dana, eve = ids
    async with client(stack, shop) as ava, client(stack, shop, "ben") as ben:
        # Newest activity first, page by page.
        assert await listed(ava) == [eve, dana, chen, bob, alice]
        pages, offset = [], 0
        while offset is not None:
            page = (await ava.get("/conversations", params={"limit": 2, "offset": offset})).json()
            pages.append([r["conversation_id"] for r in page["items"]])
            offset = page["next_offset"]
        assert pages == [[eve, dana], [chen, bob], [alice]]
        for bad in ({"limit": 201}, {"limit": 0}, {"offset": -1}, {"status": "archived"},
                    {"unread": "maybe"}):
            response = await ava.get("/conversations", params=bad)
            assert response.status_code == 422, (bad, response.text)
            assert next(iter(bad)) in detail(response)

        # Commands through the API, their effects read back through the list. A reply is new
        # activity: wait for each before the next so that their order is known.
        for cid, text in ((alice, "On its way!"), (chen, "Yes, 3 left.")):
            sent = await ava.post(f"/conversations/{cid}/replies", json={"text": text})
            assert sent.status_code == 202, sent.text
            await conversation_where(ava, cid, lambda d: not d["unread"])
        accepted = [
            await ava.post(f"/conversations/{bob}/status", json={"status": "closed"}),
            await ava.post(f"/conversations/{dana}/assign", json={"staff_id": "ben"}),
            await ava.post(f"/conversations/{eve}/assign", json={"staff_id": "ava"}),
            await ava.put(f"/conversations/{dana}/subject", json={"subject": "Wholesale lead"}),
        ]
        assert [r.status_code for r in accepted] == [202] * len(accepted)
        await conversation_where(ava, dana, lambda d: d["subject"] == "Wholesale lead")
        await conversation_where(ava, eve, lambda d: d["assignee"] is not None)
        await conversation_where(ava, bob, lambda d: d["status"] == "closed")
        mark = await ava.post(f"/conversations/{chen}/mark-unread")
        assert mark.status_code == 202
        await conversation_where(ava, chen, lambda d: d["unread"])

        # A reply is the newest activity: alice and chen move up.
        assert await listed(ava) == [chen, alice, eve, dana, bob]
        assert await listed(ava, status="closed") == [bob]
        assert await listed(ava, status="open") == [chen, alice, eve, dana]
        assert await listed(ava, unread="true") == [chen, eve, dana, bob]
        assert await listed(ava, unread="false") == [alice]
        assert await listed(ava, assignee="me") == [eve]
        assert await listed(ben, assignee="me") == [dana]
        assert await listed(ava, assignee="ben") == [dana]
        assert await listed(ava, assignee="carla") == []
        assert await listed(ava, unassigned="true") == [chen, alice, bob]
        assert await listed(ava, unassigned="false") == [eve, dana]
        assert await listed(ava, unassigned="true", status="open", unread="true") == [chen]
        both = await ava.get("/conversations", params={"assignee": "me", "unassigned": "true"})
        assert both.status_code == 422 and "cannot be combined" in detail(both)
        [row] = (await ava.get("/conversations", params={"assignee": "ben"})).json()["items"]
        assert row["assignee"] == {"staff_id": "ben", "name": "Ben Okafor"}

        # Text search: name, email, the last message preview, earlier messages, the subject.
        assert await listed(ava, q="ANDERSSON") == [alice]
        assert await listed(ava, q="example.net") == [chen]
        assert await listed(ava, q="On its way") == [alice]  # the preview is now the reply
        assert await listed(ava, q="parcel") == [alice]  # in the customer's message
        assert await listed(ava, q="beanie") == [chen, bob]
        assert await listed(ava, q="beanie", status="closed") == [bob]
        assert await listed(ava, q="100%") == [bob]
        assert await listed(ava, q="%") == [bob]  # taken literally, not as a wildcard
        assert await listed(ava, q="_") == [chen]
        assert await listed(ava, q="e_b") == [chen]
        assert await listed(ava, q="nothing like this") == []
        # The subject is searched only for staff who may see it.
        assert await listed(ava, q="wholesale lead") == [dana]
        assert await listed(ben, q="wholesale lead") == []

        # Topics: at most two shown, newest first; the filter looks at the shown ones.
        for topic in ("shipping", "order_status", "checkout"):
            await producer.send_and_wait(CLASSIFIER_TAGS, TopicTag(
                event_id=unique("tag"), shop_id=shop.shop_id, conversation_id=eve,
                message_id=unique("msg"), topic=topic, probability=0.95, model_version="test",
                at=datetime.now(UTC),
            ))
        await conversation_where(ava, eve, lambda d: d["topics"] == ["checkout", "order_status"])
        # (The classifier runs in the stack too and may tag the other customers' messages.)
        assert eve in await listed(ava, topic="checkout")
        assert eve in await listed(ava, topic="order_status")
        assert eve not in await listed(ava, topic="shipping")  # pushed out: two are kept
        rows = (await ava.get("/conversations", params={"topic": "checkout"})).json()["items"]
        assert all("checkout" in r["topics"] for r in rows)
        row = next(r for r in rows if r["conversation_id"] == eve)
        assert row["topics"] == ["checkout", "order_status"]


async def test_subject_only_for_staff_with_the_messaging_permission(stack, producer, db, prepared):
    shop = await new_shop(producer, db)
    cid = await open_conversation(producer, db, shop.shop_id)
    async with (
        client(stack, shop) as ava, client(stack, shop, "ben") as ben,
        client(stack, shop, "carla") as carla,
    ):
        for who in (ben, carla):
            refused = await who.put(f"/conversations/{cid}/subject", json={"subject": "Mine"})
            assert refused.status_code == 403
            assert "messaging permission" in detail(refused)
        response = await ava.put(f"/conversations/{cid}/subject", json={"subject": "Size swap"})
        assert response.status_code == 202, response.text
        await conversation_where(ava, cid, lambda d: d["subject"] == "Size swap")
        for who in (ben, carla):
            seen = await who.get(f"/conversations/{cid}")
            assert seen.status_code == 200 and seen.json()["subject"] is None
            assert "Size swap" not in seen.text
            listing = await who.get("/conversations")
            assert "Size swap" not in listing.text
        # Clearing it is setting it empty.
        cleared = await ava.put(f"/conversations/{cid}/subject", json={"subject": ""})
        assert cleared.status_code == 202
        await conversation_where(ava, cid, lambda d: d["subject"] is None)
        too_long = await ava.put(f"/conversations/{cid}/subject", json={"subject": "x" * 256})
        assert too_long.status_code == 422 and "subject" in detail(too_long)


async def test_one_shop_never_sees_another(stack, producer, db, prepared):
    shop_a = await new_shop(producer, db)
    shop_b = await new_shop(producer, db)
    theirs = await open_conversation(producer, db, shop_a.shop_id, text="A's secret question")
    ours = await open_conversation(producer, db, shop_b.shop_id)
    async with client(stack, shop_b) as b, client(stack, shop_a) as a:
        assert await listed(b) == [ours]
        assert await listed(b, q="secret") == []
        assert await listed(a) == [theirs]
        for path in (theirs, "not-a-uuid", str(uuid.uuid4()), "1"):
            response = await b.get(f"/conversations/{path}")
            assert response.status_code == 404
            assert detail(response) == "conversation not found"
        writes = [
            ("POST", "replies", {"text": "hello"}),
            ("POST", "assign", {"staff_id": "ben"}),
            ("POST", "unassign", None),
            ("POST", "status", {"status": "closed"}),
            ("POST", "mark-unread", None),
            ("PUT", "subject", {"subject": "mine"}),
            ("POST", "notes", {"text": "a note"}),
            ("POST", "turn-off-order-updates", {"order_id": "o-1001"}),
        ]
        for method, action, body in writes:
            response = await b.request(method, f"/conversations/{theirs}/{action}", json=body)
            assert response.status_code == 404, (action, response.text)
            assert detail(response) == "conversation not found"
        # Nothing of it reached shop A's conversation.
        one = (await a.get(f"/conversations/{theirs}")).json()
        assert [i["kind"] for i in one["timeline"]] == ["customer_message"]
        assert one["status"] == "open" and one["assignee"] is None and one["subject"] is None


async def test_conversations_cannot_be_deleted(stack, producer, db):
    shop = await new_shop(producer, db)
    cid = await open_conversation(producer, db, shop.shop_id)
    async with client(stack, shop) as api:
        response = await api.delete(f"/conversations/{cid}")
        assert response.status_code == 405
        assert detail(response) == "conversations cannot be deleted; close them instead"
        assert "GET" in response.headers["allow"]
        assert (await api.get(f"/conversations/{cid}")).status_code == 200
        assert await listed(api) == [cid]
