"""Sending an email over SMTP (aiosmtplib): the one way every service reaches the mail server.

`SMTP_URL` names the server and how to speak to it; `Mailer` holds what is worth building once
(the TLS context) and sends one message. Callers decide what a failure means for them.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from shared.config import MailSettings

#: What a send may raise when the server or the network refuses.
SEND_ERRORS = (TimeoutError, aiosmtplib.SMTPException, OSError)


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    #: None: STARTTLS when the server offers it; True: required; False: never.
    starttls: bool | None
    verify: bool


def parse_smtp_url(url: str) -> SmtpServer:
    """`smtp://[user:pass@]host[:port][?starttls=required|auto|off&verify=false]`, or
    `smtps://…` for TLS from the first byte (port 465)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, not {parts.scheme!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    starttls = {"required": True, "off": False, "auto": None}[query.get("starttls", "auto")]
    implicit = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (465 if implicit else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit,
        starttls=None if implicit else starttls,
        verify=query.get("verify", "true") != "false",
    )


def tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Mailer:
    def __init__(self, settings: MailSettings) -> None:
        self.server = parse_smtp_url(settings.smtp_url)
        self.from_address = settings.from_address
        #: The domain of our own Message-IDs.
        self.domain = settings.from_address.rpartition("@")[2] or "localhost"
        self._timeout = settings.smtp_timeout_seconds
        # Built once: loading the system's CA certificates costs tens of milliseconds of CPU,
        # which per email was half of the notifier's time under load.
        self._tls = tls_context(self.server.verify)
        # The name said in EHLO, looked up once, at the first send (in a thread: a resolver
        # may take its time); aiosmtplib asks it on every connection otherwise (8% of the
        # notifier under load).
        self._local_hostname: str | None = None

    async def send(self, message: EmailMessage) -> None:
        """Hand `message` to the server; raises one of `SEND_ERRORS` when it is not taken."""
        server = self.server
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.implicit_tls,
            start_tls=server.starttls,
            tls_context=self._tls,
            validate_certs=server.verify,
            timeout=self._timeout,
            local_hostname=self._local_hostname,
        )
