"""The Messenger send planner, Meta's error codes, the request bodies and the per-Page rate
limit: pure functions, table-driven (no broker, no database)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.messenger.errors import GraphError, handle_error, metric_label, parse_error
from services.notifier.messenger.planner import (
    RETIRED_TAGS,
    SendPlan,
    SendSituation,
    plan_send,
)
from services.notifier.messenger.ratelimit import PageRateLimiter
from services.notifier.messenger.requests import UnsendableMessage, send_bodies
from shared.contracts import MessengerOutbound

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
H24 = timedelta(hours=24)
D7 = timedelta(days=7)
TICK = timedelta(microseconds=1)


def situation(kind: str, ago: timedelta | None, **overrides) -> SendSituation:
    fields = {
        "kind": kind,
        "now": NOW,
        "last_customer_action_at": None if ago is None else NOW - ago,
        "channel_state": "connected",
        "human_agent_approved": False,
        "consent": "active" if kind == "order_update" else "none",
        "recipient_blocked": False,
    }
    fields.update(overrides)
    return SendSituation(**fields)


# (case, kind, time since the customer's last action, overrides) -> (decision, type, tag, code)
TABLE = [
    # inside the 24-hour window
    ("reply just now", "human_reply", timedelta(0), {}, ("send", "RESPONSE", None, None)),
    ("reply 23 h", "human_reply", timedelta(hours=23), {}, ("send", "RESPONSE", None, None)),
    ("reply 24h-1us", "human_reply", H24 - TICK, {}, ("send", "RESPONSE", None, None)),
    ("automated 1 h", "automated", timedelta(hours=1), {}, ("send", "RESPONSE", None, None)),
    ("update 2 h", "order_update", timedelta(hours=2), {}, ("send", "UPDATE", None, None)),
    ("update 24h-1us", "order_update", H24 - TICK, {}, ("send", "UPDATE", None, None)),
    ("clock skew: action in the future", "human_reply", -timedelta(minutes=2), {},
     ("send", "RESPONSE", None, None)),
    # exactly 24 h: the standard window is closed
    ("reply exactly 24 h, not approved", "human_reply", H24, {},
     ("refuse", None, None, "human_agent_not_approved")),
    ("reply exactly 24 h, approved", "human_reply", H24, {"human_agent_approved": True},
     ("send", "MESSAGE_TAG", "HUMAN_AGENT", None)),
    ("update exactly 24 h", "order_update", H24, {}, ("send", "UTILITY", None, None)),
    ("automated exactly 24 h", "automated", H24, {}, ("refuse", None, None, "outside_window")),
    # Human Agent: a person's reply up to 7 days, only on an approved Page
    ("reply 30 h approved", "human_reply", timedelta(hours=30), {"human_agent_approved": True},
     ("send", "MESSAGE_TAG", "HUMAN_AGENT", None)),
    ("reply 30 h not approved", "human_reply", timedelta(hours=30), {},
     ("refuse", None, None, "human_agent_not_approved")),
    ("reply 7d-1us approved", "human_reply", D7 - TICK, {"human_agent_approved": True},
     ("send", "MESSAGE_TAG", "HUMAN_AGENT", None)),
    ("reply exactly 7 days approved", "human_reply", D7, {"human_agent_approved": True},
     ("refuse", None, None, "outside_window")),
    ("reply 9 days approved", "human_reply", timedelta(days=9), {"human_agent_approved": True},
     ("refuse", None, None, "outside_window")),
    ("automated 30 h approved: never Human Agent", "automated", timedelta(hours=30),
     {"human_agent_approved": True}, ("refuse", None, None, "outside_window")),
    ("reply, customer never wrote", "human_reply", None, {"human_agent_approved": True},
     ("refuse", None, None, "outside_window")),
    # order updates outside the window: a utility template, however late
    ("update 30 h", "order_update", timedelta(hours=30), {}, ("send", "UTILITY", None, None)),
    ("update 30 days", "order_update", timedelta(days=30), {}, ("send", "UTILITY", None, None)),
    ("update, no action recorded", "order_update", None, {}, ("send", "UTILITY", None, None)),
    # consent
    ("update without opt-in", "order_update", timedelta(hours=1), {"consent": "none"},
     ("refuse", None, None, "no_optin")),
    ("update, opt-in refused", "order_update", timedelta(hours=1), {"consent": "refused"},
     ("refuse", None, None, "optin_refused")),
    ("update off by customer", "order_update", timedelta(hours=1),
     {"consent": "off_by_customer"}, ("refuse", None, None, "updates_off_by_customer")),
    ("update off by merchant", "order_update", timedelta(hours=1),
     {"consent": "off_by_merchant"}, ("refuse", None, None, "updates_off_by_merchant")),
    # channel state
    ("reply, channel removed", "human_reply", timedelta(hours=1), {"channel_state": "removed"},
     ("refuse", None, None, "channel_removed")),
    ("automated, channel removed", "automated", timedelta(hours=1),
     {"channel_state": "removed"}, ("refuse", None, None, "channel_removed")),
    ("update, channel removed: opted-in customers keep them", "order_update",
     timedelta(hours=1), {"channel_state": "removed"}, ("send", "UPDATE", None, None)),
    ("update 30 h, channel removed", "order_update", timedelta(hours=30),
     {"channel_state": "removed"}, ("send", "UTILITY", None, None)),
    ("order-update settings prompt, channel removed", "automated", timedelta(seconds=5),
     {"channel_state": "removed", "order_updates_settings": True},
     ("send", "RESPONSE", None, None)),
    ("settings flag on a reply changes nothing", "human_reply", timedelta(hours=1),
     {"channel_state": "removed", "order_updates_settings": True},
     ("refuse", None, None, "channel_removed")),
    ("reply, needs reconnection", "human_reply", timedelta(hours=1),
     {"channel_state": "needs_reconnection"}, ("hold", None, None, "channel_needs_reconnection")),
    ("update, needs reconnection", "order_update", timedelta(hours=1),
     {"channel_state": "needs_reconnection"}, ("hold", None, None, "channel_needs_reconnection")),
    # a person who blocked the Page gets no automated messages
    ("update, blocked", "order_update", timedelta(hours=1), {"recipient_blocked": True},
     ("refuse", None, None, "recipient_blocked")),
    ("automated, blocked", "automated", timedelta(hours=1), {"recipient_blocked": True},
     ("refuse", None, None, "recipient_blocked")),
    ("reply, blocked: a person may still try", "human_reply", timedelta(hours=1),
     {"recipient_blocked": True}, ("send", "RESPONSE", None, None)),
]


@pytest.mark.parametrize(("kind", "ago", "overrides", "expected"),
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_the_planner_table(kind, ago, overrides, expected):
    plan = plan_send(situation(kind, ago, **overrides))
    decision, messaging_type, tag, code = expected
    assert (plan.decision, plan.messaging_type, plan.tag, plan.code) == (
        decision, messaging_type, tag, code)
    assert plan.template == (messaging_type == "UTILITY")
    if decision != "send":
        assert plan.reason and plan.reason[0].isupper()  # a sentence the merchant reads


def test_refusals_say_how_long_ago_the_customer_wrote():
    plan = plan_send(situation("human_reply", timedelta(hours=30)))
    assert "30 h ago" in plan.reason and "Human Agent" in plan.reason
    plan = plan_send(situation("human_reply", timedelta(days=9), human_agent_approved=True))
    assert "9 days ago" in plan.reason


def test_no_situation_ever_produces_a_retired_tag():
    kinds = ["human_reply", "automated", "order_update"]
    agos = [None, timedelta(0), H24 - TICK, H24, timedelta(hours=30), D7 - TICK, D7,
            timedelta(days=40)]
    states = ["connected", "removed", "needs_reconnection"]
    consents = ["none", "active", "refused", "off_by_customer", "off_by_merchant"]
    seen = set()
    for kind, ago, state, approved, consent, blocked, settings in itertools.product(
        kinds, agos, states, [True, False], consents, [True, False], [True, False]
    ):
        plan = plan_send(situation(kind, ago, channel_state=state, human_agent_approved=approved,
                                   consent=consent, recipient_blocked=blocked,
                                   order_updates_settings=settings))
        assert plan.tag in (None, "HUMAN_AGENT")
        assert plan.tag not in RETIRED_TAGS
        assert plan.messaging_type in (None, "RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY")
        seen.add(plan.label)
    assert seen == {"RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY", "refuse", "hold"}


# --- request bodies --------------------------------------------------------------------------


def _outbound(**fields) -> MessengerOutbound:
    base = {
        "event_id": "m1", "message_id": "m1", "shop_id": "s", "conversation_id": "c",
        "channel": "messenger", "kind": "human_reply",
        "recipient": {"thread_ref": "1001:2002"}, "content": {"text": "Hi"},
        "created_at": NOW,
    }
    base.update(fields)
    return MessengerOutbound.model_validate(base)


def test_a_retired_tag_is_never_put_in_a_request():
    for tag in sorted(RETIRED_TAGS):
        with pytest.raises(UnsendableMessage, match="retired"):
            send_bodies(_outbound(), SendPlan("send", "MESSAGE_TAG", tag=tag), {"id": "2002"})


def test_an_order_update_outside_the_window_is_a_template_with_placeholders_only():
    update = _outbound(kind="order_update", content={"text": "Shipped with DHL, see link"},
                       order_update={"order_id": "o1", "order_number": "#1001",
                                     "update": "shipped", "tracking_number": "JJD0099",
                                     "carrier": "DHL", "tracking_url": "https://t.example/x"})
    [body] = send_bodies(update, SendPlan("send", "UTILITY", template=True), {"user_ref": "r1"})
    assert body["messaging_type"] == "UTILITY" and body["recipient"] == {"user_ref": "r1"}
    template = body["message"]["template"]
    assert template["name"] == "order_shipped"
    assert [p["text"] for p in template["components"][0]["parameters"]] == ["#1001", "JJD0099"]
    assert "DHL" not in json.dumps(body)  # customizations are not shown in a template
    [inside] = send_bodies(update, SendPlan("send", "UPDATE"), {"user_ref": "r1"})
    assert inside["message"] == {"text": "Shipped with DHL, see link"}


def test_text_and_image_are_two_messages_and_links_are_spelled_out():
    message = _outbound(content={
        "text": "Here you go", "image_url": "https://img.example/a.png",
        "product": {"title": "Anorak", "url": "https://shop.example/products/anorak"},
        "discount": {"code": "WELCOME10", "url": "https://shop.example/discount/WELCOME10"},
    })
    text, image = send_bodies(message, SendPlan("send", "MESSAGE_TAG", tag="HUMAN_AGENT"),
                              {"id": "2002"})
    assert text["tag"] == image["tag"] == "HUMAN_AGENT"
    assert text["message"]["text"].splitlines() == [
        "Here you go", "Anorak: https://shop.example/products/anorak",
        "Use code WELCOME10: https://shop.example/discount/WELCOME10"]
    assert image["message"]["attachment"]["payload"]["url"] == "https://img.example/a.png"
    with pytest.raises(UnsendableMessage, match="2000"):
        send_bodies(_outbound(content={"text": "x" * 2001}), SendPlan("send", "RESPONSE"),
                    {"id": "2002"})


# --- Meta's error codes ----------------------------------------------------------------------

ERRORS = [
    # (code, subcode, attempt) -> (status, effect, words in the reason)
    ((10, 2018278, 1), ("failed", None, "outside Meta's messaging window")),
    ((10, 2018108, 1), ("failed", None, "can't receive")),
    ((10, 1893063, 1), ("retry", "pause_page", "restricted")),
    ((10, None, 1), ("failed", None, "permission")),
    ((551, None, 1), ("failed", "block_recipient", "blocked")),
    ((551, 1545041, 1), ("failed", "block_recipient", "blocked")),
    ((4, None, 1), ("retry", "pause_page", "rate limit")),
    ((613, None, 1), ("retry", "pause_page", "rate limit")),
    ((613, 2018338, 1), ("retry", "pause_page", "rate limit")),
    ((100, None, 1), ("failed", None, "parameter")),
    ((100, 2018001, 1), ("failed", None, "no matching")),
    ((190, None, 1), ("retry", "reconnect", "reconnecting")),
    ((190, 460, 5), ("retry", "reconnect", "reconnecting")),
    ((2, None, 1), ("retry", None, "unexpected")),
    ((2, None, 2), ("retry", None, "unexpected")),
    ((2, None, 3), ("failed", None, "3 tries")),
    ((10, 2018300, 1), ("failed", None, "another app")),
    ((1200, None, 1), ("failed", None, "refused")),
]


@pytest.mark.parametrize(("given", "expected"), ERRORS,
                         ids=[f"{c}/{s}#{a}" for (c, s, a), _ in ERRORS])
def test_meta_error_codes(given, expected):
    code, subcode, attempt = given
    handling = handle_error(GraphError(400, code, subcode, "Meta's words"), attempt)
    status, effect, words = expected
    assert (handling.status, handling.effect) == (status, effect)
    assert words in handling.reason and "Meta's words" in handling.reason


def test_error_envelopes_and_labels():
    body = json.dumps({"error": {"message": "(#10) outside", "type": "OAuthException",
                                 "code": 10, "error_subcode": 2018278, "fbtrace_id": "A1"}})
    error = parse_error(400, body.encode())
    assert (error.code, error.subcode, error.fbtrace_id, error.label) == (10, 2018278, "A1",
                                                                           "10/2018278")
    assert metric_label(error) == "10/2018278"
    assert metric_label(GraphError(400, 613, 999, "x")) == "613"
    assert metric_label(GraphError(400, 12345, None, "x")) == "other"
    broken = parse_error(502, b"<html>bad gateway</html>")
    assert broken.code is None and handle_error(broken, 1).status == "retry"
    assert handle_error(parse_error(404, b"nope"), 1).status == "failed"


# --- the per-Page token bucket ---------------------------------------------------------------


def test_each_page_has_its_own_bucket_and_pause():
    now = [0.0]
    limiter = PageRateLimiter(2, clock=lambda: now[0])
    assert limiter.reserve("A") == 0 and limiter.reserve("A") == 0
    assert limiter.reserve("A") == pytest.approx(0.5)  # the third waits half a second
    assert limiter.reserve("B") == 0  # another Page is not held up
    now[0] += 0.5
    assert limiter.reserve("A") == 0
    limiter.pause("B", 30)
    assert limiter.reserve("B") == pytest.approx(30)
    now[0] += 31
    assert limiter.reserve("B") == 0
