"""Open-loop pacing: event i is due at `i / rate` seconds after the start, whatever happens.

A closed-loop generator (send, wait for the answer, send the next) slows down exactly when the
system does, and so hides the latency it should measure ("coordinated omission"). Here the
schedule is fixed in advance: when the sender falls behind (a slow send, a busy event loop), it
sends every overdue event at once to catch up, and each event's latency is counted from the
time it was *due*, not from the time it finally left.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

#: Shortest sleep between rounds of sends: events due within it leave together (one batch per
#: partition; the development broker pays per stored batch). Latency still counts from each
#: event's own due time.
MIN_SLEEP = 0.010


@dataclass(frozen=True)
class OpenLoop:
    rate: float
    duration: float

    def __post_init__(self) -> None:
        if not self.rate > 0 or self.duration < 0:
            raise ValueError("rate must be positive and duration not negative")

    @property
    def total(self) -> int:
        """Events in the whole run."""
        return round(self.rate * self.duration)

    def due_at(self, i: int) -> float:
        """Seconds after the start at which event `i` (0-based) is due."""
        return i / self.rate

    def due_by(self, elapsed: float) -> int:
        """How many events are due `elapsed` seconds after the start (event 0 is due at 0)."""
        if elapsed < 0:
            return 0
        return min(self.total, math.floor(elapsed * self.rate + 1e-9) + 1)


@dataclass
class Pacing:
    """How well the sender kept to the schedule."""

    sent: int = 0
    started: float = 0.0
    finished: float = 0.0
    #: The most an event left after its due time, in seconds.
    max_late: float = 0.0
    #: Events that left more than 10 ms after their due time.
    late: int = 0

    @property
    def achieved_rate(self) -> float:
        elapsed = self.finished - self.started
        return self.sent / elapsed if elapsed > 0 else 0.0


Send = Callable[[int, float], Awaitable[None]]


async def run_open_loop(
    plan: OpenLoop,
    send: Send,
    *,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    min_sleep: float = MIN_SLEEP,
    pacing: Pacing | None = None,
) -> Pacing:
    """Call `send(i, due)` for every event of the plan, each at (or as soon as possible after)
    its due time `due` (on `clock`). Never waits for the system: only for the clock.
    `pacing` (filled in as it goes) lets others watch the progress."""
    pacing = pacing if pacing is not None else Pacing()
    start = pacing.started = clock()
    while pacing.sent < plan.total:
        # Everything due by now leaves in this round, the overdue first (catching up).
        while pacing.sent < plan.total and (now := clock()) >= start + plan.due_at(pacing.sent):
            due = start + plan.due_at(pacing.sent)
            if now - due > pacing.max_late:
                pacing.max_late = now - due
            if now - due > 0.010:
                pacing.late += 1
            await send(pacing.sent, due)
            pacing.sent += 1
        if pacing.sent < plan.total:
            wait = start + plan.due_at(pacing.sent) - clock()
            # Below `min_sleep`, the next events wait to leave together (a batch).
            await sleep(max(wait, min_sleep) if wait > 0 else 0)
    # The run lasts its duration even when the last event is due earlier.
    rest = start + plan.duration - clock()
    if rest > 0:
        await sleep(rest)
    pacing.finished = clock()
    return pacing
