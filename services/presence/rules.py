"""Presence rules: plain functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Visitor:
    last_seen_at: datetime | None = None
    left_at: datetime | None = None
    online: bool = False


def online_now(visitor: Visitor, now: datetime, timeout: timedelta) -> bool:
    """Online: a signal within the timeout, and no `left` at or after it."""
    if visitor.last_seen_at is None:
        return False
    if visitor.left_at is not None and visitor.left_at >= visitor.last_seen_at:
        return False
    return now - visitor.last_seen_at < timeout


def apply_signal(visitor: Visitor, kind: str, at: datetime) -> Visitor:
    """The visitor after one storefront signal (signals may arrive out of order)."""
    if kind == "left":
        left_at = at if visitor.left_at is None else max(visitor.left_at, at)
        return Visitor(visitor.last_seen_at, left_at, visitor.online)
    seen = at if visitor.last_seen_at is None else max(visitor.last_seen_at, at)
    return Visitor(seen, visitor.left_at, visitor.online)
