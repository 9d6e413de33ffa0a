"""Pure rules of the router and the notifier."""

from __future__ import annotations

from services.notifier.rules import MAX_ATTEMPTS, give_up, retry_delay_seconds
from services.router.rules import PREVIEW_LENGTH, preview, reply_route
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
