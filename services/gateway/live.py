"""Live updates for browsers: Server-Sent Events fed by a broadcast read of Kafka.

Every gateway instance reads *all* partitions of `inbox.timeline`, `delivery.results`,
`presence.changes` and `classifier.tags` from their end, without a consumer group and without
committing (each instance needs every event; none is "processed"), and hands each event to the
browsers connected to it that may see it:

- staff (`GET /api/v1/events`): every event of their shop. The inbox refetches what changed.
- a customer's chat (`GET /storefront/api/chat/events`): only "your thread changed" for their
  own conversation, never the content (the widget then reads its thread).

`EventSource` cannot send an `Authorization` header, so a browser first trades its credential
for a short-lived signed ticket (`POST …/ticket`) and puts that in the stream's URL; the
credential itself never appears in a URL. Tickets are signed tokens (`shared.tokens`, one
purpose per audience), so any gateway instance accepts a ticket issued by another.

Events are not stored for replay: a stream that (re)connects gets `ready` (and `resync` when
the gateway's reader had to reconnect) and the browser refetches the state it shows. So the
reader runs only while someone watches (and for a while after the last stream closed): at rest
it would be a consumer long-polling for nobody. The first stream waits the moment it takes to
position it at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import Gauge
from pydantic import BaseModel, ValidationError

from services.gateway import queries as q
from services.gateway.auth import bearer, current_staff
from shared import tokens
from shared.config import Settings
from shared.contracts import DeliveryResult, PresenceChanged, TimelineItem, TopicTag
from shared.kafka.admin import topic_partitions
from shared.kafka.client import consumer_options
from shared.retry import Retry
from shared.service import Service
from shared.topics import (
    CLASSIFIER_TAGS,
    DELIVERY_RESULTS,
    INBOX_TIMELINE,
    PRESENCE_CHANGES,
    TOPICS,
)

log = logging.getLogger(__name__)

LIVE_TOPICS = (INBOX_TIMELINE, DELIVERY_RESULTS, PRESENCE_CHANGES, CLASSIFIER_TAGS)
#: A ticket only has to last from its issue to the stream's first request.
TICKET_SECONDS = 60
#: How long a browser waits before it reconnects a stream that ended.
RECONNECT_MILLISECONDS = 3000
#: Events waiting for one slow browser; past this its stream is closed (it reconnects, resyncs).
QUEUE_LIMIT = 1000
#: The reader goes on this long after the last stream closed (a reload, a reconnect).
READER_LINGER_SECONDS = 60.0
#: Longest text carried in a staff event (the notification's body); the view refetches the rest.
TEXT_LIMIT = 300

STREAMS = Gauge("gateway_live_streams", "Open live-update streams, by audience.", ["audience"])


# --- the hub: who is listening, and the broadcast reader ------------------------------------------


@dataclass(eq=False)
class Listener:
    shop_id: str
    #: None: the whole shop (staff); else one conversation (a customer's chat).
    conversation_id: str | None
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )

    def offer(self, event: str, data: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait((event, data))
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        """End the stream: clear what waits and leave the end marker."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


def _staff_event(topic: str, event: Any) -> tuple[str, dict[str, Any]] | None:
    match event:
        case TimelineItem():
            text = event.text[:TEXT_LIMIT] if event.text else None
            return "timeline", {
                "conversation_id": event.conversation_id, "item_id": event.event_id,
                "seq": event.seq, "kind": event.kind, "author": event.author,
                "staff_id": event.staff_id, "message_id": event.message_id,
                "channel": event.channel, "text": text, "at": event.at.isoformat(),
            }
        case DeliveryResult():
            return "delivery", {
                "conversation_id": event.conversation_id, "message_id": event.message_id,
                "status": event.status, "channel": event.channel, "reason": event.reason,
            }
        case PresenceChanged():
            return "presence", {
                "visitor_id": event.visitor_id, "online": event.online, "reason": event.reason,
            }
        case TopicTag():
            return "topic", {"conversation_id": event.conversation_id, "topic": event.topic}
    return None


#: What changes a customer's thread as they see it: their own message stored, a notice to them
#: (e.g. an image refused), a reply delivered (or not) to the chat.
_CUSTOMER_KINDS = {"customer_message", "attachment_refused", "delivery_failed"}


