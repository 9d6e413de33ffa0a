"""The customer-facing HTTP side of the gateway, without a browser: the storefront chat API
(start a chat, write, read the thread, presence signals, cart changes), its limits, the
"continue the chat" link, the pages and files it serves, and the live-update streams (SSE) for
staff and customers. Everything goes through the real stack: gateway, Kafka, router, notifier,
presence, PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from services.gateway import live
from services.gateway.storefront.chat import CUSTOMER_TICKET
from services.gateway.storefront.common import RATE_LIMITS
from services.gateway.storefront.sessions import CHAT_TOKEN
from shared import tokens
from shared.links import continue_chat_url
from tests.conftest import PRESENCE_TIMEOUT, ServiceProcess, eventually
from tests.helpers import new_shop, unique
from tests.test_api_support import client, detail, open_conversation

SF = "/storefront/api"


def storefront(stack: dict) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack["gateway"].url, timeout=20)


async def start_chat(sf: httpx.AsyncClient, shop_id: str, **fields: Any) -> dict:
    body = {"visitor_id": unique("visitor"), "name": "Maja Berg",
            "email": f"{unique('maja')}@example.se", **fields}
    response = await sf.post(f"{SF}/shops/{shop_id}/chats", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def bearer(session: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['token']}"}


async def say(sf: httpx.AsyncClient, session: dict, text: str) -> dict:
    response = await sf.post(f"{SF}/chat/messages", json={"text": text}, headers=bearer(session))
    assert response.status_code == 202, response.text
    return response.json()


async def thread(sf: httpx.AsyncClient, session: dict) -> dict:
    response = await sf.get(f"{SF}/chat", headers=bearer(session))
    assert response.status_code == 200, response.text
    return response.json()


async def thread_where(sf: httpx.AsyncClient, session: dict, check: Callable[[dict], bool]):
    async def probe() -> dict | None:
        body = await thread(sf, session)
        return body if check(body) else None

    return await eventually(probe, timeout=30)


class Sse:
    """Reads a Server-Sent Events stream in the background and keeps every event."""

    def __init__(self, response: httpx.Response) -> None:
        self.events: list[tuple[str, dict]] = []
        self._task = asyncio.create_task(self._read(response))

    async def _read(self, response: httpx.Response) -> None:
        name, data = "message", ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data += line.removeprefix("data:").strip()
            elif line == "":
                if data:
                    self.events.append((name, json.loads(data)))
                name, data = "message", ""

    async def wait(self, name: str, check: Callable[[dict], bool] = lambda d: True,
                   timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event, data in self.events:
                if event == name and check(data):
                    return data
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {name!r} event within {timeout}s; got {self.events}")

    def close(self) -> None:
        self._task.cancel()


@contextlib.asynccontextmanager
async def sse(http: httpx.AsyncClient, url: str, **kwargs: Any) -> AsyncIterator[Sse]:
    async with http.stream("GET", url, **kwargs) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = Sse(response)
        try:
            yield reader
        finally:
            reader.close()


async def test_pages_and_files(stack):
    async with storefront(stack) as sf:
        home = await sf.get("/")
        assert home.status_code == 307 and home.headers["location"] == "/inbox/"
        assert (await sf.get("/inbox")).headers["location"].endswith("/inbox/")
        page = await sf.get("/inbox/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert '<script type="module" src="app.js">' in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        module = await sf.get("/inbox/app.js")
        assert module.status_code == 200 and "javascript" in module.headers["content-type"]
        widget = await sf.get("/storefront/widget.js")
        assert widget.status_code == 200 and "javascript" in widget.headers["content-type"]
        assert widget.headers["access-control-allow-origin"] == "*"
        assert "attachShadow" in widget.text
        demo = await sf.get("/storefront/demo", params={"shop": "demo-shop"})
        assert demo.status_code == 200 and "widget" not in demo.headers["content-type"]
        assert "script-src 'self'" in demo.headers["content-security-policy"]
        assert (await sf.get("/inbox/no-such-file.js")).status_code == 404


async def test_a_customer_chats_and_reads_the_merchants_replies(stack, producer, db):
    shop = await new_shop(producer, db)
    async with storefront(stack) as sf, client(stack, shop) as ava:
        info = (await sf.get(f"{SF}/shops/{shop.shop_id}")).json()
        assert info["name"] == "Fjord & Pine Outfitters" and info["currency"] == "EUR"
        # Heartbeats come well within the presence timeout (3 s in the tests).
        assert 0 < info["heartbeat_seconds"] < PRESENCE_TIMEOUT
        products = (await sf.get(f"{SF}/shops/{shop.shop_id}/products")).json()["items"]
        assert "p-wholesale-kit" not in {p["product_id"] for p in products}  # not sold online
        assert {p["product_id"] for p in products} == {"p-anorak", "p-wool-beanie",
                                                       "p-trail-boots"}

        session = await start_chat(sf, shop.shop_id, name="  Maja Berg ")
        assert session["customer"]["name"] == "Maja Berg"
        assert (await thread(sf, session))["started"] is False  # nothing sent yet
        posted = await say(sf, session, "Hi! Is the anorak <b>waterproof</b>?")
        assert posted["conversation_id"] == session["conversation_id"]

        cid = session["conversation_id"]
        row = await eventually(lambda: db.fetchrow(
            "SELECT * FROM conversations WHERE conversation_id = $1::uuid", cid))
        assert (row["shop_id"], row["channel"], row["thread_ref"]) == (
            shop.shop_id, "online_store_chat", session["thread_ref"])
        assert row["customer_name"] == "Maja Berg"
        assert row["customer_email"] == session["customer"]["email"]
        assert row["visitor_id"] == session["visitor_id"]
        mine = await thread_where(sf, session, lambda t: t["started"] and t["messages"])
        assert mine["messages"] == [{
            "message_id": posted["message_id"], "author": "customer",
            "text": "Hi! Is the anorak <b>waterproof</b>?", "product": None, "discount": None,
            "image_url": None, "via": "chat", "at": mine["messages"][0]["at"],
        }]

        # The customer is in the store: the merchant's answers reach the chat.
        signal = {"visitor_id": session["visitor_id"], "type": "page_view"}
        response = await sf.post(f"{SF}/shops/{shop.shop_id}/activity", json=signal)
        assert response.status_code == 202, response.text
        await eventually(lambda: db.fetchval(
            "SELECT customer_online FROM conversations WHERE conversation_id = $1::uuid", cid))
        for reply in ({"text": "Yes, fully taped seams."},
                      {"text": "10% off for you", "discount_code": "welcome10"},
                      {"product_id": "p-anorak"}):
            assert (await ava.post(f"/conversations/{cid}/replies", json=reply)).status_code == 202
        answered = await thread_where(sf, session, lambda t: len(t["messages"]) == 4)
        shop_messages = [m for m in answered["messages"] if m["author"] == "shop"]
        assert [m["text"] for m in shop_messages] == [
            "Yes, fully taped seams.", "10% off for you", None]
        assert shop_messages[1]["discount"] == {
            "code": "WELCOME10", "url": f"https://{shop.domain}/discount/WELCOME10"}
        assert shop_messages[2]["product"]["title"] == "Fjord Rain Anorak"
        assert all(m["via"] == "chat" for m in shop_messages)

        # Another chat's token opens only its own thread.
        other = await start_chat(sf, shop.shop_id)
        assert (await thread(sf, other))["messages"] == []


async def test_what_the_chat_api_refuses(stack, producer, db):
    shop = await new_shop(producer, db)
    async with storefront(stack) as sf:
        unknown = unique("no-shop")
        for method, path, body in (
            ("GET", f"{SF}/shops/{unknown}", None),
            ("GET", f"{SF}/shops/{unknown}/products", None),
            ("POST", f"{SF}/shops/{unknown}/chats", {"visitor_id": unique("v"), "name": "A"}),
            ("POST", f"{SF}/shops/{unknown}/activity",
             {"visitor_id": unique("v"), "type": "heartbeat"}),
        ):
            response = await sf.request(method, path, json=body)
            assert response.status_code == 404, (path, response.text)
            assert detail(response) == "shop not found"

        chats = f"{SF}/shops/{shop.shop_id}/chats"
        for body, message in (
            ({"visitor_id": unique("v"), "name": " "}, "name"),
            ({"visitor_id": unique("v"), "name": "A", "email": "not an email"}, "email"),
            ({"visitor_id": "x", "name": "A"}, "visitor_id"),
            ({"visitor_id": unique("v"), "name": "A", "admin": True}, "admin"),
        ):
            response = await sf.post(chats, json=body)
            assert response.status_code == 422 and message in detail(response), response.text

        session = await start_chat(sf, shop.shop_id)
        messages = f"{SF}/chat/messages"
        # No images from customers in online store chat: a clear 4xx, nothing published.
        response = await sf.post(messages, headers=bearer(session), json={
            "text": "see photo", "attachments": [{"type": "image", "url": "https://x.example/a.png"}]})
        assert response.status_code == 422
        assert "images" in detail(response) and "cannot be sent" in detail(response)
        assert (await sf.post(messages, json={"text": "hi"})).status_code == 401
        forged = {"Authorization": "Bearer " + session["token"][:-2] + "xx"}
        assert (await sf.post(messages, json={"text": "hi"}, headers=forged)).status_code == 401
        # A token of another kind (a live-update ticket) is no chat token.
        ticket = (await sf.post(f"{SF}/chat/events/ticket", headers=bearer(session))).json()
        wrong = {"Authorization": f"Bearer {ticket['ticket']}"}
        assert (await sf.post(messages, json={"text": "hi"}, headers=wrong)).status_code == 401
        for body in ({"text": "   "}, {"text": "x" * 5001}, {}, {"text": "hi", "extra": 1}):
            response = await sf.post(messages, json=body, headers=bearer(session))
            assert response.status_code == 422, (body, response.text)
        big = json.dumps({"text": "x" * 70_000})
        response = await sf.post(messages, content=big, headers=bearer(session))
        assert response.status_code == 413 and "too large" in detail(response)
        response = await sf.post(messages, content=b"{not json", headers=bearer(session))
        assert response.status_code == 422
        await asyncio.sleep(1)
        assert await db.fetchval(
            "SELECT count(*) FROM conversations WHERE thread_ref = $1", session["thread_ref"]
        ) == 0  # nothing refused reached the backbone

        # A runaway sender is slowed down (refused attempts count too: a fresh chat here).
        limit, _ = RATE_LIMITS["message"]
        busy = await start_chat(sf, shop.shop_id)
        codes = [(await sf.post(messages, json={"text": f"spam {i}"}, headers=bearer(busy)))
                 .status_code for i in range(limit + 1)]
        assert codes == [202] * limit + [429]


async def test_presence_signals_and_the_cart(stack, producer, db):
    shop = await new_shop(producer, db)
    async with storefront(stack) as sf, client(stack, shop) as ava:
        session = await start_chat(sf, shop.shop_id)
        await say(sf, session, "Which size should I take?")
        cid = session["conversation_id"]
        await eventually(lambda: db.fetchval(
            "SELECT 1 FROM conversations WHERE conversation_id = $1::uuid", cid))
        activity = f"{SF}/shops/{shop.shop_id}/activity"
        visitor = session["visitor_id"]
        # sendBeacon posts text/plain: the body is read as JSON all the same.
        response = await sf.post(activity, content=json.dumps({"visitor_id": visitor,
                                                               "type": "page_view"}),
                                 headers={"Content-Type": "text/plain;charset=UTF-8"})
        assert response.status_code == 202, response.text

        async def online() -> bool:
            return (await ava.get(f"/conversations/{cid}")).json()["online"]

        await eventually(online)
        assert (await sf.post(activity, json={"visitor_id": visitor, "type": "dance"})
                ).status_code == 422

        cart = f"{SF}/shops/{shop.shop_id}/cart"
        body = {"visitor_id": visitor, "action": "add", "product_id": "p-anorak", "quantity": 1,
                "cart": {"currency": "EUR", "subtotal": "189.00",
                         "items": [{"product_id": "p-anorak", "title": "Fjord Rain Anorak",
                                    "quantity": 1}]}}
        assert (await sf.post(cart, json=body)).status_code == 202
        for bad, code in (({"product_id": "p-wholesale-kit"}, 422),
                          ({"product_id": "p-nope"}, 422), ({"action": "steal"}, 422),
                          ({"cart": {"currency": "euro", "subtotal": "1", "items": []}}, 422)):
            response = await sf.post(cart, json={**body, **bad})
            assert response.status_code == code, (bad, response.text)

        async def cart_shown() -> dict | None:
            conversation = (await ava.get(f"/conversations/{cid}")).json()
            return conversation if conversation["cart"] else None

        conversation = await eventually(cart_shown)
        assert conversation["cart"] == {"currency": "EUR", "subtotal": "189.00", "items": [
            {"product_id": "p-anorak", "title": "Fjord Rain Anorak", "quantity": 1}],
            "discount": None}
        [event] = [i for i in conversation["timeline"] if i["kind"] == "cart_event"]
        assert event["text"] == "added Fjord Rain Anorak to the cart"

        response = await sf.post(activity, json={"visitor_id": visitor, "type": "left"})
        assert response.status_code == 202

        async def gone() -> bool:
            row = (await ava.get(f"/conversations/{cid}")).json()
            return not row["online"] and row["replies_go_to"]["channel"] == "email"

        await eventually(gone)


async def test_cors_for_a_shops_own_pages(stack, producer, db):
    shop = await new_shop(producer, db)
    async with storefront(stack) as sf:
        origin = {"Origin": f"https://{shop.domain}"}
        preflight = await sf.options(f"{SF}/chat/messages", headers={
            **origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "Authorization" in preflight.headers["access-control-allow-headers"]
        response = await sf.get(f"{SF}/shops/{shop.shop_id}", headers=origin)
        assert response.headers["access-control-allow-origin"] == "*"
        # The merchant API is not opened to other origins.
        response = await sf.get("/api/v1/me", headers=origin)
        assert "access-control-allow-origin" not in response.headers


async def test_the_continue_link_resumes_the_conversation(stack, producer, db, prepared):
    shop = await new_shop(producer, db)
    secret = prepared.link_signing_secret
    gateway = stack["gateway"].url
    async with storefront(stack) as sf:
        session = await start_chat(sf, shop.shop_id)
        await say(sf, session, "Do you have it in green?")
        cid = session["conversation_id"]
        await thread_where(sf, session, lambda t: t["started"])

        link = continue_chat_url(gateway, secret, shop.shop_id, cid)
        response = await sf.get(link)
        assert response.status_code == 303, response.text
        sig = link.rsplit("sig=", 1)[1]
        assert response.headers["location"] == (
            f"/storefront/demo?shop={shop.shop_id}#continue={cid}.{sig}")
        tampered = link[:-1] + ("0" if link[-1] != "0" else "1")
        response = await sf.get(tampered)
        assert response.status_code == 403 and "not valid" in response.text
        assert (await sf.get("/chat/continue")).status_code == 403

        resume = f"{SF}/chats/resume"
        response = await sf.post(resume, json={"shop_id": shop.shop_id, "conversation_id": cid,
                                               "sig": sig})
        assert response.status_code == 200, response.text
        resumed = response.json()
        assert (resumed["thread_ref"], resumed["visitor_id"], resumed["conversation_id"]) == (
            session["thread_ref"], session["visitor_id"], cid)
        assert resumed["customer"] == session["customer"]
        assert [m["text"] for m in (await thread(sf, resumed))["messages"]] == [
            "Do you have it in green?"]
        await say(sf, resumed, "Back again!")
        await eventually(lambda: db.fetchval(
            "SELECT count(*) = 2 FROM messages WHERE conversation_id = $1::uuid", cid))

        response = await sf.post(resume, json={"shop_id": shop.shop_id, "conversation_id": cid,
                                               "sig": "0" * 32})
        assert response.status_code == 403
        # A correctly signed link to a conversation that is not an online store chat.
        email_cid = await open_conversation(producer, db, shop.shop_id, channel="email")
        other = continue_chat_url(gateway, secret, shop.shop_id, email_cid).rsplit("sig=", 1)[1]
        response = await sf.post(resume, json={"shop_id": shop.shop_id,
                                               "conversation_id": email_cid, "sig": other})
        assert response.status_code == 404


async def test_staff_live_events_of_their_own_shop(stack, producer, db, prepared):
    shop = await new_shop(producer, db)
    other = await new_shop(producer, db)
    gateway = stack["gateway"].url
    async with client(stack, shop) as ava, httpx.AsyncClient(base_url=gateway,
                                                              timeout=20) as anonymous:
        response = await ava.post("/events/ticket")
        assert response.status_code == 200, response.text
        ticket = response.json()
        assert ticket["expires_in"] == live.TICKET_SECONDS
        async with sse(anonymous, "/api/v1/events", params={"ticket": ticket["ticket"]}) as events:
            ready = await events.wait("ready")
            assert ready == {"shop_id": shop.shop_id, "staff_id": "ava"}
            theirs = await open_conversation(producer, db, other.shop_id, text="not for ava")
            mine = await open_conversation(producer, db, shop.shop_id, text="Hi <script>!")
            item = await events.wait("timeline", lambda d: d["conversation_id"] == mine)
            assert (item["kind"], item["author"], item["text"]) == (
                "customer_message", "customer", "Hi <script>!")
            reply = await ava.post(f"/conversations/{mine}/replies", json={"text": "Hello!"})
            assert reply.status_code == 202
            await events.wait("timeline", lambda d: d["kind"] == "merchant_reply")
            delivery = await events.wait("delivery", lambda d: d["conversation_id"] == mine)
            assert delivery["status"] in {"sent", "failed"}
            assert all(d.get("conversation_id") != theirs for _, d in events.events)

        # The stream takes the bearer token too (for clients that can send headers).
        async with sse(ava, "/events") as events:
            await events.wait("ready")

        for params, headers in (
            ({}, {}),
            ({"ticket": "nonsense"}, {}),
            ({"ticket": ticket["ticket"] + "x"}, {}),
            # signed for another purpose (a customer's chat), or expired
            ({"ticket": tokens.sign(prepared.link_signing_secret, CUSTOMER_TICKET,
                                    [shop.shop_id, "ava"])}, {}),
            ({"ticket": tokens.sign(prepared.link_signing_secret, live.STAFF_TICKET,
                                    [shop.shop_id, "ava"],
                                    issued_at=int(time.time()) - live.TICKET_SECONDS - 1)}, {}),
            ({}, {"Authorization": "Bearer not-a-token"}),
        ):
            response = await anonymous.get("/api/v1/events", params=params, headers=headers)
            assert response.status_code == 401, (params, response.text)
        assert (await anonymous.post("/api/v1/events/ticket")).status_code == 401


async def test_a_customers_live_events_say_only_that_their_thread_changed(
    stack, producer, db, prepared
):
    shop = await new_shop(producer, db)
    async with storefront(stack) as sf, client(stack, shop) as ava:
        session = await start_chat(sf, shop.shop_id)
        other = await start_chat(sf, shop.shop_id)
        ticket = (await sf.post(f"{SF}/chat/events/ticket", headers=bearer(session))).json()
        async with sse(sf, f"{SF}/chat/events", params={"ticket": ticket["ticket"]}) as events:
            assert await events.wait("ready") == {"conversation_id": session["conversation_id"]}
            await say(sf, other, "someone else")
            await say(sf, session, "Hello?")
            await events.wait("changed")
            count = len(events.events)
            await sf.post(f"{SF}/shops/{shop.shop_id}/activity",
                          json={"visitor_id": session["visitor_id"], "type": "page_view"})
            cid = session["conversation_id"]
            await eventually(lambda: db.fetchval(
                "SELECT customer_online FROM conversations WHERE conversation_id = $1::uuid",
                cid))
            await ava.post(f"/conversations/{cid}/replies", json={"text": "Hi there"})
            await eventually(lambda: _async(len(events.events) > count))
            assert {name for name, _ in events.events} == {"ready", "changed"}
            assert all(data == {} for name, data in events.events if name == "changed")
            await thread_where(sf, session, lambda t: any(
                m["text"] == "Hi there" for m in t["messages"]))
        # a staff ticket or a chat token is no customer ticket
        staff_ticket = tokens.sign(prepared.link_signing_secret, live.STAFF_TICKET,
                                   [shop.shop_id, session["conversation_id"]])
        for value in (staff_ticket, session["token"], ""):
            response = await sf.get(f"{SF}/chat/events", params={"ticket": value})
            assert response.status_code == 401
        assert CHAT_TOKEN != CUSTOMER_TICKET


async def _async(value: Any) -> Any:
    return value


async def test_every_gateway_instance_streams_every_event_and_stops_cleanly(
    stack, producer, db, prepared, workdir
):
    """Live updates are a broadcast: a second gateway (no consumer group to share) streams the
    same events; and SIGTERM ends its open streams and the process promptly and cleanly."""
    shop = await new_shop(producer, db)
    second = ServiceProcess("gateway", prepared, workdir)
    second.log_path = workdir / "gateway-second.log"
    second.start()
    try:
        await second.wait_ready()
        async with client(stack, shop) as ava, \
                httpx.AsyncClient(base_url=second.url, timeout=20) as other:
            headers = {"Authorization": f"Bearer {shop.tokens['ava']}"}
            async with sse(ava, "/events") as first_events, \
                    sse(other, "/api/v1/events", headers=headers) as second_events:
                await first_events.wait("ready")
                await second_events.wait("ready")
                cid = await open_conversation(producer, db, shop.shop_id, text="to everyone")
                for events in (first_events, second_events):
                    await events.wait("timeline", lambda d: d["conversation_id"] == cid)
                started = time.monotonic()
                assert second.terminate() == 0
                assert time.monotonic() - started < 8
        assert "gateway stopped" in second.log_tail()
    finally:
        if second.process.poll() is None:
            second.kill()


async def test_the_customers_time_zone_and_language_reach_the_profile(stack, producer, db,
                                                                      prepared):
    shop = await new_shop(producer, db)
    async with storefront(stack) as sf, client(stack, shop) as ava:
        chats = f"{SF}/shops/{shop.shop_id}/chats"
        # What a browser reports is checked: a bad value is a 422 that names its field.
        for fields, field in (
            ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
            ({"timezone": "../../../etc/passwd"}, "timezone"),
            ({"timezone": "europe/zurich"}, "timezone"),
            ({"timezone": 3600}, "timezone"),
            ({"locale": "en_US"}, "locale"),
            ({"locale": "<script>alert(1)</script>"}, "locale"),
            ({"locale": "xx-YY"}, "locale"),
        ):
            body = {"visitor_id": unique("visitor"), "name": "Lea", **fields}
            response = await sf.post(chats, json=body)
            assert response.status_code == 422, (fields, response.text)
            assert detail(response).startswith(f"{field}:"), detail(response)

        session = await start_chat(sf, shop.shop_id, name="Lea Keller", timezone="Europe/Zurich",
                                   locale="de-CH")
        assert session["customer"]["timezone"] == "Europe/Zurich"
        assert session["customer"]["locale"] == "de-CH"
        await say(sf, session, "Grüezi! Habt ihr die Jacke in M?")
        cid = session["conversation_id"]

        async def profile() -> dict | None:
            response = await ava.get(f"/conversations/{cid}")
            return response.json()["customer"] if response.status_code == 200 else None

        customer = await eventually(profile)
        assert customer["timezone"] == "Europe/Zurich" and customer["locale"] == "de-CH"
        local = datetime.fromisoformat(customer["local_time"])
        assert local.utcoffset() == datetime.now(ZoneInfo("Europe/Zurich")).utcoffset()
        assert abs((local - datetime.now(UTC)).total_seconds()) < 60

        # A chat token from before time zones were kept (five claims) still opens its thread.
        old = tokens.sign(prepared.link_signing_secret, CHAT_TOKEN,
                          [shop.shop_id, unique("web"), unique("visitor"), "Old Tab", ""])
        response = await sf.post(f"{SF}/chat/messages", json={"text": "still here"},
                                 headers={"Authorization": f"Bearer {old}"})
        assert response.status_code == 202, response.text


async def test_a_shared_discount_link_applies_in_the_demo_storefront(stack, producer, db):
    gateway = stack["gateway"].url
    shop = await new_shop(producer, db, demo_storefront_of=gateway)
    store = f"{gateway}/storefront/demo/{shop.shop_id}"
    async with storefront(stack) as sf, client(stack, shop) as ava:
        # The merchant's picker shows what each code is worth, and its link opens the store.
        codes = (await ava.get("/discounts")).json()["items"]
        welcome = next(c for c in codes if c["code"] == "WELCOME10")
        assert (welcome["value_type"], welcome["value"]) == ("percentage", "10.00")
        assert welcome["url"] == f"{store}/discount/WELCOME10"

        session = await start_chat(sf, shop.shop_id)
        await say(sf, session, "Any discount for a first order?")
        cid = session["conversation_id"]
        await eventually(lambda: db.fetchval(
            "SELECT 1 FROM conversations WHERE conversation_id = $1::uuid", cid))
        reply = {"text": "10% off for you", "discount_code": "welcome10"}
        assert (await ava.post(f"/conversations/{cid}/replies", json=reply)).status_code == 202
        answered = await thread_where(sf, session, lambda t: len(t["messages"]) == 2)
        link = answered["messages"][1]["discount"]
        assert link == {"code": "WELCOME10", "url": f"{store}/discount/WELCOME10"}

        # The link lands on the store page, which applies the code (any letter case).
        opened = await sf.get(link["url"])
        assert opened.status_code == 303
        assert opened.headers["location"] == (
            f"/storefront/demo?shop={shop.shop_id}&discount=WELCOME10")
        home = await sf.get(store)
        assert home.status_code == 303
        assert home.headers["location"] == f"/storefront/demo?shop={shop.shop_id}"
        found = await sf.get(f"{SF}/shops/{shop.shop_id}/discounts/welcome10")
        assert found.status_code == 200, found.text
        assert found.json() == {"code": "WELCOME10", "value_type": "percentage",
                                "value": "10.00", "currency": "EUR"}
        # An expired or unknown code applies nothing, and says why.
        expired = await sf.get(f"{SF}/shops/{shop.shop_id}/discounts/SUMMER25")
        assert expired.status_code == 422
        assert detail(expired) == "the discount code SUMMER25 has expired"
        unknown = await sf.get(f"{SF}/shops/{shop.shop_id}/discounts/NOPE")
        assert unknown.status_code == 404 and "no discount code NOPE" in detail(unknown)
        for path in (f"{store}/discount/%3Cscript%3E", f"{store}/discount/a%0Ab",
                     f"{store}/discount/" + "A" * 256,
                     f"{gateway}/storefront/demo/{unique('no-shop')}/discount/WELCOME10",
                     f"{gateway}/storefront/demo/bad%20shop/discount/WELCOME10"):
            response = await sf.get(path)
            assert response.status_code == 404, (path, response.status_code)
            assert "This discount link is not valid" in response.text

        # The page tells the shop: an apply_discount cart event. What the code takes off is
        # the shop's rule (10 % of 189.00), whatever the page said.
        cart = f"{SF}/shops/{shop.shop_id}/cart"
        items = [{"product_id": "p-anorak", "title": "Fjord Rain Anorak", "quantity": 1}]
        applied = {"visitor_id": session["visitor_id"], "action": "apply_discount",
                   "cart": {"currency": "EUR", "subtotal": "189.00", "items": items,
                            "discount": {"code": "welcome10", "amount": "0.00"}}}
        response = await sf.post(cart, json=applied)
        assert response.status_code == 202, response.text
        for bad, complaint in (
            ({"cart": {**applied["cart"], "discount": {"code": "SUMMER25", "amount": "1"}}},
             "has expired"),
            ({"cart": {**applied["cart"], "discount": {"code": "NOPE", "amount": "1"}}},
             "no discount code NOPE"),
            ({"cart": {k: v for k, v in applied["cart"].items() if k != "discount"}},
             "discount code applied is missing"),
            ({"action": "add"}, "names its product"),
            ({"product_id": "p-anorak"}, "names no product"),
        ):
            response = await sf.post(cart, json={**applied, **bad})
            assert response.status_code in (404, 422), (bad, response.text)
            assert complaint in detail(response), (bad, detail(response))

        async def discounted() -> dict | None:
            conversation = (await ava.get(f"/conversations/{cid}")).json()
            return conversation if conversation["cart"] else None

        conversation = await eventually(discounted)
        assert conversation["cart"] == {
            "currency": "EUR", "subtotal": "170.10", "items": items,
            "discount": {"code": "WELCOME10", "amount": "18.90"}}
        [event] = [i for i in conversation["timeline"] if i["kind"] == "cart_event"]
        assert event["text"] == "applied the discount code WELCOME10 to the cart"
