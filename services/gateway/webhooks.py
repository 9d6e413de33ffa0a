"""Messenger webhooks: Meta's verification handshake and the signed event deliveries.

`GET /webhooks/messenger?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` echoes the
challenge when the token is `MESSENGER_VERIFY_TOKEN` (403 otherwise).

`POST /webhooks/messenger`: the raw body (at most `MESSENGER_WEBHOOK_MAX_BYTES`, else 413, and
well-formed: the request guard sees to both) must carry `X-Hub-Signature-256: sha256=<hex
HMAC-SHA256(MESSENGER_APP_SECRET, body)>`, compared in constant time; a missing or wrong
signature is a 403 and nothing is published. The body is read as Meta's shape
(`shared/contracts/meta_webhook.py`): not a Page webhook document is a 400. Then:

- a customer message becomes a `chat.inbound` event: channel `messenger`, thread
  `<page_id>:<psid>`, event id `messenger:<mid>` (Meta redelivers with the same `mid`, so a
  retried delivery is stored once);
- the answers to our order-update quick replies, postbacks, opt-ins, echoes, deliveries and
  reads become `messenger.events`, as does Meta's `prior_message` (which PSID answered after a
  checkbox opt-in: `identified`);
- on a Page no shop has connected, or whose channel was removed, messages and opt-ins are not
  taken in: a `refused` event with the reason records each. Postbacks and quick replies still
  go through, so opted-in customers can still turn their order updates off;
- an item not of Meta's shape (a field of the wrong type) is a `refused` event with the reason
  when it is a message, postback or opt-in, and skipped with a logged reason otherwise (a
  malformed entry too): the rest of the delivery still counts.

Everything is published before the 200; if the broker is away the answer is 503 and Meta
delivers again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from services.gateway import messenger_queries as mq
from shared.contracts import ChatInbound, MessengerEvent
from shared.contracts.base import error_sentence
from shared.contracts.meta_webhook import (
    ITEM_KINDS,
    Entry,
    Message,
    MessagingItem,
    WebhookDocument,
)
from shared.kafka.producer import MessageTooLarge
from shared.messenger import SETTINGS_PAYLOADS, psid_thread
from shared.topics import CHAT_INBOUND, MESSENGER_EVENTS

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/messenger"
SIGNATURE_HEADER = "X-Hub-Signature-256"

WEBHOOKS = Counter(
    "gateway_messenger_webhooks_total",
    "Messenger webhook requests by outcome (accepted, forbidden, invalid, unavailable); those "
    "the request guard refused are in gateway_requests_refused_total.",
    ["outcome"],
)
WEBHOOK_EVENTS = Counter(
    "gateway_messenger_webhook_events_total",
    "Events in accepted Messenger webhooks by kind (message, quick_reply, postback, optin, "
    "identified, echo, delivery, read, refused, ignored).",
    ["kind"],
)

router = APIRouter(include_in_schema=False)


def signature_valid(app_secret: str, body: bytes, header: str | None) -> bool:
    """`sha256=<hex>` of HMAC-SHA256(app secret, raw body), compared in constant time."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").encode())


@dataclass(frozen=True)
class PageChannel:
    shop_id: str
    state: str


