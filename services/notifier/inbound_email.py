"""Customers' email answers back into their conversation.

An SMTP endpoint (aiosmtpd) receives the answer; its In-Reply-To / References name one of our
emails (or the conversation's thread root), which names the conversation; the answer, without
the quoted history, becomes a `chat.inbound` message on that conversation's channel and thread,
so the conversation does not fork. The email's own Message-ID is the event id: a mail server
delivering it twice changes nothing.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr

import asyncpg
from aiosmtpd.smtp import SMTP
from prometheus_client import Counter

from services.notifier import queries as q
from shared.contracts import ChatInbound
from shared.kafka.producer import EventProducer
from shared.topics import CHAT_INBOUND

log = logging.getLogger(__name__)

INBOUND = Counter("notifier_inbound_emails_total", "Emails received, by outcome.", ["outcome"])

_REFERENCE = re.compile(r"<([^<>@\s]+)@[^<>\s]+>")
# "On Mon, Maja wrote:" and its cousins in the languages customers write in.
_QUOTE_HEADER = re.compile(
    r"^\s*(On .+ wrote:|Am .+ schrieb .+:|Le .+ a écrit\s*:|El .+ escribió:|"
    r"Den .+ skrev .+:|.+ skrev:|Vào .+ đã viết:|-----\s*Original Message\s*-----|"
    r"From: .+)\s*$",
    re.IGNORECASE,
)


def answer_text(body: str) -> str:
    """The customer's own words: the text above the quoted history."""
    kept = []
    for line in re.split(r"\r?\n", body):
        if _QUOTE_HEADER.match(line) or line.lstrip().startswith(">"):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def referenced_ids(message: EmailMessage) -> list[str]:
    """The local parts of the Message-IDs this email answers, nearest first."""
    references = reversed(str(message.get("References", "")).split())
    found = _REFERENCE.findall(f"{message.get('In-Reply-To', '')} {' '.join(references)}")
    return list(dict.fromkeys(found))


def plain_body(message: EmailMessage) -> str:
    part = message.get_body(("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if part.get_content_type() == "text/html":
        content = re.sub(r"<[^>]+>", " ", content)
    return content


class InboundEmail:
    def __init__(self, pool: asyncpg.Pool, producer: EventProducer) -> None:
        self._pool = pool
        self._producer = producer

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        ids = referenced_ids(message)
        thread = await q.thread_of_email(self._pool, ids) if ids else None
        if thread is None:
            INBOUND.labels("unknown_thread").inc()
            return "550 5.1.1 this address only takes answers to a shop's messages"
        text = answer_text(plain_body(message))
        name, address = parseaddr(str(message.get("From", "")))
        event = ChatInbound(
            event_id=f"email:{message.get('Message-ID') or envelope.content[:64]!r}"[:200],
            shop_id=thread["shop_id"],
            channel=thread["channel"],
            thread_ref=thread["thread_ref"],
            text=text[:20_000],
            sent_at=datetime.now(UTC),
            customer={"email": address or None, "name": name or None},
        )
        await self._producer.send_and_wait(CHAT_INBOUND, event)
        INBOUND.labels("accepted").inc()
        return "250 Message accepted"


async def serve_inbound_smtp(
    pool: asyncpg.Pool, producer: EventProducer, host: str, port: int
) -> asyncio.Server:
    """The SMTP endpoint, on the service's own event loop (where the pool and producer live)."""
    handler = InboundEmail(pool, producer)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler), host, port)
    log.info("inbound email on smtp://%s:%d", host, port)
    return server
