"""Deterministic ids: the same source event always yields the same id, so a replay converges."""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("6f1c2a4e-8a1b-4f5e-9c3d-2b7e0d9a4c11")


def uuid_or_none(value: str) -> uuid.UUID | None:
    """`value` as a UUID, or None when it is not one (an id from outside is only looked up)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def derived_id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, "\x1f".join(parts))
