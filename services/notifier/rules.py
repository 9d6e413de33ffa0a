"""Delivery policy: plain functions."""

from __future__ import annotations

MAX_ATTEMPTS = 8


def retry_delay_seconds(attempt: int) -> float:
    """Backoff after the given failed attempt (1-based): 2 s, 4 s, … capped at 5 minutes."""
    return float(min(2**attempt, 300))


def give_up(attempt: int) -> bool:
    return attempt >= MAX_ATTEMPTS
