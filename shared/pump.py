"""A background loop that works in rounds: it repeats a round while there is work, then sleeps
until woken or until the next work is due. A round that fails (a dependency is away) is tried
again with backoff. The outbox relay and the delivery worker run on it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from shared.retry import Retry, Stopped

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
        self._stopping = asyncio.Event()
        # A failed round is tried again after short waits (a round is cheap, and someone waits
        # for what it moves); a wake-up does not cut them short, so writes made while the
        # database is away do not make the pump spin.
        self._rounds = Retry(Exception, initial=0.5, cap=2.0, stopping=self._stopping,
                             on_retry=self._failed)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Finish the work there is, then return from `run`."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                done = await self._rounds.call(self._work)
            except Stopped:
                return  # stopped while a dependency was away: there is nothing to finish
            if done:
                continue
            if self._stopping.is_set():
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

    def _failed(self, exc: BaseException, delay: float) -> None:
        log.warning("%s: %s: %s; trying again in %.1fs", self.name, type(exc).__name__, exc, delay)
