"""Email delivery over SMTP (aiosmtplib): the email fallback of online store chat, and the
email channel."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import asyncpg

from services.notifier import queries as q
from services.notifier.email_message import build_email, email_message_id
from services.notifier.senders import Outcome, RemoteSender
from shared.config import Settings
from shared.contracts import OutboundMessage
from shared.links import continue_chat_url


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


def outcome_of_error(exc: Exception) -> Outcome:
    """Permanent SMTP refusals (5xx, a refused address) fail; anything else is tried again."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        if all(c >= 500 for c in codes):
            return Outcome("failed", f"address refused: {reason}", "smtp_" + str(codes[0]))
        return Outcome("retry", f"address deferred: {reason}", "smtp_" + str(codes[0]))
    if isinstance(exc, aiosmtplib.SMTPResponseException) and not isinstance(
        exc, aiosmtplib.SMTPServerDisconnected
    ):
        status = "failed" if exc.code >= 500 else "retry"
        return Outcome(status, f"mail server said {exc.code} {exc.message}", f"smtp_{exc.code}")
    return Outcome("retry", f"mail server unavailable: {type(exc).__name__}: {exc}",
                   "smtp_unavailable")


def tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class SmtpSender(RemoteSender):
    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self._server = parse_smtp_url(settings.mail.smtp_url)
        self._settings = settings
        self._pool = pool
        self._domain = settings.mail.from_address.rpartition("@")[2] or "localhost"
        # Built once: loading the system's CA certificates costs tens of milliseconds of CPU,
        # which per email was half of the notifier's time under load.
        self._tls = tls_context(self._server.verify)

    async def send(self, message: OutboundMessage) -> Outcome:
        if not message.recipient.email:
            return Outcome("failed", "the customer gave no email address", "no_email")
        async with self._pool.acquire() as conn:
            earlier = await q.sent_in_conversation(conn, message.conversation_id, "email",
                                                   message.message_id)
        email = build_email(
            message,
            from_address=self._settings.mail.from_address,
            message_id_domain=self._domain,
            earlier=[email_message_id(m, self._domain) for m in earlier],
            continue_url=continue_chat_url(
                self._settings.public_base_url, self._settings.link_signing_secret,
                message.shop_id, message.conversation_id,
            ),
        )
        server = self._server
        try:
            await aiosmtplib.send(
                email,
                hostname=server.host,
                port=server.port,
                username=server.username,
                password=server.password,
                use_tls=server.implicit_tls,
                start_tls=server.starttls,
                tls_context=self._tls,
                validate_certs=server.verify,
                timeout=self._settings.mail.smtp_timeout_seconds,
            )
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            return outcome_of_error(exc)
        return Outcome("sent", provider_message_id=email["Message-ID"])
