"""The Messenger send planner: how (and whether) a message may go, by Meta's rules as of today.

A pure function of the situation at send time, `now` included; no I/O. The table it implements
(first matching row wins):

| situation                                              | plan                                  |
|--------------------------------------------------------|---------------------------------------|
| channel needs reconnection (Meta refused its token)    | hold: wait for the merchant           |
| channel removed, anything but order updates (and their | refuse                                |
| settings prompt and acknowledgements)                  |                                       |
| order update: no opt-in / opt-in refused / turned off  | refuse                                |
| automated or order update to a person who blocked us   | refuse                                |
| within 24 h of the customer's last action              | send: RESPONSE (reply), UPDATE (order)|
| order update, outside 24 h                             | send: UTILITY template                |
| human reply, < 7 days, Page approved for Human Agent   | send: MESSAGE_TAG + HUMAN_AGENT       |
| human reply, < 7 days, not approved                    | refuse                                |
| anything else                                          | refuse (outside the window)           |

"Within" is strict: at exactly 24 h the standard window is closed, at exactly 7 days so is the
Human Agent one. `POST_PURCHASE_UPDATE`, `ACCOUNT_UPDATE` and `CONFIRMED_EVENT_UPDATE` were
retired by Meta on 2026-04-27: no row produces them (HUMAN_AGENT is the only tag).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
HUMAN_AGENT = "HUMAN_AGENT"
#: The only tag the project ever sends.
ALLOWED_TAGS = frozenset({HUMAN_AGENT})
#: Retired on 2026-04-27; Meta answers them with error 100.
RETIRED_TAGS = frozenset({"POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE"})

MessageKind = Literal["human_reply", "automated", "order_update"]
ChannelState = Literal["connected", "removed", "needs_reconnection"]
#: An order's Messenger consent: none (no opt-in), active, refused (the opt-in came while the
#: channel could not take it), or turned off by the customer or the merchant.
Consent = Literal["none", "active", "refused", "off_by_customer", "off_by_merchant"]
MessagingType = Literal["RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY"]


@dataclass(frozen=True)
class SendSituation:
    kind: MessageKind
    now: datetime
    #: The customer's last action that opens the window (a message, a postback, an opt-in).
    last_customer_action_at: datetime | None
    channel_state: ChannelState
    human_agent_approved: bool
    consent: Consent = "none"
    #: Meta said the person blocked the Page (551) and they have not written since.
    recipient_blocked: bool = False
    #: The prompt or acknowledgement of the customer's order-update settings (automated).
    order_updates_settings: bool = False


@dataclass(frozen=True)
class SendPlan:
    decision: Literal["send", "hold", "refuse"]
    messaging_type: MessagingType | None = None
    tag: str | None = None
    #: True: a utility template (placeholders only) instead of free text.
    template: bool = False
    #: For the merchant: why it was refused or waits.
    reason: str | None = None
    #: Machine-readable reason (the delivery result's error_code).
    code: str | None = None

    @property
    def label(self) -> str:
        """A bounded metric label: the messaging type, or the decision."""
        return self.messaging_type or self.decision


def _ago(elapsed: timedelta) -> str:
    hours = elapsed.total_seconds() / 3600
    if hours < 48:
        return f"{hours:.0f} h ago"
    return f"{hours / 24:.0f} days ago"


def _refuse(code: str, reason: str) -> SendPlan:
    return SendPlan("refuse", reason=reason, code=code)


_CONSENT_REFUSALS: dict[str, tuple[str, str]] = {
    "none": ("no_optin", "Not sent: the customer did not opt in to order updates on Messenger "
                         "for this order."),
    "refused": ("optin_refused", "Not sent: the customer's opt-in for this order was not "
                                 "accepted (the Messenger channel could not take it)."),
    "off_by_customer": ("updates_off_by_customer", "Not sent: the customer turned off order "
                                                   "updates on Messenger."),
    "off_by_merchant": ("updates_off_by_merchant", "Not sent: order updates on Messenger were "
                                                   "turned off for this order by staff."),
}


def plan_send(s: SendSituation) -> SendPlan:
    """Decide the messaging type, tag or template of one message, or why it cannot go now."""
    if s.channel_state == "needs_reconnection":
        return SendPlan("hold", code="channel_needs_reconnection", reason=(
            "Waiting: Meta refused the Page's access token, so the Messenger channel needs "
            "reconnecting; messages wait until it is reconnected."))
    if s.channel_state == "removed" and s.kind != "order_update" and not (
        s.order_updates_settings and s.kind == "automated"
    ):
        return _refuse("channel_removed", "Not sent: the Messenger channel was removed. "
                       "Connect the Page again to message this customer.")
    if s.kind == "order_update" and s.consent != "active":
        return _refuse(*_CONSENT_REFUSALS[s.consent])
    if s.recipient_blocked and s.kind != "human_reply":
        return _refuse("recipient_blocked", "Not sent: the customer blocked the Page or cannot "
                       "be reached on Messenger (Meta error 551); automated messages are stopped.")

    last = s.last_customer_action_at
    elapsed = None if last is None else s.now - last
    if elapsed is not None and elapsed < STANDARD_WINDOW:
        return SendPlan("send", "UPDATE" if s.kind == "order_update" else "RESPONSE")
    if s.kind == "order_update":
        return SendPlan("send", "UTILITY", template=True)
    if elapsed is None:
        return _refuse("outside_window", "Not sent: the customer has not messaged this Page, "
                       "so Meta allows no message to them.")
    if s.kind == "human_reply" and elapsed < HUMAN_AGENT_WINDOW:
        if s.human_agent_approved:
            return SendPlan("send", "MESSAGE_TAG", tag=HUMAN_AGENT)
        return _refuse("human_agent_not_approved", (
            f"Not sent: the customer's last message was {_ago(elapsed)}, outside Meta's "
            "24-hour window, and the Page is not approved for Human Agent replies (up to "
            "7 days). Reply by email, or send an order update."))
    if s.kind == "automated":
        return _refuse("outside_window", (
            f"Not sent: the customer's last message was {_ago(elapsed)}; automated messages "
            "may only go within Meta's 24-hour window."))
    return _refuse("outside_window", (
        f"Not sent: the customer's last message was {_ago(elapsed)}, more than 7 days ago; "
        "Meta allows no reply on Messenger now. Reply by email instead."))