def _customer_event(event: Any) -> tuple[str, dict[str, Any]] | None:
    if isinstance(event, TimelineItem) and event.kind in _CUSTOMER_KINDS:
        return "changed", {}
    if isinstance(event, DeliveryResult):
        return "changed", {}
    return None


def _conversation_of(event: Any) -> str | None:
    return getattr(event, "conversation_id", None)


class LiveHub:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        #: Set while the reader is positioned and reading: streams wait for it.
        self.ready = asyncio.Event()
        #: Set while a stream is open or about to open: the reader runs.
        self._wanted = asyncio.Event()
        self._waiting = 0  # streams waiting for `ready`
        self._last_watched = time.monotonic()
        self._stopping = False

    # --- listeners ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def listen(self, shop_id: str, conversation_id: str | None = None) -> Iterator[Listener]:
        listener = Listener(shop_id, conversation_id)
        audience = "staff" if conversation_id is None else "customer"
        self._listeners[shop_id].add(listener)
        STREAMS.labels(audience).inc()
        try:
            yield listener
        finally:
            self._last_watched = time.monotonic()
            STREAMS.labels(audience).dec()
            shop = self._listeners.get(shop_id)
            if shop is not None:
                shop.discard(listener)
                if not shop:
                    del self._listeners[shop_id]

    def dispatch(self, topic: str, event: Any) -> None:
        listeners = self._listeners.get(event.shop_id)
        if not listeners:
            return
        staff = _staff_event(topic, event)
        customer = _customer_event(event)
        conversation = _conversation_of(event)
        for listener in list(listeners):
            if listener.conversation_id is None:
                if staff is not None:
                    listener.offer(*staff)
            elif customer is not None and listener.conversation_id == conversation:
                listener.offer(*customer)

    def _broadcast(self, event: str) -> None:
        for listeners in self._listeners.values():
            for listener in list(listeners):
                listener.offer(event, {})

    async def until_ready(self, timeout: float) -> None:
        """Start the reader if it is not running, and wait until it reads from the end."""
        self._waiting += 1
        self._wanted.set()
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        finally:
            self._waiting -= 1
            self._last_watched = time.monotonic()

    def _watched(self) -> bool:
        """Whether the reader goes on: a stream is open or waits, or one was a moment ago (a
        browser reconnecting finds it still in place). When not, it is no longer wanted."""
        if self._listeners or self._waiting:
            self._last_watched = time.monotonic()
            return True
        if time.monotonic() - self._last_watched < READER_LINGER_SECONDS:
            return True
        self._wanted.clear()
        return False

    async def stop(self) -> None:
        """End every stream (so the HTTP server can stop) and the reader."""
        self._stopping = True
        self._wanted.set()  # a reader waiting to be wanted ends
        for listeners in self._listeners.values():
            for listener in list(listeners):
                listener.close()

    # --- the broadcast reader ----------------------------------------------------------------

    async def run(self) -> None:
        while not self._stopping:
            await self._wanted.wait()
            if not self._stopping:
                await self._read_while_watched()

    async def _read_while_watched(self) -> None:
        first = True

        def broker_lost(exc: BaseException, delay: float) -> None:
            log.warning("live updates: broker error %s; reconnecting in %.1fs", exc, delay)

        # Stopping ends the reading; a wait to reconnect ends when the service cancels this task.
        async for attempt in Retry(KafkaError, initial=0.5, cap=10.0, on_retry=broker_lost):
            if self._stopping:
                return
            with attempt:
                # No group: every instance reads every partition (a broadcast).
                consumer = AIOKafkaConsumer(**consumer_options(
                    self._settings, "gateway-live", auto_offset_reset="latest"))
                try:
                    await consumer.start()
                    partitions = await self._partitions()
                    consumer.assign(partitions)
                    await consumer.seek_to_end(*partitions)
                    for tp in partitions:
                        await consumer.position(tp)  # resolve "the end" now, not at first fetch
                    self.ready.set()
                    attempt.restart_backoff()
                    if not first:
                        self._broadcast("resync")  # events may have been missed meanwhile
                    first = False
                    log.info("live updates: reading %d partitions from their end",
                             len(partitions))
                    while not self._stopping and self._watched():
                        batches = await consumer.getmany(timeout_ms=1000)
                        for tp, records in batches.items():
                            decode = TOPICS[tp.topic].decode
                            for record in records:
                                try:
                                    event = decode(record.value or b"")
                                except (ValidationError, ValueError):
                                    continue  # the topic's own consumers dead-letter it
                                self.dispatch(tp.topic, event)
                finally:
                    self.ready.clear()
                    with contextlib.suppress(Exception):
                        await consumer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        partitions = await topic_partitions(self._settings, LIVE_TOPICS)
        for topic in set(LIVE_TOPICS) - {tp.topic for tp in partitions}:
            raise KafkaError(f"topic {topic} has no partitions yet")
        return partitions


