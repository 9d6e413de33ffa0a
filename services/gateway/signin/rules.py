"""The rules of staff sessions and sign-in attempts, without I/O."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.config import SignInSettings

#: A session ends after this long unused…
SESSION_IDLE = timedelta(hours=12)
#: …and in any case this long after signing in.
SESSION_LIFETIME = timedelta(days=7)
#: A session's last use is written at most this often (not on every request).
SESSION_TOUCH_EVERY = timedelta(minutes=1)
#: A sign-in link opens once, within this time.
LINK_LIFETIME = timedelta(minutes=15)

#: The methods that change something, hence need the CSRF token when the cookie authenticates.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"


def new_secret_token() -> str:
    """A random token for a session or a link (256 bits); only its SHA-256 is stored."""
    return secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def email_key(email: str) -> str:
    """The form an address is matched and counted by (mailbox names are not case-sensitive in
    practice)."""
    return email.strip().lower()


def session_expiry(created_at: datetime, now: datetime) -> datetime:
    """When a session used at `now` ends unless used again."""
    return min(now + SESSION_IDLE, created_at + SESSION_LIFETIME)


@dataclass(frozen=True)
class Cookie:
    name: str
    secure: bool


def session_cookie(environment: str) -> Cookie:
    """Outside development the cookie is Secure and `__Host-` prefixed (the browser then refuses
    it from plain HTTP, from a subdomain and for another path)."""
    secure = environment != "development"
    return Cookie("__Host-inbox_session" if secure else "inbox_session", secure)


def retry_after(limits: SignInSettings, failed_for_email: int, failed_from_client: int
                ) -> int | None:
    """Seconds to wait before trying again, or None when another attempt may be made."""
    if (failed_for_email >= limits.attempts_per_email
            or failed_from_client >= limits.attempts_per_client):
        return int(limits.window_seconds)
    return None
