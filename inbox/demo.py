"""Demo data: a shop, its staff, products and discount codes, published on the shop-data topics
(the same path the shop platform uses). The tests build their shops with it too."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from shared.contracts import (
    DiscountUpserted,
    OrderEvent,
    ProductUpserted,
    ShopUpserted,
    StaffUpserted,
)
from shared.kafka.producer import EventProducer
from shared.topics import ORDERS_EVENTS, SHOP_DISCOUNTS, SHOP_PRODUCTS, SHOP_SHOPS, SHOP_STAFF


@dataclass
class DemoShop:
    shop_id: str
    domain: str
    #: staff_id -> plaintext API token (only its SHA-256 is published)
    tokens: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, BaseModel]] = field(default_factory=list)


def demo_shop(shop_id: str = "demo-shop", token_seed: str = "demo") -> DemoShop:
    now = datetime.now(UTC)
    domain = f"{shop_id}.example.com"
    shop = DemoShop(shop_id, domain)

    def add(topic: str, event: BaseModel) -> None:
        shop.events.append((topic, event))

    add(SHOP_SHOPS, ShopUpserted(
        event_id=f"{shop_id}:shop:1", shop_id=shop_id, name="Fjord & Pine Outfitters",
        domain=domain, currency="EUR", timezone="Europe/Berlin", at=now,
    ))
    staff = [
        ("ava", "Ava Lindqvist", "ava@fjordpine.example", ["online_store_chat", "messaging"]),
        ("ben", "Ben Okafor", "ben@fjordpine.example", ["online_store_chat"]),
        ("carla", "Carla Nguyen", "carla@fjordpine.example", []),  # no chat permission
    ]
    for staff_id, name, email, permissions in staff:
        token = f"{token_seed}-{shop_id}-{staff_id}-token"
        shop.tokens[staff_id] = token
        add(SHOP_STAFF, StaffUpserted(
            event_id=f"{shop_id}:staff:{staff_id}:1", shop_id=shop_id, staff_id=staff_id,
            name=name, email=email, permissions=permissions,
            token_sha256=hashlib.sha256(token.encode()).hexdigest(), at=now,
        ))
    products = [
        ("p-anorak", "Fjord Rain Anorak", "189.00", True),
        ("p-wool-beanie", "Merino Wool Beanie", "29.00", True),
        ("p-trail-boots", "Trailhead Waterproof Hiking Boots for Long Distance Treks", "249.00",
         True),
        ("p-wholesale-kit", "Retailer Sample Kit (not sold online)", "0.00", False),
    ]
    for product_id, title, price, online in products:
        add(SHOP_PRODUCTS, ProductUpserted(
            event_id=f"{shop_id}:product:{product_id}:1", shop_id=shop_id, product_id=product_id,
            title=title, price=price, currency="EUR", online_store=online,
            url=f"https://{domain}/products/{product_id.removeprefix('p-')}", at=now,
        ))
    discounts = [
        ("WELCOME10", "active", now - timedelta(days=30), None),
        ("SUMMER25", "expired", now - timedelta(days=120), now - timedelta(days=30)),
    ]
    for code, status, starts, ends in discounts:
        add(SHOP_DISCOUNTS, DiscountUpserted(
            event_id=f"{shop_id}:discount:{code}:1", shop_id=shop_id, code=code, status=status,
            starts_at=starts, ends_at=ends, at=now,
        ))
    customer = {"email": "maja.berg@example.com", "name": "Maja Berg", "customer_id": "c-maja",
                "city": "Gothenburg", "country": "SE", "timezone": "Europe/Stockholm"}
    orders = [
        ("o-1001", "#1001", "delivered", now - timedelta(days=40), "218.00"),
        ("o-1002", "#1002", "shipped", now - timedelta(days=2), "29.00"),
    ]
    for order_id, number, status, placed, total in orders:
        for kind, at in (("created", placed), (status, placed + timedelta(hours=20))):
            add(ORDERS_EVENTS, OrderEvent(
                event_id=f"{shop_id}:order:{order_id}:{kind}", shop_id=shop_id,
                order_id=order_id, order_number=number, type=kind, at=at, customer=customer,
                total_price=total, currency="EUR",
            ))
    return shop


async def publish(producer: EventProducer, shop: DemoShop) -> None:
    futures = [await producer.send(topic, event) for topic, event in shop.events]
    for future in futures:
        await future
