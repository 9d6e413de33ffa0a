"""Pure generators of realistic traffic (no I/O): what the shops' customers and staff do.

Shops of unequal size (a few busy ones, a long tail); customers who write on the channel they
prefer (online store chat, Messenger, email, Instagram, the Shop app) in their own language,
with texts taken from the classifier's held-out set; visitors browsing the storefront
(heartbeats, page views, leaving) and changing their carts; orders placed with and without a
Messenger opt-in, then shipped and delivered; staff answering conversations that exist.

Every event is returned already serialised, with the effects it must produce (`Expect`), so the
follower can match each effect to its cause:

- a customer message: its timeline item on `inbox.timeline` (item id = message id =
  `derived_id("message", shop_id, event_id)`) and, when the model is confident about its text,
  its tag on `classifier.tags`;
- a reply: the delivery result on `delivery.results` (`derived_id("message", shop_id,
  command_id)`): `sent`, or `failed` with the channel's reason;
- a cart change of a visitor whose chat conversation exists: a `cart_event` timeline item
  (`derived_id("cart", shop_id, event_id)`).

Activity signals and orders have no one-to-one effect to follow (presence announces changes
only; orders are stored, and checked in the database at the end).
"""

from __future__ import annotations

import itertools
import json
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.ids import derived_id
from shared.topics import (
    CHAT_INBOUND,
    INBOX_COMMANDS,
    ORDERS_EVENTS,
    STOREFRONT_ACTIVITY,
    STOREFRONT_CART,
)

KINDS = ("message", "reply", "cart", "activity", "order")
TOPIC_OF_KIND = {
    "message": CHAT_INBOUND,
    "reply": INBOX_COMMANDS,
    "cart": STOREFRONT_CART,
    "activity": STOREFRONT_ACTIVITY,
    "order": ORDERS_EVENTS,
}

# What an event is followed to ("paths"), and the effect topics' kinds of effect.
MESSAGE_TIMELINE = "message→timeline"
MESSAGE_TAG = "message→tag"
REPLY_DELIVERY = "reply→delivery"
CART_TIMELINE = "cart→timeline"
PATHS = (MESSAGE_TIMELINE, MESSAGE_TAG, REPLY_DELIVERY, CART_TIMELINE)
TIMELINE, TAG, DELIVERY = "timeline", "tag", "delivery"

#: Share of conversations per channel (online store chat first, as in a typical shop).
CHANNEL_SHARES: dict[str, float] = {
    "online_store_chat": 45, "messenger": 20, "email": 15, "instagram": 12, "shop_app": 8,
}
LANGUAGE_SHARES: dict[str, float] = {"en": 30, "de": 18, "fr": 15, "es": 15, "vi": 12, "sv": 10}

