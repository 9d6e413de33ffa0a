"""The merchant API's commands: checked with the shared rules against the shop's data (a bad
request is a 4xx and publishes nothing), published on `inbox.commands` when accepted, and
applied by the router (read back through the API)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.contracts import (
    AddNoteCommand,
    AssignCommand,
    MarkUnreadCommand,
    ReplyCommand,
    SetStatusCommand,
    SetSubjectCommand,
    StaffUpserted,
    TurnOffOrderUpdatesCommand,
    UnassignCommand,
)
from shared.topics import SHOP_STAFF
from tests.conftest import eventually
from tests.helpers import new_shop, unique
from tests.test_api_support import (
    client,
    conversation_where,
    detail,
    open_conversation,
    published,
    published_for,
)


async def test_replies_share_only_online_store_products_and_active_codes(
    stack, producer, db, prepared
):
    shop = await new_shop(producer, db)
    cid = await open_conversation(producer, db, shop.shop_id)
    accepted: list[str] = []
    async with client(stack, shop, "carla") as api:  # any staff member may answer
        refusals = [
            ({"product_id": "p-wholesale-kit"},
             "is not available on the Online Store sales channel"),
            ({"product_id": "p-nope", "text": "Look!"}, "product 'p-nope' does not exist"),
            ({"discount_code": "NOPE10"}, "discount code 'NOPE10' does not exist"),
            ({"discount_code": "summer25"}, "discount code 'SUMMER25' is expired"),
            ({}, "a reply needs text, product_id, discount_code or image_url"),
            ({"text": "   "}, "a reply needs text"),
            ({"product_id": "p-anorak", "discount_code": "WELCOME10"}, "at most one of"),
            ({"text": "Hi", "saved_reply_id": str(uuid.uuid4())}, "cannot be combined"),
            ({"saved_reply_id": str(uuid.uuid4())}, "no such saved reply"),
            ({"saved_reply_id": "nope"}, "saved_reply_id"),
            ({"image_url": "not a url"}, "image_url"),
            ({"txt": "typo"}, "txt"),
            ({"text": "x" * 20_001}, "text"),
        ]
        for body, message in refusals:
            response = await api.post(f"/conversations/{cid}/replies", json=body)
            assert response.status_code == 422, (body, response.text)
            assert message in detail(response), (body, detail(response))
        not_json = await api.post(
            f"/conversations/{cid}/replies", content=b"{text", headers={"content-type":
                                                                         "application/json"}
        )
        assert not_json.status_code == 422 and detail(not_json)

        product = await api.post(
            f"/conversations/{cid}/replies", json={"product_id": "p-anorak", "text": "This one"}
        )
        assert product.status_code == 202, product.text
        assert product.json()["status"] == "accepted"
        sent = await published(prepared, product.json()["command_id"])
        assert isinstance(sent, ReplyCommand)
        assert (sent.shop_id, sent.conversation_id, sent.staff_id) == (shop.shop_id, cid, "carla")
        assert (sent.product_id, sent.text, sent.discount_code) == ("p-anorak", "This one", None)
        accepted.append(sent.command_id)

        # Codes are case-insensitive; the command carries the shop's own spelling.
        code = await api.post(f"/conversations/{cid}/replies", json={"discount_code": "welcome10"})
        assert code.status_code == 202, code.text
        sent = await published(prepared, code.json()["command_id"])
        assert (sent.discount_code, sent.product_id, sent.text) == ("WELCOME10", None, None)
        accepted.append(sent.command_id)

        image = await api.post(
            f"/conversations/{cid}/replies",
            json={"image_url": "https://cdn.example.com/anorak.jpg", "text": "In red"},
        )
        assert image.status_code == 202, image.text
        sent = await published(prepared, image.json()["command_id"])
        assert str(sent.image_url) == "https://cdn.example.com/anorak.jpg"
        accepted.append(sent.command_id)

        # The refused ones published nothing.
        everything = await published_for(prepared, cid, len(accepted))
        assert sorted(c.command_id for c in everything) == sorted(accepted)

        # The router applied them: the replies are on the timeline with what they carry.
        one = await conversation_where(api, cid, lambda d: sum(
            i["kind"] == "merchant_reply" for i in d["timeline"]) == 3)
        replies = [i for i in one["timeline"] if i["kind"] == "merchant_reply"]
        assert replies[0]["data"]["product"]["product_id"] == "p-anorak"
        assert replies[0]["staff_name"] == "Carla Nguyen"
        assert replies[1]["data"]["discount"] == {
            "code": "WELCOME10", "url": f"https://{shop.domain}/discount/WELCOME10",
        }
        assert replies[2]["data"]["image_url"] == "https://cdn.example.com/anorak.jpg"
        assert all(r["delivery_status"] in ("pending", "held", "sent", "failed")
                   for r in replies)


async def test_assign_only_to_staff_with_the_chat_permission(stack, producer, db, prepared):
    shop = await new_shop(producer, db)
    other_shop = await new_shop(producer, db)
    cid = await open_conversation(producer, db, shop.shop_id)
    async with client(stack, shop) as api:
        carla = await api.post(f"/conversations/{cid}/assign", json={"staff_id": "carla"})
        assert carla.status_code == 422
        assert detail(carla) == (
            "Carla Nguyen does not have the online store chat permission and cannot be assigned"
        )
        # Dora works for another shop only: she is no one here.
        await producer.send_and_wait(SHOP_STAFF, StaffUpserted(
            event_id=unique("staff"), shop_id=other_shop.shop_id, staff_id="dora",
            name="Dora Holm", email="dora@example.com", permissions=["online_store_chat"],
            at=datetime.now(UTC),
        ))
        await eventually(lambda: db.fetchval(
            "SELECT 1 FROM staff WHERE shop_id = $1 AND staff_id = 'dora'", other_shop.shop_id
        ))
        for nobody in ("nobody", "dora"):
            response = await api.post(f"/conversations/{cid}/assign", json={"staff_id": nobody})
            assert response.status_code == 422 and detail(response) == "no such staff member"
        for body in ({}, {"staff_id": ""}, {"staff_id": "ben", "extra": 1}):
            response = await api.post(f"/conversations/{cid}/assign", json=body)
            assert response.status_code == 422, (body, response.text)
        assert await published_for(prepared, cid, 0) == []

        ben = await api.post(f"/conversations/{cid}/assign", json={"staff_id": "ben"})
        assert ben.status_code == 202, ben.text
        command = await published(prepared, ben.json()["command_id"])
        assert isinstance(command, AssignCommand)
        assert (command.assignee_staff_id, command.staff_id) == ("ben", "ava")
        one = await conversation_where(api, cid, lambda d: d["assignee"] is not None)
        assert one["assignee"] == {"staff_id": "ben", "name": "Ben Okafor"}

        unassign = await api.post(f"/conversations/{cid}/unassign")
        assert unassign.status_code == 202
        assert isinstance(await published(prepared, unassign.json()["command_id"]),
                          UnassignCommand)
        one = await conversation_where(api, cid, lambda d: d["assignee"] is None)
        assert [i["kind"] for i in one["timeline"]][-2:] == ["assigned", "unassigned"]


async def test_status_mark_unread_subject_and_notes(stack, producer, db, prepared):
    shop = await new_shop(producer, db)
    cid = await open_conversation(producer, db, shop.shop_id)
    async with client(stack, shop) as api:
        reply = await api.post(f"/conversations/{cid}/replies", json={"text": "Yes, we do."})
        assert reply.status_code == 202
        await conversation_where(api, cid, lambda d: not d["unread"])

        for bad in ({"status": "archived"}, {}, {"status": None}):
            response = await api.post(f"/conversations/{cid}/status", json=bad)
            assert response.status_code == 422, (bad, response.text)
            assert "status" in detail(response)
        closed = await api.post(f"/conversations/{cid}/status", json={"status": "closed"})
        assert closed.status_code == 202
        command = await published(prepared, closed.json()["command_id"])
        assert isinstance(command, SetStatusCommand) and command.status == "closed"
        await conversation_where(api, cid, lambda d: d["status"] == "closed")
        reopened = await api.post(f"/conversations/{cid}/status", json={"status": "open"})
        assert reopened.status_code == 202
        await conversation_where(api, cid, lambda d: d["status"] == "open")

        unread = await api.post(f"/conversations/{cid}/mark-unread")
        assert unread.status_code == 202
        assert isinstance(await published(prepared, unread.json()["command_id"]),
                          MarkUnreadCommand)
        await conversation_where(api, cid, lambda d: d["unread"])

        subject = await api.put(f"/conversations/{cid}/subject", json={"subject": "Shipping SE"})
        assert subject.status_code == 202
        command = await published(prepared, subject.json()["command_id"])
        assert isinstance(command, SetSubjectCommand) and command.subject == "Shipping SE"

        for bad in ({"text": ""}, {"text": "   "}, {"text": "x" * 5001}, {}):
            response = await api.post(f"/conversations/{cid}/notes", json=bad)
            assert response.status_code == 422, (bad, response.text)
        note = await api.post(f"/conversations/{cid}/notes", json={"text": "  Ships to SE  "})
        assert note.status_code == 202
        command = await published(prepared, note.json()["command_id"])
        assert isinstance(command, AddNoteCommand) and command.text == "Ships to SE"

        one = await conversation_where(api, cid, lambda d: d["customer"]["notes"])
        assert one["subject"] == "Shipping SE"
        assert [n["text"] for n in one["customer"]["notes"]] == ["Ships to SE"]
        commanded = ["merchant_reply", "status_changed", "status_changed", "marked_unread",
                     "subject_changed", "note_added"]
        kinds = [i["kind"] for i in one["timeline"] if i["kind"] in commanded]
        assert kinds == commanded


async def test_turn_off_updates_for_one_order(stack, producer, db, prepared):
    shop = await new_shop(producer, db)  # its demo data: orders o-1001 and o-1002 of Maja Berg
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 2 FROM orders WHERE shop_id = $1", shop.shop_id
    ))
    cid = await open_conversation(
        producer, db, shop.shop_id, channel="messenger", visitor_id=None,
        customer={"email": "maja.berg@example.com", "name": "Maja Berg", "customer_id": "c-maja"},
    )
    async with client(stack, shop, "ben") as api:
        for body, message in (({"order_id": "o-9999"}, "order 'o-9999' does not exist"),
                              ({}, "order_id"), ({"order_id": ""}, "order_id")):
            response = await api.post(f"/conversations/{cid}/turn-off-order-updates", json=body)
            assert response.status_code == 422, (body, response.text)
            assert message in detail(response)
        response = await api.post(f"/conversations/{cid}/turn-off-order-updates",
                                  json={"order_id": "o-1002"})
        assert response.status_code == 202, response.text
        command = await published(prepared, response.json()["command_id"])
        assert isinstance(command, TurnOffOrderUpdatesCommand)
        assert (command.order_id, command.staff_id) == ("o-1002", "ben")
        one = await conversation_where(
            api, cid, lambda d: not d["customer"]["recent_orders"][0]["updates_enabled"]
        )
        orders = one["customer"]["recent_orders"]
        assert [(o["order_id"], o["updates_enabled"]) for o in orders] == [
            ("o-1002", False), ("o-1001", True),
        ]
        assert one["timeline"][-1]["kind"] == "order_updates_off"


async def test_request_bodies_have_a_size_limit_and_no_nul(stack, producer, db):
    import httpx

    from services.gateway.limits import API_MAX_BODY_BYTES

    shop = await new_shop(producer, db)
    headers = {"Authorization": f"Bearer {shop.tokens['ava']}"}
    async with httpx.AsyncClient(base_url=stack["gateway"].url, headers=headers) as api:
        huge = {"shortcut": "big", "body": "x" * (API_MAX_BODY_BYTES + 10)}
        response = await api.post("/api/v1/saved-replies", json=huge)
        assert response.status_code == 413
        assert "too large" in response.json()["detail"]

        async def chunks():  # no Content-Length: counted as it arrives
            for _ in range(40):
                yield b"x" * 8192

        chunked = await api.post("/api/v1/saved-replies", content=chunks(),
                                 headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413
        fine = await api.post("/api/v1/saved-replies", json={"shortcut": "ok", "body": "Hi!"})
        assert fine.status_code == 201
        # PostgreSQL text cannot hold NUL: refused up front, never a server error.
        nul = await api.post("/api/v1/saved-replies", json={"shortcut": "n", "body": "a\x00b"})
        assert nul.status_code == 422
        assert (await api.get("/api/v1/saved-replies", params={"q": "a\x00"})).status_code == 422
    # The request guard checks a request's form before anything else, so whoever sends it:
    # a malformed request is refused as such, a well-formed one without a valid token is a 401.
    async with httpx.AsyncClient(base_url=stack["gateway"].url) as anonymous:
        for token in (None, "Bearer not-a-token"):
            headers = {"Authorization": token} if token else {}
            response = await anonymous.post(
                "/api/v1/saved-replies", json={"shortcut": "n", "body": "a\x00b"},
                headers=headers)
            assert response.status_code == 422, token
            assert response.json()["detail"].startswith("the request body: NUL")
            response = await anonymous.post(
                "/api/v1/saved-replies", json={"shortcut": "n", "body": "ab"}, headers=headers)
            assert response.status_code == 401, token
