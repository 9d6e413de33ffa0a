"""Email delivery over SMTP (aiosmtplib): the email fallback of online store chat, and the
email channel."""

from __future__ import annotations

import aiosmtplib
import asyncpg

from services.notifier import queries as q
from services.notifier.email_message import build_email, email_message_id
from services.notifier.senders import Outcome, RemoteSender
from shared.config import Settings
from shared.contracts import OutboundMessage
from shared.links import continue_chat_url
from shared.mail import SEND_ERRORS, Mailer


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


class SmtpSender(RemoteSender):
    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self._mailer = Mailer(settings.mail)
        self._settings = settings
        self._pool = pool

    async def send(self, message: OutboundMessage) -> Outcome:
        if not message.recipient.email:
            return Outcome("failed", "the customer gave no email address", "no_email")
        async with self._pool.acquire() as conn:
            earlier = await q.sent_in_conversation(conn, message.conversation_id, "email",
                                                   message.message_id)
        email = build_email(
            message,
            from_address=self._mailer.from_address,
            message_id_domain=self._mailer.domain,
            earlier=[email_message_id(m, self._mailer.domain) for m in earlier],
            continue_url=continue_chat_url(
                self._settings.public_base_url, self._settings.link_signing_secret,
                message.shop_id, message.conversation_id,
            ),
        )
        try:
            await self._mailer.send(email)
        except SEND_ERRORS as exc:
            return outcome_of_error(exc)
        return Outcome("sent", provider_message_id=email["Message-ID"])
