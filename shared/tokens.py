"""Signed, expiring tokens, one kind per purpose.

A token carries a few strings (its claims) and the time it was signed. It opens only the
purpose it was signed for (the purpose is the signing salt, so each purpose has its own key)
and only for that purpose's lifetime. Every instance holding the secret
(`LINK_SIGNING_SECRET`) accepts the tokens another signed.

Where the claims travel beside the signature anyway (a link naming the shop and the
conversation), a detached signature leaves them out of what is carried.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode
from pydantic import SecretStr

#: The signing secret: as the settings hold it (never printed), or plain.
Secret = SecretStr | str

#: Longer is not a token of ours (claims are a few ids and names).
MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True)
class Purpose:
    """What a token is for (its salt) and how long it stays valid."""

    name: str
    max_age_seconds: int


class _Signer(TimestampSigner):
    """itsdangerous' signer with SHA-256; `issued_at` dates a token (a test's expired one)."""

    default_digest_method = staticmethod(hashlib.sha256)

    def __init__(self, *args: Any, issued_at: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._issued_at = issued_at

    def get_timestamp(self) -> int:
        return super().get_timestamp() if self._issued_at is None else self._issued_at


def _serializer(
    secret: Secret, purpose: Purpose, issued_at: int | None = None
) -> URLSafeTimedSerializer:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return URLSafeTimedSerializer(
        secret, salt=f"inbox-{purpose.name}", signer=_Signer,
        signer_kwargs={"issued_at": issued_at},
    )


def sign(
    secret: Secret, purpose: Purpose, claims: Sequence[str], *, issued_at: int | None = None
) -> str:
    """A URL-safe token carrying `claims` for `purpose`."""
    return _serializer(secret, purpose, issued_at).dumps(list(claims))


def _canonical(token: str) -> bool:
    # Base64 decoding skips stray characters and a last character's spare bits: only the
    # signature's own spelling is taken, so that no altered token still opens.
    signature = token.rpartition(".")[2]
    try:
        return base64_encode(base64_decode(signature)).decode() == signature
    except BadData:
        return False


def verify(secret: Secret, purpose: Purpose, token: str | None) -> list[str] | None:
    """The claims of a valid, unexpired token of this purpose; None otherwise."""
    if not token or len(token) > MAX_TOKEN_CHARS or not _canonical(token):
        return None
    try:
        claims = _serializer(secret, purpose).loads(token, max_age=purpose.max_age_seconds)
    except BadData:
        return None
    if not isinstance(claims, list) or not all(isinstance(c, str) for c in claims):
        return None
    return claims


def detached_signature(
    secret: Secret, purpose: Purpose, claims: Sequence[str], *, issued_at: int | None = None
) -> str:
    """The token of `claims` without the claims themselves (its time and signature)."""
    _, time, signature = sign(secret, purpose, claims, issued_at=issued_at).rsplit(".", 2)
    return f"{time}.{signature}"


def valid_detached(
    secret: Secret, purpose: Purpose, claims: Sequence[str], signature: str
) -> bool:
    """Whether `signature` is a valid, unexpired detached signature of exactly `claims`."""
    payload = _serializer(secret, purpose).dump_payload(list(claims)).decode()
    return verify(secret, purpose, f"{payload}.{signature}") == list(claims)