#: Per language: locale, places (city, country, time zone), first names, last names.
PEOPLE: dict[str, tuple[str, list[tuple[str, str, str]], list[str], list[str]]] = {
    "en": ("en-GB", [("London", "GB", "Europe/London"), ("Leeds", "GB", "Europe/London"),
                     ("Boston", "US", "America/New_York"), ("Toronto", "CA", "America/Toronto")],
           ["Olivia", "Jack", "Amelia", "Noah", "Grace", "Liam", "Chloe", "Ethan"],
           ["Smith", "Taylor", "Brown", "Wilson", "Clarke", "Walker"]),
    "de": ("de-DE", [("Berlin", "DE", "Europe/Berlin"), ("München", "DE", "Europe/Berlin"),
                     ("Wien", "AT", "Europe/Vienna"), ("Zürich", "CH", "Europe/Zurich")],
           ["Lena", "Jonas", "Mia", "Felix", "Hannah", "Lukas", "Sophie", "Paul"],
           ["Müller", "Schmidt", "Weber", "Becker", "Hoffmann", "Schäfer"]),
    "fr": ("fr-FR", [("Paris", "FR", "Europe/Paris"), ("Lyon", "FR", "Europe/Paris"),
                     ("Bruxelles", "BE", "Europe/Brussels"), ("Montréal", "CA", "America/Toronto")],
           ["Camille", "Louis", "Léa", "Hugo", "Chloé", "Jules", "Manon", "Arthur"],
           ["Martin", "Bernard", "Dubois", "Laurent", "Lefèvre", "Moreau"]),
    "sv": ("sv-SE", [("Stockholm", "SE", "Europe/Stockholm"),
                     ("Göteborg", "SE", "Europe/Stockholm"), ("Malmö", "SE", "Europe/Stockholm")],
           ["Elsa", "Oscar", "Maja", "William", "Alva", "Hugo", "Ebba", "Axel"],
           ["Andersson", "Johansson", "Karlsson", "Nilsson", "Berg", "Lindqvist"]),
    "vi": ("vi-VN", [("Hà Nội", "VN", "Asia/Ho_Chi_Minh"), ("TP. Hồ Chí Minh", "VN",
                                                              "Asia/Ho_Chi_Minh"),
                     ("Đà Nẵng", "VN", "Asia/Ho_Chi_Minh")],
           ["Anh", "Linh", "Minh", "Trang", "Huy", "Ngọc", "Quân", "Thảo"],
           ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ"]),
    "es": ("es-ES", [("Madrid", "ES", "Europe/Madrid"), ("Barcelona", "ES", "Europe/Madrid"),
                     ("Ciudad de México", "MX", "America/Mexico_City"),
                     ("Buenos Aires", "AR", "America/Argentina/Buenos_Aires")],
           ["Lucía", "Mateo", "Sofía", "Hugo", "Valeria", "Daniel", "Martina", "Pablo"],
           ["García", "Martínez", "López", "Sánchez", "Romero", "Torres"]),
}

#: What staff write back, per language.
REPLIES: dict[str, list[str]] = {
    "en": ["Thanks for reaching out! Let me check that for you.",
           "Your order left our warehouse this morning.",
           "Yes, that one is in stock in every size.",
           "We ship to most countries in Europe within 3-5 working days."],
    "de": ["Danke für deine Nachricht! Ich schaue gleich nach.",
           "Deine Bestellung ist heute Morgen rausgegangen.",
           "Ja, den haben wir in allen Größen auf Lager.",
           "Wir liefern innerhalb von 3-5 Werktagen."],
    "fr": ["Merci pour votre message ! Je vérifie tout de suite.",
           "Votre commande est partie ce matin.",
           "Oui, il est disponible dans toutes les tailles.",
           "Nous livrons en 3 à 5 jours ouvrés."],
    "sv": ["Tack för ditt meddelande! Jag kollar direkt.",
           "Din beställning skickades i morse.",
           "Ja, den finns i alla storlekar.",
           "Vi levererar inom 3-5 arbetsdagar."],
    "vi": ["Cảm ơn bạn đã nhắn tin! Mình kiểm tra ngay nhé.",
           "Đơn hàng của bạn đã được gửi đi sáng nay.",
           "Dạ, mẫu này còn đủ size ạ.",
           "Bên mình giao hàng trong 3-5 ngày làm việc."],
    "es": ["¡Gracias por escribirnos! Lo reviso enseguida.",
           "Tu pedido salió de nuestro almacén esta mañana.",
           "Sí, lo tenemos en todas las tallas.",
           "Enviamos en 3 a 5 días hábiles."],
}

#: The demo shop's Online Store products (see inbox/demo.py): id, title, price.
PRODUCTS: tuple[tuple[str, str, str], ...] = (
    ("p-anorak", "Fjord Rain Anorak", "189.00"),
    ("p-wool-beanie", "Merino Wool Beanie", "29.00"),
    ("p-trail-boots", "Trailhead Waterproof Hiking Boots for Long Distance Treks", "249.00"),
)
DISCOUNT_CODE = "WELCOME10"
STAFF_ID = "ava"


@lru_cache(maxsize=1)
def heldout_texts() -> dict[str, tuple[str, ...]]:
    """Customer messages by language: the classifier's held-out set (never trained on)."""
    import services.classifier

    path = Path(services.classifier.__file__).resolve().parent / "data" / "heldout.jsonl"
    texts: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts.setdefault(row["lang"], []).append(row["text"])
    return {lang: tuple(dict.fromkeys(found)) for lang, found in texts.items()}


# --- the traffic mix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mix:
    """Relative weights of the kinds of event (they need not add up to anything)."""

    message: float = 55.0
    reply: float = 12.0
    cart: float = 12.0
    activity: float = 15.0
    order: float = 6.0

    def __post_init__(self) -> None:
        if any(w < 0 for w in self.weights()) or not sum(self.weights()) > 0:
            raise ValueError("mix weights must be non-negative, and one of them positive")

    @classmethod
    def parse(cls, text: str) -> Mix:
        """`default`, `messages`, `replies`, or `kind=weight,…` (kinds left out weigh 0)."""
        presets = {"default": cls(), "messages": cls(1, 0, 0, 0, 0), "replies": cls(0, 1, 0, 0, 0)}
        text = text.strip()
        if text in presets:
            return presets[text]
        weights = dict.fromkeys(KINDS, 0.0)
        for part in filter(None, (p.strip() for p in text.split(","))):
            kind, sep, value = part.partition("=")
            kind = kind.strip()
            if not sep or kind not in weights:
                raise ValueError(f"bad mix entry {part!r}: use kind=weight with kind in "
                                 f"{', '.join(KINDS)} (or a preset: {', '.join(presets)})")
            try:
                weights[kind] = float(value)
            except ValueError as exc:
                raise ValueError(f"bad weight in mix entry {part!r}") from exc
        return cls(**weights)

    def weights(self) -> list[float]:
        return [self.message, self.reply, self.cart, self.activity, self.order]

    def shares(self) -> dict[str, float]:
        total = sum(self.weights())
        return {k: w / total for k, w in zip(KINDS, self.weights(), strict=True)}

    def __str__(self) -> str:
        return ",".join(f"{k}={w:g}" for k, w in zip(KINDS, self.weights(), strict=True) if w)


# --- what is sent and what it must cause ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expect:
    """An effect an event must cause: `effect` (timeline, tag, delivery) with this id."""

    path: str
    effect: str
    effect_id: str


@dataclass(frozen=True, slots=True)
class Planned:
    kind: str
    topic: str
    key: str
    value: bytes
    event_id: str
    shop_id: str
    channel: str | None
    expects: tuple[Expect, ...] = ()


@dataclass
class Thread:
    """A customer's conversation with a shop, on one channel."""

    shop_id: str
    channel: str
    thread_ref: str
    lang: str
    customer: dict[str, str]
    visitor_id: str | None
    conversation_id: str
    confirmed: bool = False
    messages: int = 0


@dataclass
class _Shop:
    shop_id: str
    page_id: str
    threads: list[Thread] = field(default_factory=list)
    #: the threads of online store chat (a storefront visitor behind each)
    chats: list[Thread] = field(default_factory=list)
    visitors: list[str] = field(default_factory=list)
    #: order_id -> (order_number, last type)
    orders: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: the orders not delivered yet
    open_orders: list[str] = field(default_factory=list)
    next_order_number: int = 2001


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class _Weighted:
    """A weighted choice with its cumulative weights computed once."""

    def __init__(self, shares: dict[str, float]) -> None:
        self.keys = list(shares)
        self.cum = list(itertools.accumulate(shares.values()))

    def __call__(self, rng: random.Random) -> str:
        return rng.choices(self.keys, cum_weights=self.cum)[0]


class Traffic:
    """Makes events one at a time, deterministic for a seed (times come from `clock`).

    `tagged(text)` says whether the classifier will tag a text (the runner asks the model);
    `confirm(conversation_id)` tells that a conversation exists (its first message was seen on
    the timeline): only then do replies and followed cart events go to it.
    """

    def __init__(
        self,
        shop_ids: Sequence[str],
        *,
        run_id: str,
        seed: int = 1,
        mix: Mix | None = None,
        tagged: Callable[[str], bool] | None = None,
        texts: dict[str, Sequence[str]] | None = None,
        new_thread_share: float = 0.3,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not shop_ids:
            raise ValueError("at least one shop")
        self.run_id = run_id
        self.mix = mix or Mix()
        self.rng = random.Random(seed)
        self.tagged = tagged or (lambda _text: False)
        self.texts = {k: tuple(v) for k, v in (texts or heldout_texts()).items() if v}
        languages = {k: w for k, w in LANGUAGE_SHARES.items() if k in self.texts}
        if not languages:
            raise ValueError("no texts in any known language")
        self._language = _Weighted(languages)
        self._channel = _Weighted(CHANNEL_SHARES)
        self.new_thread_share = new_thread_share
        self.clock = clock
        # Numeric Page ids, as Meta's, of this run: a Page serves one shop at a time, and
        # another run on the same stack has shops of its own.
        run_digits = zlib.crc32(run_id.encode()) % 10**9
        self.shops = [
            _Shop(shop_id, page_id=f"7{run_digits:09d}{i:05d}") for i, shop_id in
            enumerate(shop_ids)
        ]
        # A few busy shops and a long tail (Zipf-like).
        self._shop_weights = list(itertools.accumulate(
            1 / (i + 1) ** 0.8 for i in range(len(self.shops))))
        self.threads: dict[str, Thread] = {}
        self.confirmed: list[Thread] = []
        self.carts: dict[tuple[str, str], dict[str, int]] = {}
        #: visitors on the storefront now (their last signal was not `left`)
        self.browsing: set[tuple[str, str]] = set()
        self.counts = dict.fromkeys(KINDS, 0)
        self._n = 0

    @property
    def mix(self) -> Mix:
        return self._mix

    @mix.setter
    def mix(self, mix: Mix) -> None:
        self._mix = mix
        self._kind_weights = list(itertools.accumulate(mix.weights()))

    # --- bookkeeping ----------------------------------------------------------------------------

    def _id(self, letter: str) -> str:
        self._n += 1
        return f"{self.run_id}-{letter}{self._n}"

    def _now(self) -> str:
        return self.clock().isoformat()

    def _shop(self) -> _Shop:
        return self.rng.choices(self.shops, cum_weights=self._shop_weights)[0]

    def confirm(self, conversation_id: str) -> bool:
        """Mark a conversation as existing; True when it is one of ours, seen for the first time."""
        thread = self.threads.get(conversation_id)
        if thread is None or thread.confirmed:
            return False
        thread.confirmed = True
        self.confirmed.append(thread)
        return True

    def new_thread(self, shop: _Shop | None = None, channel: str | None = None) -> Thread:
        rng = self.rng
        shop = shop or self._shop()
        channel = channel or self._channel(rng)
        lang = self._language(rng)
        locale, places, first_names, last_names = PEOPLE.get(lang, PEOPLE["en"])
        city, country, timezone = rng.choice(places)
        first, last = rng.choice(first_names), rng.choice(last_names)
        n = self._id("c").rsplit("-", 1)[1]
        email = f"{first}.{last}.{n}@example.com".lower().replace(" ", "")
        email = email.encode("ascii", "ignore").decode() or f"customer.{n}@example.com"
        visitor_id = None
        customer = {"name": f"{first} {last}", "locale": locale, "city": city,
                    "country": country, "timezone": timezone}
        if channel == "online_store_chat":
            visitor_id = f"{self.run_id}-v{n}"
            thread_ref = f"chat-{visitor_id}"
            customer["email"] = email  # given when the chat starts
            shop.visitors.append(visitor_id)
        elif channel == "messenger":
            thread_ref = f"{shop.page_id}:{rng.randrange(10**15, 10**16)}"
        elif channel == "email":
            thread_ref = f"email-{email}"
            customer["email"] = email
        else:
            thread_ref = f"{channel}-{self.run_id}-{n}"
        conversation_id = str(derived_id("conversation", shop.shop_id, channel, thread_ref))
        thread = Thread(shop.shop_id, channel, thread_ref, lang, customer, visitor_id,
                        conversation_id)
        shop.threads.append(thread)
        if visitor_id:
            shop.chats.append(thread)
        self.threads[conversation_id] = thread
        return thread

    # --- events ---------------------------------------------------------------------------------

    def next(self, kind: str | None = None) -> Planned:
        kind = kind or self.rng.choices(KINDS, cum_weights=self._kind_weights)[0]
        if kind == "reply" and not self.confirmed:
            kind = "message"  # nothing to answer yet
        made = getattr(self, kind)()
        self.counts[made.kind] += 1
        return made

    def message(self, thread: Thread | None = None, text: str | None = None) -> Planned:
        rng = self.rng
        if thread is None:
            shop = self._shop()
            if not shop.threads or rng.random() < self.new_thread_share:
                thread = self.new_thread(shop)
            else:
                thread = rng.choice(shop.threads)
        thread.messages += 1
        text = text if text is not None else rng.choice(self.texts[thread.lang]
                                                        if thread.lang in self.texts
                                                        else next(iter(self.texts.values())))
        event_id = self._id("m")
        payload: dict[str, Any] = {
            "event_id": event_id, "shop_id": thread.shop_id, "channel": thread.channel,
            "thread_ref": thread.thread_ref, "text": text, "sent_at": self._now(),
            "customer": thread.customer,
        }
        if thread.visitor_id:
            payload["visitor_id"] = thread.visitor_id
        if thread.channel in ("messenger", "instagram", "email") and rng.random() < 0.03:
            payload["attachments"] = [
                {"type": "image", "url": f"https://cdn.example.com/u/{event_id}.jpg"}]
        message_id = str(derived_id("message", thread.shop_id, event_id))
        expects = [Expect(MESSAGE_TIMELINE, TIMELINE, message_id)]
        if self.tagged(text):
            expects.append(Expect(MESSAGE_TAG, TAG, message_id))
        return Planned("message", CHAT_INBOUND,
                       f"{thread.shop_id}:{thread.channel}:{thread.thread_ref}", _json(payload),
                       event_id, thread.shop_id, thread.channel, tuple(expects))

    def reply(self, thread: Thread | None = None) -> Planned:
        rng = self.rng
        thread = thread or rng.choice(self.confirmed)
        command_id = self._id("r")
        payload: dict[str, Any] = {
            "command_id": command_id, "shop_id": thread.shop_id,
            "conversation_id": thread.conversation_id, "staff_id": STAFF_ID, "type": "reply",
            "text": rng.choice(REPLIES.get(thread.lang, REPLIES["en"])),
        }
        extra = rng.random()
        if extra < 0.10:
            payload["product_id"] = rng.choice(PRODUCTS)[0]
        elif extra < 0.15:
            payload["discount_code"] = DISCOUNT_CODE
        message_id = str(derived_id("message", thread.shop_id, command_id))
        return Planned("reply", INBOX_COMMANDS, f"{thread.shop_id}:{thread.conversation_id}",
                       _json(payload), command_id, thread.shop_id, thread.channel,
                       (Expect(REPLY_DELIVERY, DELIVERY, message_id),))

    def _visitor(self, shop: _Shop) -> tuple[str, Thread | None]:
        """A storefront visitor: mostly one with a chat, else someone just browsing."""
        rng = self.rng
        if shop.chats and rng.random() < 0.7:
            thread = rng.choice(shop.chats[-50:])
            assert thread.visitor_id is not None
            return thread.visitor_id, thread
        if len(shop.visitors) < 20 or rng.random() < 0.2:
            shop.visitors.append(self._id("v"))
        return rng.choice(shop.visitors), None

    def cart(self) -> Planned:
        rng = self.rng
        shop = self._shop()
        visitor_id, thread = self._visitor(shop)
        cart = self.carts.setdefault((shop.shop_id, visitor_id), {})
        if cart and rng.random() < 0.3:
            product_id = rng.choice(sorted(cart))
            action, quantity = "remove", cart[product_id]
            del cart[product_id]
        else:
            product_id = rng.choice(PRODUCTS)[0]
            action, quantity = "add", rng.choice((1, 1, 1, 2, 3))
            cart[product_id] = cart.get(product_id, 0) + quantity
        titles = {p: (t, Decimal(price)) for p, t, price in PRODUCTS}
        title, price = titles[product_id]
        event_id = self._id("k")
        payload = {
            "event_id": event_id, "shop_id": shop.shop_id, "visitor_id": visitor_id,
            "action": action, "quantity": quantity,
            "product": {"id": product_id, "title": title, "price": str(price)},
            "cart": {
                "currency": "EUR",
                "subtotal": str(sum((titles[p][1] * q for p, q in cart.items()), Decimal("0.00"))),
                "items": [{"product_id": p, "title": titles[p][0], "quantity": q}
                          for p, q in sorted(cart.items())],
            },
            "at": self._now(),
        }
        expects: tuple[Expect, ...] = ()
        if thread is not None and thread.confirmed:
            item_id = str(derived_id("cart", shop.shop_id, event_id))
            expects = (Expect(CART_TIMELINE, TIMELINE, item_id),)
        return Planned("cart", STOREFRONT_CART, f"{shop.shop_id}:{visitor_id}", _json(payload),
                       event_id, shop.shop_id, "online_store_chat", expects)

    def activity(self) -> Planned:
        rng = self.rng
        shop = self._shop()
        visitor_id, _ = self._visitor(shop)
        # A visit starts with a page view; the storefront says `left` only after a signal.
        key = (shop.shop_id, visitor_id)
        if key not in self.browsing:
            kind = "page_view"
            self.browsing.add(key)
        else:
            kind = rng.choices(("heartbeat", "page_view", "left"), weights=(80, 15, 5))[0]
            if kind == "left":
                self.browsing.discard(key)
        event_id = self._id("a")
        payload = {"event_id": event_id, "shop_id": shop.shop_id, "visitor_id": visitor_id,
                   "type": kind, "at": self._now()}
        return Planned("activity", STOREFRONT_ACTIVITY, f"{shop.shop_id}:{visitor_id}",
                       _json(payload), event_id, shop.shop_id, None)

    def order(self) -> Planned:
        rng = self.rng
        shop = self._shop()
        payload: dict[str, Any]
        event_id = self._id("o")
        if shop.open_orders and rng.random() < 0.4:
            at = rng.randrange(len(shop.open_orders))
            order_id = shop.open_orders[at]
            number, last = shop.orders[order_id]
            kind = "shipped" if last == "created" else "delivered"
            shop.orders[order_id] = (number, kind)
            if kind == "delivered":
                shop.open_orders[at] = shop.open_orders[-1]
                shop.open_orders.pop()
            payload = {"event_id": event_id, "shop_id": shop.shop_id, "order_id": order_id,
                       "order_number": number, "type": kind, "at": self._now()}
            if kind == "shipped":
                tracking = f"JJD{rng.randrange(10**11, 10**12)}"
                payload["tracking"] = {
                    "carrier": "DHL", "number": tracking, "status": "in_transit",
                    "url": f"https://tracking.example.com/{tracking}"}
        else:
            order_id = f"{self.run_id}-o{shop.next_order_number}"
            number = f"#{shop.next_order_number}"
            shop.next_order_number += 1
            shop.orders[order_id] = (number, "created")
            shop.open_orders.append(order_id)
            thread = rng.choice(shop.threads) if shop.threads else self.new_thread(shop)
            product = rng.choice(PRODUCTS)
            payload = {"event_id": event_id, "shop_id": shop.shop_id, "order_id": order_id,
                       "order_number": number, "type": "created", "at": self._now(),
                       "customer": thread.customer, "total_price": product[2],
                       "currency": "EUR"}
            if rng.random() < 0.35:  # ticked "send order updates on Messenger" at checkout
                payload["messenger_optin"] = {"user_ref": f"{event_id}-ref",
                                              "page_id": shop.page_id}
        return Planned("order", ORDERS_EVENTS, f"{shop.shop_id}:{order_id}", _json(payload),
                       event_id, shop.shop_id, None)

    def orders_created(self) -> int:
        return sum(len(s.orders) for s in self.shops)