def _time(milliseconds: Any) -> datetime:
    try:
        return datetime.fromtimestamp(float(milliseconds) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def _digest(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:40]


def _reason(exc: ValidationError) -> str:
    return error_sentence(
        exc.errors(include_url=False), unlocated="message", limit=5, keep_prefix=True
    )[:1500]


def _bounded(event_id: str) -> str:
    # Meta's mids are far shorter than the contracts' 200 characters: a longer one is digested
    # (still the same id on redelivery) rather than its item lost.
    return event_id if len(event_id) <= 200 else f"messenger:{_digest(event_id)}"


def _raw_id(raw: Any, *path: str) -> str | None:
    """An id read from a malformed item as far as it goes (to say which one was refused)."""
    for key in path:
        raw = raw.get(key) if isinstance(raw, Mapping) else None
    if isinstance(raw, int | str) and not isinstance(raw, bool):
        text = str(raw).strip()
        return text if 0 < len(text) <= 200 else None
    return None


_ATTACHMENT_TYPES = {"image", "video", "audio", "file"}
#: Kinds a `refused` event can name (the others are reports about the Page's own messages).
_REFUSABLE = {"message", "quick_reply", "postback", "optin"}


class _Translation:
    """One webhook body into events, given which shop each Page belongs to."""

    def __init__(self, channels: Mapping[str, PageChannel]) -> None:
        self.channels = channels
        self.events: list[tuple[str, BaseModel]] = []
        self.kinds: list[str] = []

    def add(self, topic: str, event: BaseModel, kind: str) -> None:
        self.events.append((topic, event))
        self.kinds.append(kind)

    def ignore(self, what: str, reason: str) -> None:
        log.warning("Messenger webhook: %s skipped: %s", what, reason)
        self.kinds.append("ignored")

    def event(self, kind: str, **fields: Any) -> None:
        fields["event_id"] = _bounded(fields["event_id"])
        try:
            self.add(MESSENGER_EVENTS, MessengerEvent(**fields), kind)
        except ValidationError as exc:
            if kind not in _REFUSABLE:
                self.ignore(f"{kind} event", _reason(exc))
                return
            # Recorded as refused, with the reason: what Meta delivered is never dropped unseen.
            self.refuse(kind, f"The {kind} breaks the messenger.events contract: {_reason(exc)}",
                        event_id=f"messenger:refused:{_digest(fields.get('event_id'))}",
                        page_id=fields["page_id"], shop_id=fields.get("shop_id"),
                        at=fields["at"], psid=fields.get("psid"), mid=fields.get("mid"))

    def refuse(self, what: str, reason: str, **fields: Any) -> None:
        self.event("refused", type="refused", refused_kind=what, reason=reason, **fields)

    def raw_item(self, page_id: str, raw: Any) -> None:
        """One element of an entry's `messaging`: read as Meta's shape, else refused."""
        try:
            item = MessagingItem.model_validate(raw)
        except ValidationError as exc:
            kind = next((k for k in ITEM_KINDS if isinstance(raw, Mapping) and k in raw), None)
            if kind not in _REFUSABLE:
                self.ignore(f"{kind or 'item'} of Page {page_id}", _reason(exc))
                return
            channel = self.channels.get(page_id)
            self.refuse(
                kind, f"The webhook's {kind} is not of Meta's shape: {_reason(exc)}",
                event_id=f"messenger:refused:{_digest(page_id, json.dumps(raw, sort_keys=True))}",
                page_id=page_id, shop_id=channel.shop_id if channel else None,
                at=datetime.now(UTC), psid=_raw_id(raw, "sender", "id"),
                mid=_raw_id(raw, kind, "mid"),
            )
            return
        self.item(page_id, item)

    def item(self, page_id: str, item: MessagingItem) -> None:
        sender = item.sender.id if item.sender else None
        recipient = item.recipient.id if item.recipient else None
        at = _time(item.timestamp)
        channel = self.channels.get(page_id)
        shop_id = channel.shop_id if channel else None
        closed = None
        if channel is None:
            closed = f"No shop has Messenger Page {page_id} connected."
        elif channel.state == "removed":
            closed = ("The shop removed its Messenger channel: new conversations and opt-ins "
                      "are not accepted until the Page is connected again.")
        prior = item.prior_message
        prior_ref = prior.identifier if prior and prior.source == "checkbox_plugin" else None
        common = {"page_id": page_id, "shop_id": shop_id, "at": at}

        message = item.message
        if message is not None:
            mid = message.mid
            if message.is_echo:
                self.event("echo", type="echo", event_id=f"messenger:echo:{mid or _digest(at)}",
                           psid=recipient, mid=mid, **common)
                return
            if mid is None:
                self.ignore(f"message of Page {page_id}", "no mid")
                return
            payload = message.quick_reply.payload if message.quick_reply else None
            if payload in SETTINGS_PAYLOADS:
                if channel is None:
                    self.refuse("quick_reply", closed or "", event_id=f"messenger:refused:{mid}",
                                psid=sender, mid=mid, **common)
                    return
                self.event("quick_reply", type="quick_reply", event_id=f"messenger:{mid}",
                           psid=sender, user_ref=prior_ref, payload=payload,
                           title=message.text, mid=mid, **common)
                return
            if closed or sender is None:
                self.refuse("message", closed or "The message names no sender.",
                            event_id=f"messenger:refused:{mid}", psid=sender, mid=mid, **common)
                return
            self._message(page_id, shop_id, sender, mid, message, at, common)
            if prior_ref:
                self.event("identified", type="identified",
                           event_id=f"messenger:identified:{_digest(page_id, prior_ref, sender)}",
                           psid=sender, user_ref=prior_ref, **common)
            return

        postback = item.postback
        if postback is not None:
            mid = postback.mid
            event_id = f"messenger:postback:{mid}" if mid else \
                f"messenger:postback:{_digest(page_id, sender, item.timestamp)}"
            if channel is None or sender is None:
                self.refuse("postback", closed or "The postback names no sender.",
                            event_id=event_id.replace("postback", "refused", 1), psid=sender,
                            **common)
                return
            self.event("postback", type="postback", event_id=event_id, psid=sender,
                       user_ref=prior_ref, payload=postback.payload, title=postback.title,
                       mid=mid, **common)
            return

        optin = item.optin
        if optin is not None:
            user_ref = optin.user_ref
            digest = _digest(page_id, user_ref, sender, item.timestamp)
            event_id = f"messenger:optin:{digest}"
            if closed:
                self.refuse("optin", closed, event_id=event_id.replace("optin", "refused", 1),
                            psid=sender, user_ref=user_ref, ref=optin.ref, **common)
                return
            self.event("optin", type="optin", event_id=event_id, psid=sender, user_ref=user_ref,
                       ref=optin.ref, **common)
            return

        for kind, report in (("delivery", item.delivery), ("read", item.read)):
            if report is not None:
                watermark = report.watermark
                self.event(kind, type=kind,
                           event_id=f"messenger:{kind}:{_digest(page_id, sender, watermark)}",
                           psid=sender, mids=list(report.mids),
                           watermark=_time(watermark) if watermark else None, **common)
                return
        self.kinds.append("ignored")  # a kind not read here (reactions, referrals…)

    def _message(
        self, page_id: str, shop_id: str | None, psid: str, mid: str,
        message: Message, at: datetime, common: dict[str, Any],
    ) -> None:
        attachments = [
            {"type": a.type, "url": a.payload.url}
            for a in message.attachments
            if a.type in _ATTACHMENT_TYPES and a.payload and a.payload.url
        ][:10]
        try:
            inbound = ChatInbound(
                event_id=_bounded(f"messenger:{mid}"),
                shop_id=shop_id,
                channel="messenger",
                thread_ref=psid_thread(page_id, psid),
                text=message.text or "",
                sent_at=at,
                attachments=attachments,
            )
        except ValidationError as exc:
            self.refuse("message", f"The message breaks the chat.inbound contract: {_reason(exc)}",
                        event_id=f"messenger:refused:{mid}", psid=psid, mid=mid, **common)
            return
        self.add(CHAT_INBOUND, inbound, "message")


def read_document(payload: WebhookDocument | Mapping[str, Any]) -> tuple[list[Entry], list[str]]:
    """The entries of a webhook body as Meta's shape, and why any others were skipped."""
    document = payload if isinstance(payload, WebhookDocument) else \
        WebhookDocument.model_validate(payload)
    entries, skipped = [], []
    for raw in document.entry:
        try:
            entries.append(Entry.model_validate(raw))
        except ValidationError as exc:
            skipped.append(f"entry: {_reason(exc)}")
    return entries, skipped


def translate(
    payload: WebhookDocument | Mapping[str, Any], channels: Mapping[str, PageChannel]
) -> tuple[list[tuple[str, BaseModel]], list[str]]:
    """A webhook body as the events to publish, and the kind of each item (for metrics)."""
    translation = _Translation(channels)
    entries, skipped = read_document(payload)
    for reason in skipped:
        translation.ignore("entry", reason)
    for entry in entries:
        for raw in entry.messaging:
            translation.raw_item(entry.id, raw)
    return translation.events, translation.kinds


def page_ids(entries: list[Entry]) -> list[str]:
    return sorted({e.id for e in entries})


def _refuse(status: int, detail: str, outcome: str) -> JSONResponse:
    WEBHOOKS.labels(outcome).inc()
    return JSONResponse({"detail": detail}, status)


@router.get(WEBHOOK_PATH)
async def verify_subscription(request: Request) -> Response:
    expected = request.app.state.service.settings.messenger.verify_token.get_secret_value()
    params = request.query_params
    token, challenge = params.get("hub.verify_token"), params.get("hub.challenge")
    if (params.get("hub.mode") == "subscribe" and expected and token is not None
            and challenge is not None
            and hmac.compare_digest(token.encode(), expected.encode())):
        return PlainTextResponse(challenge)
    return JSONResponse({"detail": "verification failed"}, 403)


@router.post(WEBHOOK_PATH)
async def receive(request: Request) -> Response:
    service = request.app.state.service
    settings = service.settings
    body = await request.body()  # its size, encoding and depth passed the request guard
    if not signature_valid(settings.messenger.app_secret.get_secret_value(), body,
                           request.headers.get(SIGNATURE_HEADER)):
        return _refuse(403, "invalid or missing X-Hub-Signature-256", "forbidden")
    try:
        document = WebhookDocument.model_validate_json(body)
    except ValidationError as exc:
        return _refuse(400, f"invalid webhook body: {_reason(exc)}", "invalid")
    if document.object != "page":
        return _refuse(400, "invalid webhook body: not a Page webhook", "invalid")
    entries, _ = read_document(document)
    rows = await mq.shops_of_pages(service.pool, page_ids(entries))
    channels = {r["page_id"]: PageChannel(r["shop_id"], r["state"]) for r in rows}
    events, kinds = translate(document, channels)
    try:
        futures = [await service.producer.send(topic, event) for topic, event in events]
        await asyncio.gather(*futures)
    except (KafkaError, MessageTooLarge) as exc:
        log.warning("webhook not published (%s): Meta will deliver it again", exc)
        return _refuse(503, "could not record the webhook; deliver it again", "unavailable")
    WEBHOOKS.labels("accepted").inc()
    for kind in kinds:
        WEBHOOK_EVENTS.labels(kind).inc()
    return JSONResponse({"status": "ok"})
