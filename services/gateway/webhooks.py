"""Messenger webhooks: Meta's verification handshake and the signed event deliveries.

`GET /webhooks/messenger?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` echoes the
challenge when the token is `MESSENGER_VERIFY_TOKEN` (403 otherwise).

`POST /webhooks/messenger`: the raw body (at most `MESSENGER_WEBHOOK_MAX_BYTES`, else 413) must
carry `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(MESSENGER_APP_SECRET, body)>`, compared in
constant time; a missing or wrong signature is a 403 and nothing is published. Then:

- a customer message becomes a `chat.inbound` event: channel `messenger`, thread
  `<page_id>:<psid>`, event id `messenger:<mid>` (Meta redelivers with the same `mid`, so a
  retried delivery is stored once);
- the answers to our order-update quick replies, postbacks, opt-ins, echoes, deliveries and
  reads become `messenger.events`, as does Meta's `prior_message` (which PSID answered after a
  checkbox opt-in: `identified`);
- on a Page no shop has connected, or whose channel was removed, messages and opt-ins are not
  taken in: a `refused` event with the reason records each. Postbacks and quick replies still
  go through, so opted-in customers can still turn their order updates off.

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
from shared.kafka.producer import MessageTooLarge
from shared.messenger import SETTINGS_PAYLOADS, psid_thread
from shared.topics import CHAT_INBOUND, MESSENGER_EVENTS

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/messenger"
SIGNATURE_HEADER = "X-Hub-Signature-256"

WEBHOOKS = Counter(
    "gateway_messenger_webhooks_total",
    "Messenger webhook requests by outcome (accepted, forbidden, too_large, invalid, "
    "unavailable).",
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
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}"
        for e in exc.errors(include_url=False)[:5]
    )


_ATTACHMENT_TYPES = {"image", "video", "audio", "file"}


class _Translation:
    """One webhook body into events, given which shop each Page belongs to."""

    def __init__(self, channels: Mapping[str, PageChannel]) -> None:
        self.channels = channels
        self.events: list[tuple[str, BaseModel]] = []
        self.kinds: list[str] = []

    def add(self, topic: str, event: BaseModel, kind: str) -> None:
        self.events.append((topic, event))
        self.kinds.append(kind)

    def event(self, kind: str, **fields: Any) -> None:
        try:
            self.add(MESSENGER_EVENTS, MessengerEvent(**fields), kind)
        except ValidationError as exc:
            log.warning("Messenger %s event not recorded: %s", kind, _reason(exc))
            self.kinds.append("ignored")

    def refuse(self, what: str, reason: str, **fields: Any) -> None:
        self.event("refused", type="refused", refused_kind=what, reason=reason, **fields)

    def item(self, page_id: str, item: Mapping[str, Any]) -> None:
        sender = str((item.get("sender") or {}).get("id") or "") or None
        recipient = str((item.get("recipient") or {}).get("id") or "") or None
        at = _time(item.get("timestamp"))
        channel = self.channels.get(page_id)
        shop_id = channel.shop_id if channel else None
        closed = None
        if channel is None:
            closed = f"No shop has Messenger Page {page_id} connected."
        elif channel.state == "removed":
            closed = ("The shop removed its Messenger channel: new conversations and opt-ins "
                      "are not accepted until the Page is connected again.")
        prior = item.get("prior_message") or {}
        prior_ref = str(prior.get("identifier")) if prior.get("source") == "checkbox_plugin" \
            and prior.get("identifier") else None
        common = {"page_id": page_id, "shop_id": shop_id, "at": at}

        message = item.get("message")
        if isinstance(message, Mapping):
            mid = str(message.get("mid") or "") or None
            if message.get("is_echo"):
                self.event("echo", type="echo", event_id=f"messenger:echo:{mid or _digest(at)}",
                           psid=recipient, mid=mid, **common)
                return
            if mid is None:
                self.kinds.append("ignored")
                return
            payload = (message.get("quick_reply") or {}).get("payload")
            if payload in SETTINGS_PAYLOADS:
                if channel is None:
                    self.refuse("quick_reply", closed or "", event_id=f"messenger:refused:{mid}",
                                psid=sender, mid=mid, **common)
                    return
                self.event("quick_reply", type="quick_reply", event_id=f"messenger:{mid}",
                           psid=sender, user_ref=prior_ref, payload=payload,
                           title=message.get("text"), mid=mid, **common)
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

        postback = item.get("postback")
        if isinstance(postback, Mapping):
            mid = postback.get("mid")
            event_id = f"messenger:postback:{mid}" if mid else \
                f"messenger:postback:{_digest(page_id, sender, item.get('timestamp'))}"
            if channel is None or sender is None:
                self.refuse("postback", closed or "The postback names no sender.",
                            event_id=event_id.replace("postback", "refused", 1), psid=sender,
                            **common)
                return
            self.event("postback", type="postback", event_id=event_id, psid=sender,
                       user_ref=prior_ref, payload=postback.get("payload"),
                       title=postback.get("title"), mid=mid, **common)
            return

        optin = item.get("optin")
        if isinstance(optin, Mapping):
            user_ref = optin.get("user_ref")
            digest = _digest(page_id, user_ref, sender, item.get("timestamp"))
            event_id = f"messenger:optin:{digest}"
            if closed:
                self.refuse("optin", closed, event_id=event_id.replace("optin", "refused", 1),
                            psid=sender, user_ref=user_ref, ref=optin.get("ref"), **common)
                return
            self.event("optin", type="optin", event_id=event_id, psid=sender, user_ref=user_ref,
                       ref=optin.get("ref"), **common)
            return

        for kind in ("delivery", "read"):
            report = item.get(kind)
            if isinstance(report, Mapping):
                watermark = report.get("watermark")
                self.event(kind, type=kind,
                           event_id=f"messenger:{kind}:{_digest(page_id, sender, watermark)}",
                           psid=sender, mids=[str(m) for m in report.get("mids") or []],
                           watermark=_time(watermark) if watermark else None, **common)
                return
        self.kinds.append("ignored")

    def _message(
        self, page_id: str, shop_id: str | None, psid: str, mid: str,
        message: Mapping[str, Any], at: datetime, common: dict[str, Any],
    ) -> None:
        attachments = [
            {"type": a["type"], "url": (a.get("payload") or {}).get("url")}
            for a in message.get("attachments") or []
            if isinstance(a, Mapping) and a.get("type") in _ATTACHMENT_TYPES
            and (a.get("payload") or {}).get("url")
        ][:10]
        try:
            inbound = ChatInbound(
                event_id=f"messenger:{mid}",
                shop_id=shop_id,
                channel="messenger",
                thread_ref=psid_thread(page_id, psid),
                text=str(message.get("text") or ""),
                sent_at=at,
                attachments=attachments,
            )
        except ValidationError as exc:
            self.refuse("message", f"The message breaks the chat.inbound contract: {_reason(exc)}",
                        event_id=f"messenger:refused:{mid}", psid=psid, mid=mid, **common)
            return
        self.add(CHAT_INBOUND, inbound, "message")


def translate(
    payload: Mapping[str, Any], channels: Mapping[str, PageChannel]
) -> tuple[list[tuple[str, BaseModel]], list[str]]:
    """A webhook body as the events to publish, and the kind of each item (for metrics)."""
    translation = _Translation(channels)
    for entry in payload.get("entry") or []:
        if not isinstance(entry, Mapping):
            continue
        page_id = str(entry.get("id") or "")
        for item in entry.get("messaging") or []:
            if page_id and isinstance(item, Mapping):
                translation.item(page_id, item)
    return translation.events, translation.kinds


def page_ids(payload: Mapping[str, Any]) -> list[str]:
    return sorted({
        str(e.get("id")) for e in payload.get("entry") or []
        if isinstance(e, Mapping) and e.get("id")
    })


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than `limit`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _refuse(status: int, detail: str, outcome: str) -> JSONResponse:
    WEBHOOKS.labels(outcome).inc()
    return JSONResponse({"detail": detail}, status)


@router.get(WEBHOOK_PATH)
async def verify_subscription(request: Request) -> Response:
    expected = request.app.state.service.settings.messenger_verify_token
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
    body = await _read_body(request, settings.messenger_webhook_max_bytes)
    if body is None:
        return _refuse(413, "webhook body too large", "too_large")
    if not signature_valid(settings.messenger_app_secret, body,
                           request.headers.get(SIGNATURE_HEADER)):
        return _refuse(403, "invalid or missing X-Hub-Signature-256", "forbidden")
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict) or payload.get("object") != "page":
            raise ValueError("not a Page webhook")
    except (ValueError, UnicodeDecodeError) as exc:
        return _refuse(400, f"invalid webhook body: {exc}", "invalid")
    rows = await mq.shops_of_pages(service.pool, page_ids(payload))
    channels = {r["page_id"]: PageChannel(r["shop_id"], r["state"]) for r in rows}
    events, kinds = translate(payload, channels)
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
