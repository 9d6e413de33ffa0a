"""Automatic assignment: who takes the next waiting conversation (no I/O).

`round_robin` gives it to whoever was given one least recently; `balanced` to whoever has the
fewest open conversations (then least recently given one). Either way only available staff
with the chat permission below the shop's capacity are candidates; with none, the conversation
waits."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

Mode = Literal["off", "round_robin", "balanced"]
MODES: tuple[Mode, ...] = ("off", "round_robin", "balanced")


@dataclass(frozen=True)
class Candidate:
    staff_id: str
    open_conversations: int
    #: When they were last given a conversation automatically (None: never).
    last_assigned_at: datetime | None


def _recency(candidate: Candidate) -> tuple[bool, datetime | None]:
    # Never assigned comes first; then the longest ago.
    return (candidate.last_assigned_at is not None, candidate.last_assigned_at)


def choose(mode: Mode, capacity: int, candidates: list[Candidate]) -> Candidate | None:
    """Who takes the next conversation, or None when it must wait."""
    if mode == "off":
        return None
    free = [c for c in candidates if c.open_conversations < capacity]
    if not free:
        return None
    if mode == "balanced":
        return min(free, key=lambda c: (c.open_conversations, *_recency(c), c.staff_id))
    return min(free, key=lambda c: (*_recency(c), c.staff_id))


def assign_waiting(
    mode: Mode, capacity: int, candidates: list[Candidate], waiting: list[str], now: datetime
) -> list[tuple[str, str]]:
    """(conversation, staff member) for the waiting conversations, oldest first, as far as the
    candidates' capacity goes."""
    pool = {c.staff_id: c for c in candidates}
    decided = []
    for conversation_id in waiting:
        chosen = choose(mode, capacity, list(pool.values()))
        if chosen is None:
            break
        pool[chosen.staff_id] = replace(chosen, open_conversations=chosen.open_conversations + 1,
                                        last_assigned_at=now)
        decided.append((conversation_id, chosen.staff_id))
    return decided
