"""Pure rules of the router and the notifier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.notifier.breaker import Breaker
from services.notifier.rules import MAX_ATTEMPTS, give_up, retry_delay_seconds
from services.router.rules import PREVIEW_LENGTH, preview, reply_route
from shared import rules
from shared.channels import CHANNELS


def test_preview_flattens_and_shortens():
    assert preview("  Where\n is   my order? ") == "Where is my order?"
    long = "a" * (PREVIEW_LENGTH + 10)
    assert len(preview(long)) == PREVIEW_LENGTH and preview(long).endswith("…")
    assert preview("", fallback="(attachment)") == "(attachment)"


def test_a_reply_leaves_on_the_channel_the_customer_wrote_from():
    for channel in CHANNELS:
        assert reply_route(channel) == f"outbound.{channel}"


def test_delivery_backoff_grows_then_gives_up():
    delays = [retry_delay_seconds(a) for a in range(1, MAX_ATTEMPTS)]
    assert delays == sorted(delays) and delays[0] == 2 and max(delays) <= 300
    assert not give_up(MAX_ATTEMPTS - 1) and give_up(MAX_ATTEMPTS)


# --- the conversation rules (shared.rules) -------------------------------------------------------

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _product(online: bool) -> rules.ProductFacts:
    return rules.ProductFacts("p1", "Anorak", "189.00", "EUR", "https://s.example/p", None, online)


def test_product_link_only_for_online_store_products():
    assert rules.product_link(_product(True), "p1")["title"] == "Anorak"
    with pytest.raises(rules.RuleViolation, match="not available on the Online Store"):
        rules.product_link(_product(False), "p1")
    with pytest.raises(rules.RuleViolation, match="does not exist"):
        rules.product_link(None, "p9")


@pytest.mark.parametrize(
    ("status", "starts", "ends", "ok"),
    [
        ("active", None, None, True),
        ("active", NOW - timedelta(days=1), NOW + timedelta(seconds=1), True),
        ("active", NOW + timedelta(seconds=1), None, False),  # not started yet
        ("active", None, NOW, False),  # ends exactly now
        ("expired", None, None, False),
        ("disabled", None, None, False),
        ("scheduled", None, None, False),
    ],
)
def test_discount_link_only_for_active_codes(status, starts, ends, ok):
    facts = rules.DiscountFacts("SAVE 10", status, starts, ends)
    if ok:
        link = rules.discount_link(facts, "save 10", "shop.example.com", NOW)
        assert link == {"code": "SAVE 10", "url": "https://shop.example.com/discount/SAVE%2010"}
    else:
        with pytest.raises(rules.RuleViolation, match="cannot be shared"):
            rules.discount_link(facts, "SAVE 10", "shop.example.com", NOW)


def test_unknown_discount_code():
    with pytest.raises(rules.RuleViolation, match="does not exist"):
        rules.discount_link(None, "NOPE", "shop.example.com", NOW)


def test_customer_images_refused_only_in_online_store_chat():
    image, file = {"type": "image", "url": "u1"}, {"type": "file", "url": "u2"}
    assert rules.customer_attachments("online_store_chat", [image, file]) == ([file], [image])
    assert rules.customer_attachments("messenger", [image, file]) == ([image, file], [])


@pytest.mark.parametrize(("length", "named"), [(1, True), (40, True), (41, False), (200, False)])
def test_cart_event_names_the_product_only_below_41_characters(length, named):
    title = "x" * length
    text = rules.cart_event_text("add", title)
    assert (title in text) is named
    assert text == (f"added {title} to the cart" if named else "added a product to the cart")
    assert rules.cart_event_text("remove", "Hat") == "removed Hat from the cart"


def test_cart_header_follows_the_cart_and_disappears_when_empty():
    items = [{"product_id": "a", "title": "Hat", "quantity": 2},
             {"product_id": "b", "title": "Boots", "quantity": 1}]
    assert rules.cart_header("EUR", "78.00", items) == {
        "currency": "EUR", "subtotal": "78.00",
        "items": [{"product_id": "a", "title": "Hat", "quantity": 2},
                  {"product_id": "b", "title": "Boots", "quantity": 1}],
    }
    assert rules.cart_header("EUR", "0.00", []) is None


def test_new_or_returning_from_the_order_history():
    assert rules.customer_kind(0) == "new"
    assert rules.customer_kind(1) == "returning"
    assert rules.customer_kind(7) == "returning"


def test_notes_belong_to_the_customer_however_they_are_known():
    assert rules.customer_key("c42", "A@B.se", "conv") == "id:c42"
    assert rules.customer_key(None, " A@B.se ", "conv") == "email:a@b.se"
    assert rules.customer_key(None, None, "conv") == "conversation:conv"


def test_assignment_needs_the_chat_permission():
    rules.check_assignable("Ben", ["online_store_chat"])
    with pytest.raises(rules.RuleViolation, match="online store chat permission"):
        rules.check_assignable("Carla", ["messaging"])
    with pytest.raises(rules.RuleViolation, match="not an active"):
        rules.check_assignable("Ben", ["online_store_chat"], active=False)


def test_subject_only_with_the_messaging_permission():
    assert rules.may_see_subject(["messaging"]) and not rules.may_see_subject(["online_store_chat"])


def test_saved_reply_placeholders():
    body = "Hi {{ customer_first_name }}, order {{order_number}} ships today! — {{ shop_name }}"
    values = {"customer_first_name": "Maja", "order_number": "#1001", "shop_name": "Fjord"}
    assert rules.expand_placeholders(body, values) == (
        "Hi Maja, order #1001 ships today! — Fjord"
    )
    assert rules.expand_placeholders("Hi {{ customer_first_name }}, thanks!", {}) == "Hi, thanks!"
    assert rules.unknown_placeholders("{{ nope }} {{ shop_name }}") == ["nope"]
    assert rules.first_name("Maja Berg") == "Maja" and rules.first_name("  ") is None


def test_at_most_two_topics_newest_first():
    assert rules.shown_topics(["shipping", "returns", "checkout"]) == ["shipping", "returns"]


def test_a_new_topic_goes_first_and_a_repeated_one_moves_to_the_front():
    assert rules.add_topic([], "shipping") == ["shipping"]
    assert rules.add_topic(["shipping"], "returns") == ["returns", "shipping"]
    assert rules.add_topic(["returns", "shipping"], "checkout") == ["checkout", "returns"]
    assert rules.add_topic(["returns", "shipping"], "shipping") == ["shipping", "returns"]


# --- the notifier's circuit breaker per remote channel ------------------------------------------


def test_a_channel_pauses_after_the_server_was_unreachable_three_times_in_a_row():
    b = Breaker()
    b.record("smtp_unavailable", 0.0)
    b.record("smtp_unavailable", 0.1)
    b.record("smtp_550", 0.2)  # the server answered (a refusal is an answer): count again
    b.record("smtp_unavailable", 0.3)
    b.record("smtp_unavailable", 0.4)
    assert b.state(0.5) == "closed"
    b.record("smtp_unavailable", 0.5)
    assert b.state(0.6) == "open" and not b.may_probe(0.6)
    b.record("smtp_unavailable", 0.7)  # a send already in hand when it opened: no news
    assert b.open_until == pytest.approx(2.5)
    assert b.state(2.5) == "half_open" and b.may_probe(2.5)


def test_a_failed_probe_doubles_the_pause_up_to_30_s_and_an_answer_closes():
    b = Breaker()
    for _ in range(3):
        b.record("messenger_unreachable", 0.0)
    now, pauses = 0.0, []
    for _ in range(8):
        now = b.open_until
        assert b.may_probe(now)
        b.probing = "d1"
        assert not b.may_probe(now)  # one probe at a time
        b.record("messenger_unreachable", now)
        pauses.append(b.open_until - now)
    assert pauses == [4, 8, 16, 30, 30, 30, 30, 30]
    b.probing = "d2"
    b.probe_dropped("d1")  # not the probe out: no change
    assert b.probing == "d2"
    b.probe_dropped("d2")  # its claim was lost: another may probe
    assert b.may_probe(b.open_until)
    b.record(None, b.open_until)  # sent
    assert b.state(b.open_until) == "closed" and b.probing is None


def test_a_discount_link_opens_the_shops_own_storefront_when_it_has_one():
    facts = rules.DiscountFacts("WELCOME10", "active", None, None, "percentage", Decimal("10"))
    store = "http://127.0.0.1:8080/storefront/demo/demo-shop/"
    assert rules.discount_link(facts, "welcome10", "shop.example.com", NOW, store)["url"] == (
        "http://127.0.0.1:8080/storefront/demo/demo-shop/discount/WELCOME10")
    assert rules.discount_link(facts, "WELCOME10", "shop.example.com", NOW, None)["url"] == (
        "https://shop.example.com/discount/WELCOME10")


@pytest.mark.parametrize(
    ("value_type", "value", "subtotal", "off"),
    [
        ("percentage", "10", "189.00", "18.90"),
        ("percentage", "10", "218.00", "21.80"),
        ("percentage", "12.5", "0.99", "0.12"),  # 0.12375: to the cent
        ("percentage", "15", "0.10", "0.02"),  # 0.015: half up
        ("percentage", "100", "29.00", "29.00"),
        ("fixed_amount", "20.00", "189.00", "20.00"),
        ("fixed_amount", "50.00", "29.00", "29.00"),  # never more than the cart
        ("percentage", "10", "0.00", "0.00"),  # an empty cart
        (None, None, "189.00", "0.00"),  # a code of unknown value applies nothing
    ],
)
def test_what_a_discount_takes_off_a_cart(value_type, value, subtotal, off):
    amount = rules.discount_amount(value_type, Decimal(value) if value else None,
                                   Decimal(subtotal))
    assert amount == Decimal(off) and str(amount) == off


def test_the_cart_header_shows_the_discount_code_applied():
    items = [{"product_id": "p1", "title": "Anorak", "quantity": 1}]
    header = rules.cart_header("EUR", "170.10", items, {"code": "WELCOME10", "amount": "18.90"})
    assert header == {"currency": "EUR", "subtotal": "170.10", "items": items,
                      "discount": {"code": "WELCOME10", "amount": "18.90"}}
    assert "discount" not in rules.cart_header("EUR", "189.00", items)
    assert rules.discount_applied_text("WELCOME10") == (
        "applied the discount code WELCOME10 to the cart")


@pytest.mark.parametrize(("channel", "thread_ref", "visitor_id", "email", "identities"), [
    ("online_store_chat", "web-1", "v-1", " Maja@Example.SE ",
     ["thread:online_store_chat:web-1", "visitor:v-1", "email:maja@example.se"]),
    ("messenger", "123:456", None, None, ["thread:messenger:123:456"]),
    ("email", "<a@b>", None, "x@y.se", ["thread:email:<a@b>", "email:x@y.se"]),
    ("email", "redacted:c-1", None, None, []),  # an erased customer has no identity left
    ("online_store_chat", None, "v-2", "", ["visitor:v-2"]),
])
def test_customer_identities_for_blocking(channel, thread_ref, visitor_id, email, identities):
    from shared.rules import customer_identities

    assert customer_identities(channel, thread_ref, visitor_id, email) == identities
