"""Property-based tests (hypothesis) of the pure rules: what must hold for every input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifier.email_message import build_email
from services.notifier.inbound_email import answer_text
from services.presence.rules import Visitor, apply_signal, online_now
from services.router.rules import PREVIEW_LENGTH, preview
from shared import rules
from shared.channels import CHANNELS
from shared.contracts import OutboundContent, OutboundMessage, Recipient

TOPICS = ["checkout", "order_editing", "order_status", "pricing_discounts", "product_details",
          "product_interest", "returns", "shipping", "store_info", "wholesale"]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
times = st.integers(min_value=0, max_value=10_000).map(lambda s: T0 + timedelta(seconds=s))
#: Text an event can carry: the contracts refuse what no store can keep (NUL, lone surrogates).
storable_text = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


@given(st.lists(st.sampled_from(TOPICS), max_size=30))
def test_a_conversation_shows_at_most_two_distinct_topics_newest_first(tags):
    shown: list[str] = []
    for tag in tags:
        shown = rules.add_topic(shown, tag)
        assert shown[0] == tag
        assert len(shown) <= 2 and len(set(shown)) == len(shown)
    if tags:
        assert shown[0] == tags[-1]


@given(st.text(max_size=200), st.sampled_from(["add", "remove"]))
def test_cart_text_names_the_product_exactly_when_shorter_than_41(title, action):
    text = rules.cart_event_text(action, title)
    assert (title in text and "a product" not in text.replace(title, "")) or len(title) >= 41
    if len(title) >= 41:
        assert text in ("added a product to the cart", "removed a product from the cart")


@given(st.text(max_size=5000))
def test_a_preview_is_one_short_line(text):
    line = preview(text, fallback="(attachment)")
    assert "\n" not in line and len(line) <= PREVIEW_LENGTH
    flat = " ".join(text.split())
    if not flat:
        assert line == "(attachment)"
    elif len(flat) <= PREVIEW_LENGTH:
        assert line == flat
    else:  # cut, with an ellipsis (the text may hold "…" of its own)
        assert line.endswith("…") and flat.startswith(line[:-1])


@given(st.sampled_from(list(CHANNELS)), st.booleans(),
       st.one_of(st.none(), st.emails()))
def test_a_reply_leaves_on_its_own_channel_except_the_chat_fallback(channel, online, email):
    path = rules.reply_path(channel, online, email)
    if channel != "online_store_chat" or online:
        assert path.channel == channel and path.held_reason is None
    elif email:
        assert path.channel == "email"
    else:
        assert path.channel is None and path.held_reason


@given(st.lists(st.tuples(st.sampled_from(["heartbeat", "page_view", "left"]), times),
                max_size=20), times)
def test_presence_does_not_depend_on_the_order_signals_arrive_in(signals, now):
    forward, backward = Visitor(), Visitor()
    for kind, at in signals:
        forward = apply_signal(forward, kind, at)
    for kind, at in reversed(signals):
        backward = apply_signal(backward, kind, at)
    timeout = timedelta(seconds=60)
    later = now + timedelta(seconds=20_000)
    assert online_now(forward, later, timeout) == online_now(backward, later, timeout)
    assert (forward.last_seen_at, forward.left_at) == (backward.last_seen_at, backward.left_at)
    if not online_now(forward, T0 + timedelta(seconds=10_000), timeout):
        pass  # offline is always reachable: nothing more to check
    assert not online_now(forward, later, timeout)  # silence long enough: offline


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300),
       st.text(max_size=300))
def test_an_email_answer_keeps_the_customers_words_above_the_quote(answer, quoted):
    body = f"{answer}\n\nOn Mon, 23 Nov 2026, Fjord & Pine wrote:\n> {quoted}"
    kept = answer_text(body)
    assert "wrote:" not in kept or "wrote:" in answer
    assert kept in answer.strip() or any(
        line.lstrip().startswith(">") for line in answer.splitlines())


@settings(max_examples=50)
@given(st.text(storable_text, max_size=500),
       st.one_of(st.none(), st.text(storable_text, max_size=60)))
def test_customer_text_is_always_escaped_in_the_html_email(text, shop_name):
    message = OutboundMessage(
        event_id="m", message_id="m", shop_id="s", conversation_id="c", channel="email",
        recipient=Recipient(thread_ref="t", email="maja@example.se"),
        content=OutboundContent(text=text + "<script>alert(1)</script>"),
        created_at=T0, shop_name=shop_name,
    )
    email = build_email(message, from_address="inbox@shop.example",
                        message_id_domain="shop.example", earlier=[],
                        continue_url="https://shop.example/chat?x=1&y=2")
    html = email.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
