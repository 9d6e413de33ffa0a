"""Saved replies through the merchant API: kept per shop, shortcuts unique in a shop, known
placeholders only, expanded for a conversation when used in a reply."""

from __future__ import annotations

import uuid

from shared.contracts import ReplyCommand
from shared.rules import PLACEHOLDERS
from tests.conftest import eventually
from tests.helpers import new_shop
from tests.test_api_support import (
    client,
    conversation_where,
    detail,
    open_conversation,
    published,
)


async def test_saved_replies_crud(stack, producer, db):
    shop = await new_shop(producer, db)
    async with client(stack, shop, "carla") as api:
        created = await api.post("/saved-replies", json={
            "shortcut": "thanks", "body": "Thanks, {{ customer_first_name }}!",
        })
        assert created.status_code == 201, created.text
        saved = created.json()
        assert (saved["shortcut"], saved["body"], saved["created_by"]) == (
            "thanks", "Thanks, {{ customer_first_name }}!", "carla"
        )
        rid = saved["saved_reply_id"]
        other = (await api.post("/saved-replies", json={
            "shortcut": "shipping", "body": "We ship within 2 days from {{shop_name}}.",
        })).json()

        duplicate = await api.post("/saved-replies", json={"shortcut": "THANKS", "body": "Hi"})
        assert duplicate.status_code == 409
        assert detail(duplicate) == "a saved reply with the shortcut 'THANKS' already exists"
        unknown = await api.post("/saved-replies", json={
            "shortcut": "track", "body": "{{ tracking_url }} {{ coupon }} {{ order_number }}",
        })
        assert unknown.status_code == 422
        assert detail(unknown).startswith("unknown placeholders: coupon, tracking_url")
        assert all(p in detail(unknown) for p in PLACEHOLDERS)
        for bad in ({"shortcut": "two words", "body": "x"}, {"shortcut": "x", "body": "  "},
                    {"shortcut": "", "body": "x"}, {"shortcut": "x"},
                    {"shortcut": "x", "body": "y" * 5001}, {"shortcut": "x", "body": "y", "z": 1}):
            response = await api.post("/saved-replies", json=bad)
            assert response.status_code == 422, (bad, response.text)

        listing = (await api.get("/saved-replies")).json()["items"]
        assert [r["shortcut"] for r in listing] == ["shipping", "thanks"]
        assert [r["shortcut"] for r in (await api.get(
            "/saved-replies", params={"q": "SHIP"})).json()["items"]] == ["shipping"]
        assert [r["shortcut"] for r in (await api.get(
            "/saved-replies", params={"q": "first_name"})).json()["items"]] == ["thanks"]
        assert (await api.get("/saved-replies", params={"q": "%"})).json()["items"] == []
        assert (await api.get(f"/saved-replies/{rid}")).json() == saved

        updated = await api.put(f"/saved-replies/{rid}", json={
            "shortcut": "thank-you", "body": "Thank you, {{ customer_name }}.",
        })
        assert updated.status_code == 200, updated.text
        assert (updated.json()["shortcut"], updated.json()["body"]) == (
            "thank-you", "Thank you, {{ customer_name }}."
        )
        assert updated.json()["updated_at"] >= saved["updated_at"]
        clash = await api.put(f"/saved-replies/{rid}", json={"shortcut": "Shipping", "body": "x"})
        assert clash.status_code == 409
        wrong = await api.put(f"/saved-replies/{rid}", json={"shortcut": "t", "body": "{{ x }}"})
        assert wrong.status_code == 422 and "unknown placeholders: x" in detail(wrong)
        assert (await api.get(f"/saved-replies/{rid}")).json()["shortcut"] == "thank-you"

        assert (await api.delete(f"/saved-replies/{other['saved_reply_id']}")).status_code == 204
        for missing in (other["saved_reply_id"], str(uuid.uuid4()), "not-an-id"):
            for method, body in (("GET", None), ("PUT", {"shortcut": "a", "body": "b"}),
                                 ("DELETE", None)):
                response = await api.request(method, f"/saved-replies/{missing}", json=body)
                assert response.status_code == 404, (method, missing, response.text)
                assert detail(response) == "saved reply not found"
        assert [r["shortcut"] for r in (await api.get("/saved-replies")).json()["items"]] == [
            "thank-you"
        ]
        # The shortcut is free again once its saved reply is deleted.
        reused = await api.post("/saved-replies", json={"shortcut": "shipping", "body": "x"})
        assert reused.status_code == 201


