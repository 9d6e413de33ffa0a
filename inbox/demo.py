"""Demo data: a shop, its staff, products and discount codes, published on the shop-data topics
(the same path the shop platform uses). The tests build their shops with it too."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from pydantic import BaseModel

from services.gateway.signin.passwords import hash_password
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
    #: staff_id -> email address (what they sign in with)
    emails: dict[str, str] = field(default_factory=dict)
    #: staff_id -> plaintext password (only its argon2id hash is published); empty unless asked
    passwords: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, BaseModel]] = field(default_factory=list)


def demo_shop(
    shop_id: str = "demo-shop", token_seed: str = "demo", with_passwords: bool = False,
    email_domain: str = "fjordpine.example", storefront_url: str | None = None,
    timezone: str = "Europe/Berlin",
) -> DemoShop:
    """The demo shop's events; `with_passwords` gives its staff passwords (hashing costs ~0.1 s
    each, which most tests do without: they use API tokens). `storefront_url`: where its Online
    Store is when not at its (made-up) domain; in development, the demo storefront's own address
    for this shop, so that a shared discount link opens there and applies. `timezone`: the shop's
    (its chat hours are kept in it)."""
    now = datetime.now(UTC)
    domain = f"{shop_id}.example.com"
    shop = DemoShop(shop_id, domain)

    def add(topic: str, event: BaseModel) -> None:
        shop.events.append((topic, event))

    add(SHOP_SHOPS, ShopUpserted(
        event_id=f"{shop_id}:shop:1", shop_id=shop_id, name="Fjord & Pine Outfitters",
        domain=domain, currency="EUR", timezone=timezone, storefront_url=storefront_url,
        at=now,
    ))
    staff = [
        ("ava", "Ava Lindqvist", f"ava@{email_domain}",
         ["online_store_chat", "messaging", "customer_privacy"]),
        ("ben", "Ben Okafor", f"ben@{email_domain}", ["online_store_chat"]),
        ("carla", "Carla Nguyen", f"carla@{email_domain}", []),  # no chat permission
    ]
    for staff_id, name, email, permissions in staff:
        token = f"{token_seed}-{shop_id}-{staff_id}-token"
        shop.tokens[staff_id] = token
        shop.emails[staff_id] = email
        password_hash = None
        if with_passwords:
            shop.passwords[staff_id] = f"{token_seed}-{staff_id}-password"
            password_hash = hash_password(shop.passwords[staff_id])
        add(SHOP_STAFF, StaffUpserted(
            event_id=f"{shop_id}:staff:{staff_id}:1", shop_id=shop_id, staff_id=staff_id,
            name=name, email=email, permissions=permissions,
            token_sha256=hashlib.sha256(token.encode()).hexdigest(),
            password_argon2id=password_hash, at=now,
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
    discounts = [  # 10 % off; 25 % off, expired
        ("WELCOME10", "active", now - timedelta(days=30), None, "10"),
        ("SUMMER25", "expired", now - timedelta(days=120), now - timedelta(days=30), "25"),
    ]
    for code, status, starts, ends, percent in discounts:
        add(SHOP_DISCOUNTS, DiscountUpserted(
            event_id=f"{shop_id}:discount:{code}:1", shop_id=shop_id, code=code, status=status,
            starts_at=starts, ends_at=ends, value_type="percentage", value=percent, at=now,
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


async def publish(
    producer: EventProducer,
    shop: DemoShop,
    shop_stored: Callable[[], Awaitable[bool]] | None = None,
) -> None:
    """Publish the shop, then its data. With `shop_stored`, the rest waits until the shop is
    known: topics are not ordered with each other, and events of an unknown shop are refused
    (as a shop platform creates a shop before its orders)."""
    first = [(t, e) for t, e in shop.events if t == SHOP_SHOPS]
    rest = [(t, e) for t, e in shop.events if t != SHOP_SHOPS]
    for batch in (first, rest):
        futures = [await producer.send(topic, event) for topic, event in batch]
        await asyncio.gather(*futures)
        if shop_stored is not None and batch is first:
            deadline = asyncio.get_running_loop().time() + 60
            while not await shop_stored():
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"shop {shop.shop_id} was not stored within 60 s")
                await asyncio.sleep(0.1)


def shop_stored_in(pool: asyncpg.Pool, shop_id: str) -> Callable[[], Awaitable[bool]]:
    async def stored() -> bool:
        return bool(await pool.fetchval("SELECT 1 FROM shops WHERE shop_id = $1", shop_id))

    return stored


#: The demo shop's Facebook Page, known to the local Graph API stand-in (approved for Human
#: Agent, so staff can answer up to 7 days after a customer's last message).
DEMO_PAGE_ID = "100200300400500"
DEMO_PAGE_TOKEN = "demo-page-access-token"


DEMO_INSTANT_ANSWER = {
    "enabled": True,
    "text": "Hi {{ customer_first_name }}! We ship across Europe in 2-4 working days, free "
            "over 50 EUR. A colleague will follow up if you need more.",
}


async def connect_demo_messenger(gateway_url: str, staff_token: str, timeout: float = 60) -> None:
    """Connect the demo shop's Messenger channel to the demo Page through the merchant API
    (the same call a merchant makes), once the gateway knows the staff member."""
    deadline = asyncio.get_running_loop().time() + timeout
    body = {"page_id": DEMO_PAGE_ID, "page_access_token": DEMO_PAGE_TOKEN,
            "human_agent_approved": True}
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            try:
                response = await client.put(
                    f"{gateway_url}/api/v1/channels/messenger", json=body,
                    headers={"Authorization": f"Bearer {staff_token}"})
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("could not connect the demo shop's Messenger channel")
            await asyncio.sleep(0.3)


async def turn_on_demo_instant_answer(gateway_url: str, staff_token: str) -> None:
    """An instant answer to show (ask the demo store's chat about shipping), set through the
    merchant API. The demo shop's chat stays "always" available: a newcomer is answered by
    staff; the inbox's Chat settings show how to set hours."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.put(
            f"{gateway_url}/api/v1/settings/instant-answers/shipping", json=DEMO_INSTANT_ANSWER,
            headers={"Authorization": f"Bearer {staff_token}"})
    response.raise_for_status()
