"""The caller (/me), the assignable staff, and the product and discount pickers: each answers
from the caller's shop only."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.contracts import ProductUpserted, StaffUpserted
from shared.topics import SHOP_PRODUCTS, SHOP_STAFF
from tests.conftest import eventually
from tests.helpers import new_shop, unique
from tests.test_api_support import client


async def test_me(stack, producer, db):
    shop = await new_shop(producer, db)
    async with client(stack, shop) as ava, client(stack, shop, "carla") as carla:
        me = (await ava.get("/me")).json()
        assert me == {
            "staff_id": "ava", "name": "Ava Lindqvist", "email": "ava@fjordpine.example",
            "shop_id": shop.shop_id,
            "shop": {"shop_id": shop.shop_id, "name": "Fjord & Pine Outfitters",
                     "domain": shop.domain, "currency": "EUR", "timezone": "Europe/Berlin"},
            "permissions": ["customer_privacy", "messaging", "online_store_chat"],
            "can_be_assigned": True, "can_see_subjects": True,
        }
        me = (await carla.get("/me")).json()
        assert (me["staff_id"], me["permissions"], me["can_be_assigned"],
                me["can_see_subjects"]) == ("carla", [], False, False)


async def test_assignable_staff_of_my_shop_only(stack, producer, db):
    shop = await new_shop(producer, db)
    other = await new_shop(producer, db)
    await producer.send_and_wait(SHOP_STAFF, StaffUpserted(
        event_id=unique("staff"), shop_id=other.shop_id, staff_id="dora", name="Dora Holm",
        email="dora@holm.example", permissions=["online_store_chat"], at=datetime.now(UTC),
    ))
    await eventually(lambda: db.fetchval(
        "SELECT 1 FROM staff WHERE shop_id = $1 AND staff_id = 'dora'", other.shop_id
    ))
    async with client(stack, shop, "carla") as api, client(stack, other, "carla") as theirs:
        async def search(who=api, **params) -> list[str]:
            response = await who.get("/staff/assignable", params=params)
            assert response.status_code == 200, response.text
            return [s["staff_id"] for s in response.json()["items"]]

        everyone = (await api.get("/staff/assignable")).json()["items"]
        assert everyone == [
            {"staff_id": "ava", "name": "Ava Lindqvist", "email": "ava@fjordpine.example"},
            {"staff_id": "ben", "name": "Ben Okafor", "email": "ben@fjordpine.example"},
        ]  # not Carla: she lacks the online store chat permission
        assert await search(q="OKAFOR") == ["ben"]
        assert await search(q="ava@fjord") == ["ava"]
        assert await search(q="fjordpine") == ["ava", "ben"]
        assert await search(q="carla") == []
        assert await search(q="%") == []
        assert await search(q="dora") == []
        assert await search(theirs, q="dora") == ["dora"]
        assert await search(theirs) == ["ava", "ben", "dora"]


async def test_product_and_discount_pickers(stack, producer, db):
    shop = await new_shop(producer, db)
    other = await new_shop(producer, db)
    await producer.send_and_wait(SHOP_PRODUCTS, ProductUpserted(
        event_id=unique("product"), shop_id=other.shop_id, product_id="p-other",
        title="Other Shop Wool Socks", price="12.50", currency="EUR", online_store=True,
        at=datetime.now(UTC),
    ))
    await eventually(lambda: db.fetchval(
        "SELECT 1 FROM products WHERE shop_id = $1 AND product_id = 'p-other'", other.shop_id
    ))
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 2 FROM discount_codes WHERE shop_id = $1", shop.shop_id
    ))
    async with client(stack, shop) as api, client(stack, other) as theirs:
        async def products(who=api, **params) -> list[str]:
            response = await who.get("/products", params=params)
            assert response.status_code == 200, response.text
            return [p["product_id"] for p in response.json()["items"]]

        # By default only what can be shared: products on the Online Store.
        assert await products() == ["p-anorak", "p-wool-beanie", "p-trail-boots"]
        assert await products(online_store="false") == ["p-wholesale-kit"]
        assert await products(q="WOOL") == ["p-wool-beanie"]
        assert await products(q="p-anorak") == ["p-anorak"]
        assert await products(q="socks") == []
        assert await products(theirs, q="socks") == ["p-other"]
        [anorak] = (await api.get("/products", params={"q": "anorak"})).json()["items"]
        assert anorak == {
            "product_id": "p-anorak", "title": "Fjord Rain Anorak", "price": "189.00",
            "currency": "EUR", "url": f"https://{shop.domain}/products/anorak",
            "image_url": None, "online_store": True,
        }
        page = (await api.get("/products", params={"limit": 2})).json()
        assert (len(page["items"]), page["next_offset"]) == (2, 2)
        page = (await api.get("/products", params={"limit": 2, "offset": 2})).json()
        assert (len(page["items"]), page["next_offset"]) == (1, None)
        assert (await api.get("/products", params={"limit": 500})).status_code == 422

        codes = (await api.get("/discounts")).json()["items"]
        assert [(c["code"], c["status"], c["shareable"]) for c in codes] == [
            ("SUMMER25", "expired", False), ("WELCOME10", "active", True),
        ]
        [active] = (await api.get("/discounts", params={"status": "active"})).json()["items"]
        assert (active["code"], active["url"]) == (
            "WELCOME10", f"https://{shop.domain}/discount/WELCOME10"
        )
        [expired] = (await api.get("/discounts", params={"status": "expired"})).json()["items"]
        assert (expired["code"], expired["url"]) == ("SUMMER25", None)
        assert (await api.get("/discounts", params={"status": "disabled"})).json()["items"] == []
        assert (await api.get("/discounts", params={"status": "nope"})).status_code == 422
