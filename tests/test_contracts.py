"""The event contracts: what is accepted, what is refused and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.contracts import (
    INBOX_COMMAND,
    CartEvent,
    ChatInbound,
    DiscountUpserted,
    ReplyCommand,
)
from shared.topics import TOPICS, all_topic_names


def chat(**overrides):
    fields = {
        "event_id": "e1", "shop_id": "shop-1", "channel": "messenger", "thread_ref": "p:1",
        "text": "hello", "sent_at": "2026-11-22T10:00:00+01:00",
    }
    fields.update(overrides)
    return json.dumps(fields)


def test_times_are_normalised_to_utc():
    event = ChatInbound.model_validate_json(chat(sent_at=datetime.now(UTC).isoformat()))
    assert event.sent_at.utcoffset() == timedelta(0)
    assert ChatInbound.model_validate_json(chat()).sent_at.hour == 9


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"channel": "fax"}, "unknown channel"),
        ({"sent_at": "2026-11-22 10:00"}, "sent_at"),  # no offset: not RFC 3339 UTC
        ({"sent_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}, "future"),
        ({"sent_at": "2001-01-01T00:00:00Z"}, "too old"),
        ({"shop_id": "bad shop id!"}, "shop_id"),
        ({"text": "x" * 20_001}, "text"),
        ({"event_id": ""}, "event_id"),
        ({"attachments": [{"type": "image", "url": "not a url"}]}, "attachments"),
    ],
)
def test_chat_inbound_refusals_say_what_is_wrong(overrides, complaint):
    with pytest.raises(ValidationError) as info:
        ChatInbound.model_validate_json(chat(**overrides))
    assert complaint in str(info.value)


def test_missing_field_and_bad_json_are_refused():
    with pytest.raises(ValidationError, match="text"):
        ChatInbound.model_validate_json(json.dumps({**json.loads(chat()), "text": None}))
    with pytest.raises(ValidationError, match=r"(?i)json"):
        ChatInbound.model_validate_json(b"{not json")
    with pytest.raises(ValidationError):
        ChatInbound.model_validate_json(b"\xff\xfe")


def test_commands_are_told_apart_by_type():
    base = {"command_id": "c1", "shop_id": "s", "conversation_id": "x", "staff_id": "ava"}
    reply = INBOX_COMMAND.validate_json(json.dumps({**base, "type": "reply", "text": "hi"}))
    assert isinstance(reply, ReplyCommand) and reply.event_id == "c1"
    status = INBOX_COMMAND.validate_json(
        json.dumps({**base, "type": "set_status", "status": "closed"})
    )
    assert status.status == "closed"
    with pytest.raises(ValidationError, match="delete"):
        INBOX_COMMAND.validate_json(json.dumps({**base, "type": "delete"}))


@pytest.mark.parametrize(
    ("content", "ok"),
    [
        ({"text": "hi"}, True),
        ({"product_id": "p1", "text": "look"}, True),
        ({"discount_code": "WELCOME10"}, True),
        ({"image_url": "https://cdn.example.com/a.png"}, True),
        ({}, False),
        ({"text": "   "}, False),
        ({"product_id": "p1", "discount_code": "X"}, False),
    ],
)
def test_a_reply_carries_text_or_one_attachment(content, ok):
    fields = {"command_id": "c", "shop_id": "s", "conversation_id": "x", "staff_id": "a",
              "type": "reply", **content}
    if ok:
        ReplyCommand.model_validate(fields)
    else:
        with pytest.raises(ValidationError):
            ReplyCommand.model_validate(fields)


def test_every_topic_has_a_dead_letter_topic():
    names = all_topic_names()
    assert all(f"{t}.dlq" in names for t in TOPICS)
    assert {"chat.inbound", "storefront.cart", "storefront.activity", "orders.events",
            "inbox.commands"} <= set(TOPICS)


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"text": "x\x00y"}, "text: NUL characters are not allowed"),
        ({"customer": {"name": "Maja\x00"}}, "name: NUL characters are not allowed"),
        ({"text": "a\ud800b"}, "text"),  # pydantic itself refuses them in a constrained str
        ({"attachments": [], "visitor_id": "v\udfff"}, "visitor_id"),
    ],
)
def test_text_no_store_can_keep_is_refused_by_every_contract(fields, complaint):
    """What PostgreSQL (or UTF-8) cannot hold is refused with the contract, where it is clear,
    not by the database of a consumer after retries."""
    base = json.loads(chat(sent_at=datetime.now(UTC).isoformat()))
    with pytest.raises(ValidationError, match=complaint):
        ChatInbound.model_validate({**base, **fields})
    assert ChatInbound.model_validate({**base, "text": "not a NUL: \\u0000 %00"}).text


def test_anything_else_in_a_free_form_field_is_looked_into_too():
    from shared.contracts import TimelineItem

    item = {"event_id": "i1", "shop_id": "s", "conversation_id": "c", "channel": "messenger",
            "seq": 1, "kind": "note_added", "at": datetime.now(UTC), "author": "staff"}
    assert TimelineItem.model_validate({**item, "data": {"a": [{"b": "fine"}]}})
    for data in ({"a": [{"b": "x\x00"}]}, {"k\x00": 1}):
        with pytest.raises(ValidationError, match="data: NUL"):
            TimelineItem.model_validate({**item, "data": data})
    with pytest.raises(ValidationError, match="data: unpaired surrogates are not allowed"):
        TimelineItem.model_validate({**item, "data": {"a": "x\ud800"}})


@pytest.mark.parametrize(
    ("amount", "ok"),
    [("189.00", True), ("0", True), ("7.", True), ("999999999999.99", True),
     ("1000000000000", False), ("1e3", False), ("-1", False), ("NaN", False), (" 1", False),
     ("1_000", False), ("+1", False), ("", False), ("Infinity", False)],
)
def test_an_amount_is_what_every_store_reads_the_same_and_numeric_14_2_holds(amount, ok):
    from shared.contracts import Money

    if ok:
        assert Money(amount=amount, currency="EUR").amount == amount
    else:
        with pytest.raises(ValidationError, match="amount"):
            Money(amount=amount, currency="EUR")


# --- a discount that applies -------------------------------------------------------------------

_CART = {"currency": "EUR", "subtotal": "170.10",
         "items": [{"product_id": "p-anorak", "title": "Anorak", "quantity": 1}]}
_PRODUCT = {"id": "p-anorak", "title": "Anorak", "price": "189.00"}


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"action": "add", "product": _PRODUCT, "cart": _CART}, None),
        # Before discounts: the same event still reads the same.
        ({"action": "remove", "product": _PRODUCT, "quantity": 1, "cart": _CART}, None),
        ({"action": "apply_discount",
          "cart": {**_CART, "discount": {"code": "WELCOME10", "amount": "18.90"}}}, None),
        ({"action": "apply_discount", "cart": _CART}, "an applied discount is in the cart"),
        ({"action": "apply_discount", "product": _PRODUCT,
          "cart": {**_CART, "discount": {"code": "WELCOME10", "amount": "18.90"}}},
         "names no product"),
        ({"action": "add", "cart": _CART}, "names its product"),
        ({"action": "apply_discount",
          "cart": {**_CART, "discount": {"code": "", "amount": "1.00"}}}, "at least 1 character"),
        ({"action": "apply_discount",
          "cart": {**_CART, "discount": {"code": "X", "amount": "-1"}}}, "not a decimal amount"),
    ],
)
def test_a_cart_event_is_a_product_added_or_removed_or_a_discount_applied(fields, complaint):
    event = {"event_id": "e1", "shop_id": "s1", "visitor_id": "v1",
             "at": datetime.now(UTC).isoformat(), **fields}
    if complaint is None:
        assert CartEvent.model_validate(event).action == fields["action"]
    else:
        with pytest.raises(ValidationError, match=complaint):
            CartEvent.model_validate(event)


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ({}, None),  # a code of unknown value, as before
        ({"value_type": "percentage", "value": "10"}, None),
        ({"value_type": "fixed_amount", "value": "20.00"}, None),
        ({"value_type": "percentage"}, "come together"),
        ({"value": "10"}, "come together"),
        ({"value_type": "percentage", "value": "150"}, "at most 100"),
        ({"value_type": "free_shipping", "value": "0"}, "percentage"),
    ],
)
def test_a_discount_code_says_what_it_takes_off(value, complaint):
    fields = {"event_id": "d1", "shop_id": "s1", "code": "WELCOME10", "status": "active",
              "at": datetime.now(UTC).isoformat(), **value}
    if complaint is None:
        DiscountUpserted.model_validate(fields)
    else:
        with pytest.raises(ValidationError, match=complaint):
            DiscountUpserted.model_validate(fields)
