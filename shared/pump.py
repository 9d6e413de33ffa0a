"""A background loop that works in rounds: it repeats a round while there is work, then sleeps
until woken or until the next work is due. The outbox relay and the delivery worker run on it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Pump:
    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[int]],
        idle_seconds: Callable[[], Awaitable[float]] | None = None,
        max_idle: float = 1.0,
    ) -> None:
        self.name = name
        self._work = work
        self._idle_seconds = idle_seconds
        self._max_idle = max_idle
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Finish the work there is, then return from `run`."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                done = await self._work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dependency is away: try again shortly
                log.warning("%s: %s: %s", self.name, type(exc).__name__, exc)
                done = 0
                await asyncio.sleep(1.0)
            if done:
                continue
            if self._stopping:
                return
            idle = self._max_idle
            if self._idle_seconds is not None:
                try:
                    idle = min(idle, await self._idle_seconds())
                except Exception:
                    pass
            try:
                await asyncio.wait_for(self._wake.wait(), idle)
            except TimeoutError:
                pass
