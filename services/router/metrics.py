"""The router's domain metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CUSTOMER_MESSAGES = Counter(
    "router_customer_messages_total", "Customer messages stored, by channel.", ["channel"]
)
REPLIES = Counter(
    "router_replies_total",
    "Merchant replies routed, by the conversation's channel and the route taken: the channel "
    "itself, email_fallback (online store chat, customer gone) or held (no email on file).",
    ["channel", "route"],
)
HELD_RELEASED = Counter(
    "router_held_replies_released_total", "Held replies sent when the customer came back."
)
DELIVERY_RESULTS = Counter(
    "router_delivery_results_total",
    "Delivery results recorded, by channel and status (sent, failed).",
    ["channel", "status"],
)
COMMANDS_REJECTED = Counter(
    "router_commands_rejected_total", "Merchant commands refused by the rules, by type.", ["type"]
)
FIRST_RESPONSE = Histogram(
    "router_first_response_seconds",
    "From a conversation's first customer message to its first staff reply, by channel.",
    ["channel"],
    buckets=(10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, 259200),
)
AUTOMATED_REPLIES = Counter(
    "router_automated_replies_total",
    "Automated replies sent, by kind (away_message, instant_answer) and the channel they left on.",
    ["kind", "channel"],
)
AUTOMATED_REPLIES_SKIPPED = Counter(
    "router_automated_replies_skipped_total",
    "Automated replies not sent, by kind and reason: already_sent (once per closed period or "
    "topic), staff_answering (staff wrote in the conversation within 10 minutes).",
    ["kind", "reason"],
)
