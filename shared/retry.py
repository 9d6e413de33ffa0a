"""The one retry policy: how every service waits for a dependency that is away.

Exponential backoff with jitter: half of each delay grows (0.5 s, 1 s, 2 s… up to the cap), the
other half is drawn at random, so instances that lost a dependency together do not come back in
lockstep, not even once the cap is reached. The wait ends at once when the service stops. The
caller hears of each retry (the error and the delay) to log it and report its health.

    policy = Retry(TRANSIENT_DB_ERRORS, initial=0.5, cap=5.0, on_retry=report)
    async for attempt in policy:
        with attempt:
            await work()

Errors the policy does not retry pass through at once; when the attempts or the deadline run
out, the last error is raised; a stop ends the retrying with `Stopped`. The only module that
knows tenacity.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    AttemptManager,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    stop_never,
    stop_when_event_set,
    wait_exponential,
    wait_random_exponential,
)

T = TypeVar("T")

#: Which errors are worth another attempt: exception types, or a test of the error.
Retryable = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
#: Told of each retry before its wait: the error, and the seconds until the next attempt.
OnRetry = Callable[[BaseException, float], None]


class Stopped(Exception):
    """The service is stopping: the retrying ended without another attempt."""


class Attempt:
    """One try, as `with attempt:`. An error to retry ends the block and is kept for the policy;
    the `async for` raises anything else."""

    def __init__(self, manager: AttemptManager) -> None:
        self._manager = manager

    @property
    def number(self) -> int:
        """1 for the first try, 2 for the first retry…"""
        return self._manager.retry_state.attempt_number

    def restart_backoff(self) -> None:
        """This try got far enough (it connected): should it fail later, the wait before the
        next one starts short again, and a deadline counts from now."""
        state = self._manager.retry_state
        state.attempt_number = 1
        state.start_time = time.monotonic()

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> bool | None:
        return self._manager.__exit__(kind, error, trace)


class Retry:
    """A retry policy. It may be iterated by several tasks at once: each `async for` is a retrying
    of its own."""

    def __init__(
        self,
        retry_on: Retryable,
        *,
        initial: float = 0.5,
        cap: float = 5.0,
        attempts: int | None = None,
        deadline: float | None = None,
        stopping: asyncio.Event | None = None,
        on_retry: OnRetry | None = None,
    ) -> None:
        """`initial`: the first delay's growing half is half of it, so the first delay lies between
        `initial / 2` and `initial`; each next one doubles, up to `cap`. `attempts` and
        `deadline` (seconds since the first try) bound the retrying; without them it goes on
        until it works. `stopping`, once set, ends a wait at once."""
        if on_retry is not None and not callable(on_retry):
            raise TypeError(f"on_retry must be callable, not {type(on_retry).__name__}")
        self._stopping = stopping
        self._on_retry = on_retry
        stops = [stop_after_attempt(attempts)] if attempts is not None else []
        if deadline is not None:
            stops.append(stop_after_delay(deadline))
        if stopping is not None:
            stops.append(stop_when_event_set(stopping))  # it asks only is_set()
        self._retrying = AsyncRetrying(
            retry=(retry_if_exception(retry_on) if _is_test(retry_on)
                   else retry_if_exception_type(retry_on)),
            wait=(wait_exponential(multiplier=initial / 2, max=cap / 2)
                  + wait_random_exponential(multiplier=initial / 2, max=cap / 2)),
            stop=stop_any(*stops) if stops else stop_never,
            sleep=self._sleep,
            before_sleep=self._before_sleep if on_retry is not None else None,
            retry_error_callback=self._give_up,
        )

    def __aiter__(self) -> _Attempts:
        return _Attempts(self._retrying.copy())

    async def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """`work()` under this policy; its result."""
        async for attempt in self:
            with attempt:
                return await work()
        raise AssertionError("unreachable: the last attempt either returned or raised")

    async def _sleep(self, seconds: float) -> None:
        if self._stopping is None:
            await asyncio.sleep(seconds)
            return
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
        raise Stopped

    def _before_sleep(self, state: RetryCallState) -> None:
        assert self._on_retry is not None and state.outcome is not None
        error = state.outcome.exception()
        assert error is not None
        self._on_retry(error, state.upcoming_sleep)

    def _give_up(self, state: RetryCallState) -> None:
        assert state.outcome is not None
        error = state.outcome.exception()
        assert error is not None
        if self._stopping is not None and self._stopping.is_set():
            raise Stopped from error
        raise error


class _Attempts:
    """One retrying: the attempts of one `async for`."""

    def __init__(self, retrying: AsyncRetrying) -> None:
        self._retrying = retrying.__aiter__()

    def __aiter__(self) -> _Attempts:
        return self

    async def __anext__(self) -> Attempt:
        return Attempt(await self._retrying.__anext__())


def _is_test(retry_on: Retryable) -> bool:
    return not isinstance(retry_on, tuple) and not isinstance(retry_on, type)