def install(service: Service) -> LiveHub:
    """Start the hub with the gateway: its reader runs in the background, and stopping the
    service ends every open stream first."""
    hub = LiveHub(service.settings)
    service.app.state.live = hub
    service.background(hub.run)
    service.on_stop(hub.stop)
    return hub


# --- streaming ------------------------------------------------------------------------------------


async def ready_hub(request: Request) -> LiveHub:
    """The hub, once its reader is in place (a stream opened before would miss events)."""
    hub: LiveHub | None = getattr(request.app.state, "live", None)
    if hub is not None:
        with contextlib.suppress(TimeoutError):
            await hub.until_ready(10)
            return hub
    raise HTTPException(503, "live updates are not available right now; try again")


#: A stream's endpoint takes this after its credential check, so a bad ticket is a 401 first.
ReadyHub = Annotated[LiveHub, Depends(ready_hub)]


async def updates(
    hub: LiveHub, shop_id: str, conversation_id: str | None, hello: dict[str, Any]
) -> AsyncIterator[ServerSentEvent]:
    """The events of `shop_id` (or of one conversation of it), `ready` first. FastAPI's SSE
    response frames them and keeps an idle stream open with a comment every 15 seconds."""
    with hub.listen(shop_id, conversation_id) as listener:
        yield ServerSentEvent(event="ready", data=hello, retry=RECONNECT_MILLISECONDS)
        while (item := await listener.queue.get()) is not None:
            event, data = item
            yield ServerSentEvent(event=event, data=data)


# --- the staff endpoints --------------------------------------------------------------------------

router = APIRouter(prefix="/api/v1", include_in_schema=False)
STAFF_TICKET = tokens.Purpose("staff-events", TICKET_SECONDS)


class Ticket(BaseModel):
    ticket: str
    expires_in: int


def issue_ticket(settings: Settings, purpose: tokens.Purpose, claims: list[str]) -> Ticket:
    """A ticket for one stream, to put in its URL (`EventSource` sends no headers)."""
    return Ticket(ticket=tokens.sign(settings.link_signing_secret, purpose, claims),
                  expires_in=purpose.max_age_seconds)


def ticket_claims(settings: Settings, purpose: tokens.Purpose, value: str | None) -> list[str]:
    """The two claims of a valid ticket for `purpose`; else a 401."""
    claims = tokens.verify(settings.link_signing_secret, purpose, value)
    if claims is None or len(claims) != 2:
        raise HTTPException(401, "invalid or expired ticket")
    return claims


@router.post("/events/ticket", response_model=Ticket)
async def events_ticket(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Ticket:
    staff = await current_staff(request, credentials)
    return issue_ticket(request.app.state.service.settings, STAFF_TICKET,
                        [staff.shop_id, staff.staff_id])


async def _staff_watching(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ticket: Annotated[str | None, Query(max_length=4096)] = None,
) -> tuple[str, str]:
    """The shop and staff member a stream is for: from its ticket, else the bearer token."""
    service = request.app.state.service
    if ticket is None:
        staff = await current_staff(request, credentials)
        return staff.shop_id, staff.staff_id
    shop_id, staff_id = ticket_claims(service.settings, STAFF_TICKET, ticket)
    member = await q.staff_member(service.pool, shop_id, staff_id)
    if member is None or not member["active"]:
        raise HTTPException(401, "invalid or expired ticket")
    return shop_id, staff_id


@router.get("/events", response_class=EventSourceResponse)
async def events(
    watcher: Annotated[tuple[str, str], Depends(_staff_watching)], hub: ReadyHub
) -> AsyncIterator[ServerSentEvent]:
    """The caller's shop's events as they happen: `timeline`, `delivery`, `presence`, `topic`
    (plus `ready` first and `resync` when events may have been missed)."""
    shop_id, staff_id = watcher
    async for event in updates(hub, shop_id, None, {"shop_id": shop_id, "staff_id": staff_id}):
        yield event
