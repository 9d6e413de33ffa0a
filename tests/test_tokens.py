"""Signed tokens (shared.tokens): a token opens its own purpose, unexpired and unaltered, only."""

from __future__ import annotations

import time

import pytest

from shared import tokens
from shared.tokens import Purpose

SECRET = "a-secret-for-tests"
CHAT = Purpose("chat", 3600)
TICKET = Purpose("ticket", 60)
CLAIMS = ["shop-1", "9a1f2d7e-0000-4000-8000-000000000001"]


def _tampered(token: str) -> str:
    # One character of the signature changed, as anyone could.
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def _ago(seconds: int) -> int:
    return int(time.time()) - seconds


# Tokens are made when the test runs (not when it is collected): their age counts.
@pytest.mark.parametrize(("token_of", "purpose", "opens"), [
    (lambda: tokens.sign(SECRET, CHAT, CLAIMS), CHAT, True),
    (lambda: tokens.sign(SECRET, TICKET, CLAIMS), CHAT, False),
    (lambda: tokens.sign(SECRET, CHAT, CLAIMS), TICKET, False),
    (lambda: tokens.sign(SECRET, CHAT, CLAIMS, issued_at=_ago(3601)), CHAT, False),
    (lambda: tokens.sign(SECRET, CHAT, CLAIMS, issued_at=_ago(3500)), CHAT, True),
    (lambda: _tampered(tokens.sign(SECRET, CHAT, CLAIMS)), CHAT, False),
    (lambda: tokens.sign(SECRET, CHAT, CLAIMS) + "!", CHAT, False),
    (lambda: tokens.sign("another-secret", CHAT, CLAIMS), CHAT, False),
    (lambda: "", CHAT, False),
    (lambda: "not.a.token", CHAT, False),
    (lambda: "é.ü.ß", CHAT, False),
], ids=["right purpose", "other purpose", "other purpose's lifetime", "expired",
        "not yet expired", "tampered", "stray character", "other secret", "empty",
        "nonsense", "not ascii"])
def test_a_token_opens_its_own_purpose_only(token_of, purpose, opens):
    assert tokens.verify(SECRET, purpose, token_of()) == (CLAIMS if opens else None)


def test_every_spelling_of_a_changed_last_character_is_refused():
    token = tokens.sign(SECRET, CHAT, CLAIMS)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for char in alphabet.replace(token[-1], ""):
        assert tokens.verify(SECRET, CHAT, token[:-1] + char) is None, char


@pytest.mark.parametrize(("claims", "purpose", "signature_of", "valid"), [
    (CLAIMS, CHAT, lambda: tokens.detached_signature(SECRET, CHAT, CLAIMS), True),
    (["shop-2", CLAIMS[1]], CHAT, lambda: tokens.detached_signature(SECRET, CHAT, CLAIMS), False),
    (CLAIMS, CHAT, lambda: tokens.detached_signature(SECRET, TICKET, CLAIMS), False),
    (CLAIMS, CHAT, lambda: tokens.detached_signature(SECRET, CHAT, CLAIMS, issued_at=_ago(3601)),
     False),
    (CLAIMS, CHAT, lambda: _tampered(tokens.detached_signature(SECRET, CHAT, CLAIMS)), False),
    (CLAIMS, CHAT, lambda: "0" * 32, False),
    (CLAIMS, CHAT, lambda: "", False),
], ids=["right claims", "other claims", "other purpose", "expired", "tampered", "old hex",
        "empty"])
def test_a_detached_signature_holds_for_its_own_claims_only(claims, purpose, signature_of, valid):
    assert tokens.valid_detached(SECRET, purpose, claims, signature_of()) is valid


def test_a_detached_signature_is_short_and_url_safe():
    signature = tokens.detached_signature(SECRET, CHAT, ["s" * 64, CLAIMS[1]])
    assert len(signature) <= 64 and signature.replace(".", "").replace("-", "").replace(
        "_", "").isalnum()
