"""The one retry policy (`shared.retry`): growing, jittered delays; a stop ends the wait at once;
the caller hears of each retry; what is not worth retrying passes through at once."""

from __future__ import annotations

import asyncio

import pytest

from inbox.dev.processes import free_port
from shared.config import KafkaSettings, Settings
from shared.health import Health
from shared.kafka.admin import BrokerUnreachable, wait_for_broker
from shared.retry import Retry, Stopped


class Flaky:
    """Work that fails `failures` times with `error`, then returns "done"."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("database away")
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def _recording(initial: float, cap: float) -> tuple[list[float], Retry]:
    """A policy, and the delays it waits."""
    delays: list[float] = []
    return delays, Retry(ConnectionError, initial=initial, cap=cap,
                         on_retry=lambda _error, delay: delays.append(delay))


async def test_the_delays_grow_to_the_cap_and_are_jittered():
    first, policy = _recording(initial=0.004, cap=0.032)
    second, other = _recording(initial=0.004, cap=0.032)
    assert await policy.call(Flaky(6)) == "done"
    assert await other.call(Flaky(6)) == "done"
    for delays in (first, second):
        nominal = [min(0.032, 0.004 * 2**n) for n in range(6)]  # 4, 8, 16, 32, 32, 32 ms
        # Each delay is half fixed (it grows), half drawn at random.
        assert all(d / 2 <= delay <= d for delay, d in zip(delays, nominal, strict=True)), delays
        assert delays[3] > delays[0]
    assert first != second  # two instances do not wait in lockstep, not even at the cap
    assert first[3:] != second[3:]


async def test_the_hook_hears_each_retry_with_its_reason():
    health = Health()
    reported: list[tuple[bool, str]] = []

    def on_retry(error: BaseException, delay: float) -> None:
        health.set("postgres", False, str(error))
        reported.append((health.ready, health.report()["postgres"]["detail"]))

    work = Flaky(2, ConnectionError("connection refused"))
    policy = Retry(ConnectionError, initial=0.002, cap=0.01, on_retry=on_retry)
    assert await policy.call(work) == "done"
    health.set("postgres", True, "connected")
    assert reported == [(False, "connection refused")] * 2
    assert work.calls == 3 and health.ready


async def test_an_error_not_worth_retrying_passes_through_at_once():
    heard: list[BaseException] = []
    work = Flaky(5, KeyError("a bug"))
    policy = Retry(ConnectionError, initial=10.0, cap=10.0,
                   on_retry=lambda error, _delay: heard.append(error))
    with pytest.raises(KeyError, match="a bug"):
        await asyncio.wait_for(policy.call(work), 5)
    assert work.calls == 1 and heard == []


async def test_which_errors_to_retry_may_be_a_test_of_the_error():
    worth_it = Retry(lambda error: "again" in str(error), initial=0.002, cap=0.004)
    assert await worth_it.call(Flaky(2, RuntimeError("try again"))) == "done"
    never = Flaky(2, RuntimeError("for good"))
    with pytest.raises(RuntimeError, match="for good"):
        await worth_it.call(never)
    assert never.calls == 1


async def test_out_of_attempts_the_last_error_is_raised():
    work = Flaky(10, ConnectionError("still away"))
    with pytest.raises(ConnectionError, match="still away"):
        await Retry(ConnectionError, initial=0.002, cap=0.004, attempts=3).call(work)
    assert work.calls == 3


async def test_past_the_deadline_the_last_error_is_raised():
    work = Flaky(10_000, ConnectionError("still away"))
    with pytest.raises(ConnectionError, match="still away"):
        await asyncio.wait_for(
            Retry(ConnectionError, initial=0.002, cap=0.01, deadline=0.05).call(work), 5)
    assert 1 < work.calls < 10_000


async def test_a_stop_ends_the_wait_at_once():
    stopping = asyncio.Event()
    waiting = asyncio.Event()
    work = Flaky(10)
    # The wait would be a minute long.
    policy = Retry(ConnectionError, initial=60.0, cap=60.0, stopping=stopping,
                   on_retry=lambda _error, _delay: waiting.set())
    task = asyncio.create_task(policy.call(work))
    await asyncio.wait_for(waiting.wait(), 5)
    stopping.set()
    with pytest.raises(Stopped):
        await asyncio.wait_for(task, 5)
    assert work.calls == 1  # no attempt after the stop


async def test_an_attempt_failing_while_stopping_is_not_retried():
    stopping = asyncio.Event()
    stopping.set()
    heard: list[BaseException] = []
    work = Flaky(10)
    policy = Retry(ConnectionError, initial=60.0, cap=60.0, stopping=stopping,
                   on_retry=lambda error, _delay: heard.append(error))
    with pytest.raises(Stopped) as stopped:
        await asyncio.wait_for(policy.call(work), 5)
    assert isinstance(stopped.value.__cause__, ConnectionError)
    assert work.calls == 1 and heard == []


async def test_a_try_that_got_far_enough_restarts_the_backoff():
    delays: list[float] = []
    policy = Retry(ConnectionError, initial=0.004, cap=0.032,
                   on_retry=lambda _error, delay: delays.append(delay))
    sessions = 0
    async for attempt in policy:
        with attempt:
            if attempt.number < 4 and sessions == 0:
                raise ConnectionError("broker away")  # three failed connects
            attempt.restart_backoff()  # connected
            sessions += 1
            if sessions < 3:
                raise ConnectionError("connection lost")  # the session breaks later
    assert sessions == 3
    assert delays[2] >= 0.008  # the third failed connect waited longer…
    assert delays[3:] == [d for d in delays[3:] if d <= 0.004]  # …a broken session, short again


async def test_one_policy_serves_concurrent_retryings():
    policy = Retry(ConnectionError, initial=0.002, cap=0.004, attempts=3)
    works = [Flaky(2), Flaky(2), Flaky(2)]
    assert await asyncio.gather(*(policy.call(w) for w in works)) == ["done"] * 3
    assert [w.calls for w in works] == [3, 3, 3]


def test_a_hook_must_be_callable():
    with pytest.raises(TypeError, match="on_retry"):
        Retry(ConnectionError, on_retry=(print,))


async def test_waiting_for_a_broker_that_is_not_there_reports_then_gives_up():
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"))
    reasons: list[str] = []
    with pytest.raises(BrokerUnreachable, match="connection refused"):
        await asyncio.wait_for(wait_for_broker(settings, patience=0.5, report=reasons.append), 30)
    assert len(reasons) > 1 and all("connection refused" in r for r in reasons)
