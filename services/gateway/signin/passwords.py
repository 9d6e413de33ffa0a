"""Passwords as argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommendation)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Checked when the address has no password, so that the answer takes as long either way and
# does not tell which addresses are staff.
_NO_PASSWORD = _hasher.hash("no password: this hash matches nothing a person types")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _matches(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _NO_PASSWORD, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


async def matches(password_hash: str | None, password: str) -> bool:
    """Whether `password` is the one hashed; off the event loop (a check costs ~0.1 s of CPU)."""
    return await asyncio.to_thread(_matches, password_hash, password)
