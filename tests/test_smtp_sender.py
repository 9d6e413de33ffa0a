"""The SMTP sender against a real server that requires STARTTLS and authentication, and the
classification of SMTP failures."""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from inbox.dev.processes import free_port
from services.notifier.smtp import SmtpSender, outcome_of_error
from shared.contracts import OutboundContent, OutboundMessage, Recipient
from shared.mail import parse_smtp_url


def test_smtp_urls():
    plain = parse_smtp_url("smtp://mail.example:2525")
    assert (plain.host, plain.port, plain.starttls, plain.implicit_tls) == (
        "mail.example", 2525, None, False)
    secure = parse_smtp_url("smtp://ann%40shop:p%3Ass@mail.example?starttls=required&verify=false")
    assert (secure.username, secure.password, secure.port, secure.starttls, secure.verify) == (
        "ann@shop", "p:ss", 25, True, False)
    assert parse_smtp_url("smtps://mail.example").port == 465
    with pytest.raises(ValueError, match="smtp://"):
        parse_smtp_url("http://mail.example")


def test_permanent_and_transient_smtp_errors():
    refused = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@b.example")])
    assert outcome_of_error(refused).status == "failed"
    deferred = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(451, "try later", "a@b.example")])
    assert outcome_of_error(deferred).status == "retry"
    assert outcome_of_error(aiosmtplib.SMTPDataError(554, "rejected")).status == "failed"
    assert outcome_of_error(aiosmtplib.SMTPDataError(421, "busy")).status == "retry"
    assert outcome_of_error(aiosmtplib.SMTPConnectError("refused")).status == "retry"
    assert outcome_of_error(ConnectionRefusedError()).status == "retry"


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_sends_over_starttls_with_authentication(tls_files, db, prepared):
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    received: list = []
    logins: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append((session.authenticated,
                             email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default)))
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"shop" and auth_data.password == b"s3cret"
        logins.append(ok)
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=port, tls_context=context,
        require_starttls=True, auth_required=True, authenticator=authenticator,
    )
    controller.start()
    try:
        mail = prepared.mail.model_copy(update={
            "smtp_url": f"smtp://shop:s3cret@127.0.0.1:{port}?starttls=required&verify=false",
            "from_address": "inbox@shop-mail.example",
        })
        settings = prepared.model_copy(update={"mail": mail})
        message = OutboundMessage(
            event_id="m1", message_id=str(uuid.uuid4()), shop_id="s", conversation_id="c1",
            channel="email", recipient=Recipient(thread_ref="t", email="maja@example.se",
                                                 name="Maja"),
            content=OutboundContent(text="Hello over TLS"), created_at=datetime.now(UTC),
            shop_name="Fjord & Pine",
        )
        outcome = await SmtpSender(settings, db).send(message)
        assert outcome.status == "sent", outcome
        [(authenticated, sent)] = received
        assert authenticated and logins == [True]
        assert "Hello over TLS" in sent.get_body(("plain",)).get_content()

    finally:
        controller.stop()