async def test_saved_replies_belong_to_one_shop(stack, producer, db):
    shop_a = await new_shop(producer, db)
    shop_b = await new_shop(producer, db)
    theirs_conversation = await open_conversation(producer, db, shop_a.shop_id)
    async with client(stack, shop_a) as a, client(stack, shop_b) as b:
        theirs = (await a.post("/saved-replies", json={"shortcut": "hi", "body": "Hi!"})).json()
        rid = theirs["saved_reply_id"]
        assert (await b.get("/saved-replies")).json()["items"] == []
        for method, path, body in (
            ("GET", f"/saved-replies/{rid}", None),
            ("PUT", f"/saved-replies/{rid}", {"shortcut": "mine", "body": "Mine"}),
            ("DELETE", f"/saved-replies/{rid}", None),
            ("GET", f"/saved-replies/{rid}/preview?conversation_id={theirs_conversation}", None),
        ):
            response = await b.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert detail(response) == "saved reply not found"
        # The same shortcut is free in another shop.
        ours = await b.post("/saved-replies", json={"shortcut": "HI", "body": "Hello!"})
        assert ours.status_code == 201
        ours_conversation = await open_conversation(producer, db, shop_b.shop_id)
        # Another shop's saved reply cannot be used in a reply either.
        used = await b.post(f"/conversations/{ours_conversation}/replies",
                            json={"saved_reply_id": rid})
        assert used.status_code == 422 and detail(used) == "no such saved reply"
        # Nor previewed against another shop's conversation.
        preview = await b.get(f"/saved-replies/{ours.json()['saved_reply_id']}/preview",
                              params={"conversation_id": theirs_conversation})
        assert preview.status_code == 404 and detail(preview) == "conversation not found"
        unchanged = (await a.get(f"/saved-replies/{rid}")).json()
        assert unchanged == theirs


async def test_a_saved_reply_expands_its_placeholders_in_a_reply(stack, producer, db, prepared):
    shop = await new_shop(producer, db)  # its demo data: orders #1001 and #1002 of Maja Berg
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 2 FROM orders WHERE shop_id = $1", shop.shop_id
    ))
    cid = await open_conversation(
        producer, db, shop.shop_id,
        customer={"email": "maja.berg@example.com", "name": "Maja Berg", "customer_id": "c-maja"},
    )
    stranger = await open_conversation(producer, db, shop.shop_id, customer=None)
    async with client(stack, shop) as ava, client(stack, shop, "ben") as ben:
        body = ("Hi {{ customer_first_name }}, your order {{order_number}} is on its way. "
                "{{ shop_name }} ({{ staff_name }})")
        rid = (await ava.post("/saved-replies", json={"shortcut": "on-its-way", "body": body})
               ).json()["saved_reply_id"]
        expected = ("Hi Maja, your order #1002 is on its way. "
                    "Fjord & Pine Outfitters (Ben Okafor)")
        preview = await ben.get(f"/saved-replies/{rid}/preview", params={"conversation_id": cid})
        assert preview.status_code == 200, preview.text
        assert preview.json() == {"saved_reply_id": rid, "conversation_id": cid, "text": expected}
        # Placeholders without a value disappear, never leaving braces behind.
        bare = (await ben.get(f"/saved-replies/{rid}/preview",
                              params={"conversation_id": stranger})).json()["text"]
        assert bare == "Hi, your order is on its way. Fjord & Pine Outfitters (Ben Okafor)"
        missing = await ben.get(f"/saved-replies/{rid}/preview")
        assert missing.status_code == 422 and "conversation_id" in detail(missing)

        sent = await ben.post(f"/conversations/{cid}/replies", json={"saved_reply_id": rid})
        assert sent.status_code == 202, sent.text
        command = await published(prepared, sent.json()["command_id"])
        assert isinstance(command, ReplyCommand)
        assert (command.text, command.staff_id) == (expected, "ben")
        # A saved reply may carry a product along.
        with_product = await ben.post(f"/conversations/{cid}/replies",
                                      json={"saved_reply_id": rid, "product_id": "p-anorak"})
        assert with_product.status_code == 202, with_product.text
        command = await published(prepared, with_product.json()["command_id"])
        assert (command.text, command.product_id) == (expected, "p-anorak")

        one = await conversation_where(ava, cid, lambda d: sum(
            i["kind"] == "merchant_reply" for i in d["timeline"]) == 2)
        assert [i["text"] for i in one["timeline"] if i["kind"] == "merchant_reply"] == [
            expected, expected
        ]
