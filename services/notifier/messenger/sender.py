"""Messenger delivery through Meta's Send API.

For each message, at send time: resolve the Page and the person (PSID, or the checkbox
`user_ref` until they answered), gather what the planner needs (the channel's state and Human
Agent approval, the customer's last action, the order's consent), let the planner decide, pace
the call with the Page's token bucket, call `POST {graph}/{version}/{page}/messages`, and turn
Meta's answer into an outcome. The delivery worker records the attempt before and the result
after (see `services/notifier/worker.py`): a message recorded as sent is never sent again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg
import httpx
from prometheus_client import Counter

from services.notifier.messenger import queries as q
from services.notifier.messenger.clock import Clock
from services.notifier.messenger.errors import (
    ErrorHandling,
    handle_error,
    metric_label,
    parse_error,
)
from services.notifier.messenger.planner import SendSituation, plan_send
from services.notifier.messenger.ratelimit import PageRateLimiter
from services.notifier.messenger.requests import UnsendableMessage, recipient, send_bodies
from services.notifier.rules import give_up
from services.notifier.senders import Outcome, RemoteSender
from shared.config import Settings
from shared.contracts import MessengerOutbound, OutboundMessage
from shared.messenger import ThreadTarget, parse_thread

log = logging.getLogger(__name__)

SEND_ERRORS = Counter(
    "notifier_messenger_send_errors_total",
    "Send API errors by Meta's error code (code or code/subcode; 'other' for the rest).",
    ["code"],
)
PLANS = Counter(
    "notifier_messenger_plans_total",
    "Planner decisions: the messaging type chosen (RESPONSE, UPDATE, MESSAGE_TAG, UTILITY), "
    "or hold / refuse.",
    ["plan"],
)
CHANNEL_PAUSES = Counter(
    "notifier_messenger_channel_pauses_total",
    "Pages paused: reconnect (token refused, 190) or pause_page (rate limit, restriction).",
    ["effect"],
)

UNKNOWN_OUTCOME = ("Meta did not answer in time; the message may have been delivered, so it is "
                   "not sent again")


def target_of(message: MessengerOutbound) -> ThreadTarget | None:
    """The Page and person: given on the recipient, else read from the thread ref."""
    r = message.recipient
    thread = parse_thread(r.thread_ref)
    page_id = r.page_id or (thread.page_id if thread else None)
    if page_id is None:
        return None
    if r.psid or r.user_ref:
        return ThreadTarget(page_id, r.psid, r.user_ref)
    if thread is None or thread.page_id != page_id:
        return None
    return thread


@dataclass(frozen=True)
class _Call:
    page_id: str
    token: str
    shop_id: str


class MessengerSender(RemoteSender):
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        clock: Clock,
        limiter: PageRateLimiter | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self.clock = clock
        # httpx logs every request's URL at INFO, and a Send API URL carries the Page access
        # token: keep it out of the logs.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.limiter = limiter or PageRateLimiter(settings.messenger.send_rate_per_second)
        self._client = client or httpx.AsyncClient(timeout=settings.messenger.timeout_seconds)
        base = settings.messenger.graph_url.rstrip("/")
        self._endpoint = f"{base}/{settings.messenger.graph_version}/{{page_id}}/messages"

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, message: OutboundMessage) -> Outcome:
        row = await q.delivery(self._pool, message.message_id)
        if row is None:
            return Outcome("failed", "the delivery record is missing", "messenger_no_delivery")
        full = MessengerOutbound.model_validate(row["payload"])
        attempt = max(1, row["attempts"])
        target = target_of(full)
        if target is None:
            return Outcome("failed", f"not a Messenger thread: {full.recipient.thread_ref!r}",
                           "messenger_bad_thread")
        channel = await q.channel(self._pool, full.shop_id)
        if channel is None or channel.page_id != target.page_id:
            reason = (f"Not sent: the shop's Messenger channel is not connected to Page "
                      f"{target.page_id}" + (f" (it is connected to Page {channel.page_id})"
                                             if channel else "") + ".")
            PLANS.labels("refuse").inc()
            return Outcome("failed", reason, "channel_not_connected")
        person = await q.person(self._pool, full.shop_id, target.page_id, target.psid,
                                target.user_ref)
        consent = "none"
        if full.kind == "order_update" and full.order_update is not None:
            consent = await q.consent(self._pool, full.shop_id, full.order_update.order_id)
        blocked = person.blocked_at is not None and (
            person.last_action_at is None or person.last_action_at <= person.blocked_at)
        plan = plan_send(SendSituation(
            kind=full.kind,
            now=self.clock.now(),
            last_customer_action_at=person.last_action_at,
            channel_state=channel.state,  # type: ignore[arg-type]
            human_agent_approved=channel.human_agent_approved,
            consent=consent,  # type: ignore[arg-type]
            recipient_blocked=blocked,
            order_updates_settings=full.order_updates_settings,
        ))
        PLANS.labels(plan.label).inc()
        if plan.decision == "refuse":
            return Outcome("failed", plan.reason, plan.code)
        if plan.decision == "hold":
            if give_up(attempt):
                return Outcome("failed", f"Not sent after {attempt} tries: {plan.reason}",
                               plan.code)
            return Outcome("retry", plan.reason, plan.code)
        try:
            bodies = send_bodies(full, plan, recipient(person.psid, person.user_ref))
        except UnsendableMessage as exc:
            return Outcome("failed", f"Not sent: {exc}", "messenger_unsendable")
        call = _Call(target.page_id, channel.token, full.shop_id)
        outcome = await self._call(call, bodies, attempt, person)
        if outcome.status == "retry" and give_up(attempt):  # the worker's last try
            return Outcome("failed", f"Not sent after {attempt} tries: {outcome.reason}",
                           outcome.error_code, outcome.provider_message_id)
        return outcome

    async def _call(
        self, call: _Call, bodies: list[dict], attempt: int, person: q.Person
    ) -> Outcome:
        sent: list[str] = []
        for index, body in enumerate(bodies):
            if not await self.limiter.acquire(call.page_id):
                if sent:  # the rest can't wait for the Page's next token: never resend the part
                    return Outcome("failed", "Only partly sent: the Page's rate limit held back "
                                   "the rest", "messenger_partial", ",".join(sent))
                wait = self.limiter.paused_for(call.page_id)
                return Outcome("retry", f"Waiting for the Page's sending rate ({wait:.0f} s)",
                               "rate_limited")
            try:
                response = await self._client.post(
                    self._endpoint.format(page_id=call.page_id),
                    params={"access_token": call.token},
                    json=body,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if sent:
                    return Outcome("failed", f"Only partly sent: {exc}", "messenger_partial",
                                   ",".join(sent))
                return Outcome("retry", f"Meta's Send API is unreachable: {exc}",
                               "messenger_unreachable")
            except httpx.HTTPError as exc:
                log.warning("Send API call outcome unknown: %s", type(exc).__name__)
                return Outcome("failed", f"{UNKNOWN_OUTCOME} ({type(exc).__name__})",
                               "unknown_outcome", ",".join(sent) or None)
            if response.status_code == 200:
                sent.append(str(response.json().get("message_id", "")))
                continue
            error = parse_error(response.status_code, response.content)
            SEND_ERRORS.labels(metric_label(error)).inc()
            handling = handle_error(error, attempt)
            await self._apply_effect(handling, call, person)
            if sent:  # an earlier part left: never send it again
                return Outcome("failed", f"Only partly sent ({index} of {len(bodies)} parts): "
                               + handling.reason, error.label, ",".join(sent))
            return Outcome(handling.status, handling.reason, error.label)
        return Outcome("sent", provider_message_id=",".join(sent))

    async def _apply_effect(self, handling: ErrorHandling, call: _Call, person: q.Person) -> None:
        if handling.effect is None:
            return
        if handling.effect == "reconnect":
            CHANNEL_PAUSES.labels(handling.effect).inc()
            if await q.needs_reconnection(self._pool, call.shop_id, call.token, handling.reason):
                log.warning("Messenger channel of shop %s needs reconnection (token refused)",
                            call.shop_id)
        elif handling.effect == "pause_page":
            CHANNEL_PAUSES.labels(handling.effect).inc()
            self.limiter.pause(call.page_id, self._settings.messenger.rate_limit_pause_seconds)
        elif handling.effect == "block_recipient":
            contact = f"psid:{person.psid}" if person.psid else f"user_ref:{person.user_ref}"
            await q.blocked(self._pool, call.page_id, contact, self.clock.now(), handling.reason)
