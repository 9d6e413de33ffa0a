"""The router's domain metrics."""

from __future__ import annotations

from prometheus_client import Counter

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
