"""Messenger rules shared by the gateway, the router and the notifier: plain functions, no I/O.

Thread refs: a customer's Messenger conversation is `<page_id>:<psid>`; the conversation of an
order whose customer opted in at checkout (known to Meta only by the checkbox's `user_ref`) is
`<page_id>:user_ref:<user_ref>`. Both carry the Page, so re-connecting the same Page resumes the
same conversations and another Page starts fresh ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

USER_REF_MARK = "user_ref"

#: Postback payload of the Page's persistent menu entry "Order update settings".
ORDER_UPDATE_SETTINGS = "ORDER_UPDATE_SETTINGS"
#: Quick-reply payloads of the answer to the settings prompt.
ORDER_UPDATES_OFF = "ORDER_UPDATES_OFF"
ORDER_UPDATES_KEEP = "ORDER_UPDATES_KEEP"
#: Quick-reply payloads that are settings, not words to the merchant.
SETTINGS_PAYLOADS = frozenset({ORDER_UPDATES_OFF, ORDER_UPDATES_KEEP})

SETTINGS_PROMPT = ("Order update settings: do you want to turn off order updates, or keep "
                   "getting updates about your order here on Messenger?")
#: Quick-reply titles are limited to 20 characters by Meta: "Turn off order updates" is 22.
TURN_OFF_TITLE = "Turn off updates"
KEEP_TITLE = "Keep getting updates"
TURNED_OFF_ACK = "Order updates are turned off. You won't get more messages about your order."
KEPT_ACK = "You'll keep getting updates about your order here."
NO_UPDATES = "You don't have order updates turned on with us."


@dataclass(frozen=True)
class ThreadTarget:
    """Who a Messenger conversation talks to: a Page and a PSID or a checkbox user_ref."""

    page_id: str
    psid: str | None = None
    user_ref: str | None = None


def psid_thread(page_id: str, psid: str) -> str:
    return f"{page_id}:{psid}"


def user_ref_thread(page_id: str, user_ref: str) -> str:
    return f"{page_id}:{USER_REF_MARK}:{user_ref}"


def parse_thread(thread_ref: str) -> ThreadTarget | None:
    """The Page and person of a Messenger thread ref; None when it is not one."""
    page_id, sep, rest = thread_ref.partition(":")
    if not sep or not page_id or not rest:
        return None
    mark = f"{USER_REF_MARK}:"
    if rest.startswith(mark):
        user_ref = rest[len(mark):]
        return ThreadTarget(page_id, user_ref=user_ref) if user_ref else None
    return ThreadTarget(page_id, psid=rest)


# --- order updates -------------------------------------------------------------------------------

#: The order events that produce an update, and the update they produce.
ORDER_UPDATES: dict[str, str] = {
    "created": "confirmation",
    "shipped": "shipped",
    "delivery_update": "delivery_update",
    "delivered": "delivered",
}

#: The Page's utility templates: name -> (body with numbered placeholders, placeholder count).
#: Only the template's words and placeholders reach the customer outside the 24-hour window.
UTILITY_TEMPLATES: dict[str, tuple[str, int]] = {
    "order_confirmation": ("Thanks for your order {{1}}! We'll message you when it ships.", 1),
    "order_shipped": ("Your order {{1}} is on its way. Tracking number: {{2}}", 2),
    "order_delivery_update": ("There is news about the delivery of order {{1}}. "
                              "Tracking number: {{2}}", 2),
    "order_delivered": ("Your order {{1}} was delivered.", 1),
}
TEMPLATE_LANGUAGE = "en_US"
NO_TRACKING = "not available yet"

_TEMPLATE_OF = {
    "confirmation": "order_confirmation",
    "shipped": "order_shipped",
    "delivery_update": "order_delivery_update",
    "delivered": "order_delivered",
}


@dataclass(frozen=True)
class UtilityTemplate:
    name: str
    parameters: tuple[str, ...]

    @property
    def text(self) -> str:
        body = UTILITY_TEMPLATES[self.name][0]
        for number, value in enumerate(self.parameters, start=1):
            body = body.replace(f"{{{{{number}}}}}", value)
        return body


def order_update_template(
    update: str, order_number: str, tracking_number: str | None
) -> UtilityTemplate:
    """The utility template of an update: placeholders only (order number, tracking number)."""
    name = _TEMPLATE_OF[update]
    params = (order_number,) if UTILITY_TEMPLATES[name][1] == 1 else (
        order_number, tracking_number or NO_TRACKING)
    return UtilityTemplate(name, params)


def order_update_text(
    update: str,
    order_number: str,
    shop_name: str | None,
    tracking: Mapping[str, Any] | None = None,
) -> str:
    """The update as free text, with the shop's customizations (shop name, carrier, tracking
    link): what the customer gets inside the 24-hour window."""
    tracking = tracking or {}
    carrier, number, url = tracking.get("carrier"), tracking.get("number"), tracking.get("url")
    status = tracking.get("status")
    shop = shop_name or "us"
    follow = ""
    if number or url:
        via = f" with {carrier}" if carrier else ""
        follow = f" Track it{via}: {url or number}" + (f" (tracking number {number})"
                                                       if url and number else "")
    if update == "confirmation":
        return f"Thanks for your order {order_number} at {shop}! We'll message you when it ships."
    if update == "shipped":
        return f"Good news: your order {order_number} from {shop} has shipped.{follow}"
    if update == "delivery_update":
        news = f": {status}" if status else ""
        return f"Delivery update for your order {order_number}{news}.{follow}"
    return f"Your order {order_number} from {shop} was delivered. Enjoy!"


def optin_decision(
    channel_page_id: str | None, channel_state: str | None, optin_page_id: str
) -> tuple[str, str | None]:
    """Whether a checkout opt-in becomes an active consent: ("active", None) or ("refused",
    the reason the merchant sees)."""
    if channel_page_id is None:
        return "refused", "Opt-in refused: the shop has no Messenger channel."
    if channel_page_id != optin_page_id:
        return "refused", (f"Opt-in refused: Page {optin_page_id} is not the shop's Messenger "
                           f"Page ({channel_page_id}).")
    if channel_state == "removed":
        return "refused", ("Opt-in refused: the Messenger channel was removed, so new opt-ins "
                           "are not accepted.")
    return "active", None
