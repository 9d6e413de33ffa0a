"""A token bucket per Facebook Page: the notifier's own pace, and Meta's "slow down".

Each notifier instance keeps its own buckets (run N instances at 1/N of Meta's rate). When
Meta answers with a rate limit (4, 613) or a restriction, the Page pauses: its sends wait,
another Page's do not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float
    paused_until: float = 0.0


class PageRateLimiter:
    def __init__(
        self, rate_per_second: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = max(rate_per_second, 0.001)
        self.capacity = max(1.0, self.rate)  # at most one second's worth in a burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, page_id: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(page_id)
        if bucket is None:
            bucket = self._buckets[page_id] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def pause(self, page_id: str, seconds: float) -> None:
        bucket = self._bucket(page_id)
        bucket.paused_until = max(bucket.paused_until, self._clock() + seconds)

    def paused_for(self, page_id: str) -> float:
        return max(0.0, self._bucket(page_id).paused_until - self._clock())

    def reserve(self, page_id: str) -> float:
        """Take a token if one is there (returns 0); else the seconds until one will be, or
        until the pause ends (nothing taken)."""
        bucket = self._bucket(page_id)
        paused = bucket.paused_until - self._clock()
        if paused > 0:
            return paused
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    async def acquire(self, page_id: str, max_wait: float = 1.0) -> bool:
        """Wait for the Page's next token; False when that would take longer than `max_wait`
        (the caller tries the message again later)."""
        while True:
            wait = self.reserve(page_id)
            if wait == 0:
                return True
            if wait > max_wait:
                return False
            await asyncio.sleep(wait)
