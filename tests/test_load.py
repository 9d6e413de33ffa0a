"""The load generator: open-loop timing, percentiles, the traffic mix (pure), and one short run
of `inbox load` against the test stack."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inbox.load.follow import Tracker
from inbox.load.report import LoadReport, PathResult, latency_summary, percentile
from inbox.load.schedule import OpenLoop, run_open_loop
from inbox.load.traffic import (
    CHANNEL_SHARES,
    KINDS,
    MESSAGE_TAG,
    MESSAGE_TIMELINE,
    PATHS,
    REPLY_DELIVERY,
    TIMELINE,
    Expect,
    Mix,
    Traffic,
)
from shared.ids import derived_id
from shared.topics import INBOX_COMMANDS, TOPICS

ROOT = Path(__file__).resolve().parent.parent

# --- schedule: open-loop timing ----------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_open_loop_arithmetic():
    plan = OpenLoop(rate=200, duration=3)
    assert plan.total == 600
    assert plan.due_at(0) == 0 and plan.due_at(200) == pytest.approx(1.0)
    assert plan.due_by(-0.1) == 0
    assert plan.due_by(0) == 1  # event 0 is due at the start
    assert plan.due_by(0.0049) == 1 and plan.due_by(0.005) == 2
    assert plan.due_by(1.0) == 201
    assert plan.due_by(60) == 600  # never more than the plan
    with pytest.raises(ValueError):
        OpenLoop(rate=0, duration=1)


async def test_each_event_leaves_at_its_due_time():
    clock, sent = FakeClock(), []

    async def send(i: int, due: float) -> None:
        sent.append((i, due, clock.now))

    pacing = await run_open_loop(OpenLoop(100, 1), send, clock=clock, sleep=clock.sleep)
    assert [i for i, _, _ in sent] == list(range(100))
    for i, due, at in sent:
        assert due == pytest.approx(100.0 + i / 100)
        assert at == pytest.approx(due)
    assert pacing.max_late == pytest.approx(0, abs=1e-9)
    assert pacing.achieved_rate == pytest.approx(100)


async def test_a_slow_system_does_not_slow_the_schedule():
    """Open loop: a stall while sending event 10 (half a second) is followed by a burst of the
    overdue events, each still due at its own time, and then the original schedule resumes."""
    clock, sent = FakeClock(), []

    async def send(i: int, due: float) -> None:
        sent.append((i, due, clock.now))
        if i == 10:
            clock.now += 0.5

    pacing = await run_open_loop(OpenLoop(100, 1), send, clock=clock, sleep=clock.sleep)
    assert len(sent) == 100
    start = 100.0
    assert [due for _, due, _ in sent] == pytest.approx([start + i / 100 for i in range(100)])
    stalled_until = start + 0.1 + 0.5
    burst = [(i, at) for i, _, at in sent if 10 < i <= 60]
    assert all(at == pytest.approx(stalled_until) for _, at in burst)  # caught up at once
    _, due, at = sent[80]
    assert at == pytest.approx(due)  # back on the original schedule, not shifted by the stall
    assert pacing.max_late == pytest.approx(0.5 - 0.01)
    assert pacing.finished - pacing.started == pytest.approx(1.0)


async def test_a_send_that_always_lags_still_sends_everything_in_time_order():
    clock, sent = FakeClock(), []

    async def send(i: int, due: float) -> None:
        sent.append(due)
        clock.now += 0.015  # each send costs more than the interval (10 ms)

    pacing = await run_open_loop(OpenLoop(100, 0.5), send, clock=clock, sleep=clock.sleep)
    assert sent == sorted(sent) and len(sent) == 50
    assert pacing.max_late > 0.2  # it fell behind and says so


# --- report: percentiles -----------------------------------------------------------------------


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.0) == 1
    assert percentile([7.0], 0.99) == 7
    assert percentile([1.0, 2.0], 0.5) == 1 and percentile([1.0, 2.0], 0.51) == 2
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_latency_summary_in_milliseconds():
    summary = latency_summary([0.010, 0.020, 0.030, 0.040, 1.0])
    assert summary == {"count": 5, "p50_ms": 30.0, "p95_ms": 1000.0, "p99_ms": 1000.0,
                       "max_ms": 1000.0, "mean_ms": 220.0}
    assert latency_summary([])["p99_ms"] is None


def test_tracker_counts_latency_duplicates_and_losses():
    tracker = Tracker()
    tracker.begin_phase(10.0)
    tracker.expect([Expect(MESSAGE_TIMELINE, TIMELINE, "a"), Expect(MESSAGE_TAG, "tag", "a")],
                   due=10.0)
    tracker.expect([Expect(MESSAGE_TIMELINE, TIMELINE, "b")], due=10.5)
    tracker.expect([Expect(REPLY_DELIVERY, "delivery", "c")], due=10.5)
    tracker.forget([Expect(REPLY_DELIVERY, "delivery", "c")])  # the producer refused it
    assert tracker.observe(TIMELINE, "a", 10.2, event_id="a")
    assert tracker.observe(TIMELINE, "a", 10.3, event_id="a")  # the same event again
    assert not tracker.observe(TIMELINE, "someone-else", 10.3)
    assert tracker.oldest_pending(11.0) == pytest.approx(1.0)  # the tag of "a"
    assert tracker.observe("tag", "a", 10.4, event_id="tag-1")
    assert tracker.observe("tag", "a", 10.5, event_id="tag-2")  # a second tag event: duplicate
    paths = tracker.close_phase()
    timeline = paths[MESSAGE_TIMELINE]
    assert (timeline.expected, timeline.seen, timeline.lost) == (2, 1, 1)
    assert (timeline.duplicated, timeline.redelivered) == (0, 1)
    assert (paths[MESSAGE_TAG].duplicated, paths[MESSAGE_TAG].redelivered) == (1, 0)
    assert timeline.latencies == [pytest.approx(0.2)]
    assert paths[MESSAGE_TAG].latencies == [pytest.approx(0.4)]
    assert paths[REPLY_DELIVERY].expected == 0
    assert not tracker.pending


def test_report_is_clean_only_without_losses_duplicates_or_errors():
    def report(**changes) -> LoadReport:
        fields = {"target_rate": 10, "duration": 1, "mix": "message=1", "shops": 1,
                  "sent": {"message": 10}, "achieved_rate": 10, "max_send_late_ms": 0,
                  "paths": {MESSAGE_TIMELINE: PathResult(MESSAGE_TIMELINE, 10, 10)},
                  "database": {"missing": 0, "duplicate_messages": 0}}
        fields.update(changes)
        return LoadReport(**fields)

    assert report().clean
    assert not report(paths={MESSAGE_TIMELINE: PathResult(MESSAGE_TIMELINE, 10, 9, lost=1)}).clean
    assert not report(database={"missing": 1}).clean
    assert not report(database={"duplicate_timeline_items": 1}).clean
    assert not report(errors=[{"kind": "dead_letter"}]).clean
    assert "clean" in report().text() and json.dumps(report().as_dict())


# --- traffic -----------------------------------------------------------------------------------


def _traffic(seed: int = 7, **options) -> Traffic:
    fixed = datetime(2026, 1, 1, tzinfo=UTC)
    return Traffic([f"shop-{i}" for i in range(4)], run_id="t1", seed=seed,
                   tagged=lambda text: "order" in text.lower(), clock=lambda: fixed, **options)


def test_mix_parsing():
    assert Mix.parse("default") == Mix()
    assert Mix.parse("messages").shares()["message"] == 1.0
    mix = Mix.parse("message=3, reply=1")
    assert mix.shares() == {"message": 0.75, "reply": 0.25, "cart": 0, "activity": 0, "order": 0}
    assert str(mix) == "message=3,reply=1"
    for bad in ("messages=1", "message", "message=x", "message=0", "message=-1"):
        with pytest.raises(ValueError):
            Mix.parse(bad)


def test_the_mix_is_what_was_asked_for():
    traffic = _traffic()
    made = Counter()
    for _ in range(6000):
        planned = traffic.next()
        made[planned.kind] += 1
        if planned.kind == "message":  # conversations come into existence as they are seen
            traffic.confirm(str(derived_id("conversation", planned.shop_id, planned.channel,
                                           json.loads(planned.value)["thread_ref"])))
    for kind, share in Mix().shares().items():
        assert made[kind] / 6000 == pytest.approx(share, abs=0.025), kind
    threads = list(traffic.threads.values())
    assert {t.channel for t in threads} == set(CHANNEL_SHARES)
    assert {t.lang for t in threads} == {"en", "de", "fr", "sv", "vi", "es"}
    assert len({t.shop_id for t in threads}) == 4


def test_every_event_keeps_its_contract_and_names_its_effects():
    traffic = _traffic()
    assert traffic.next("reply").kind == "message"  # nothing to answer yet
    for _ in range(3000):
        planned = traffic.next()
        event = TOPICS[planned.topic].decode(planned.value)
        assert event.key == planned.key and event.event_id == planned.event_id
        if planned.kind == "message":
            message_id = str(derived_id("message", planned.shop_id, planned.event_id))
            assert planned.expects[0] == Expect(MESSAGE_TIMELINE, TIMELINE, message_id)
            assert (MESSAGE_TAG in {e.path for e in planned.expects}) == ("order" in
                                                                          event.text.lower())
            traffic.confirm(str(derived_id("conversation", event.shop_id, event.channel,
                                           event.thread_ref)))
        if planned.topic == INBOX_COMMANDS:
            assert traffic.threads[event.conversation_id].confirmed  # only existing ones
            assert planned.expects == (Expect(REPLY_DELIVERY, "delivery", str(
                derived_id("message", event.shop_id, event.command_id))),)
    assert {e.path for e in [*planned.expects]} <= set(PATHS)


def test_same_seed_same_traffic():
    first, second = _traffic(seed=3), _traffic(seed=3)
    assert [first.next().value for _ in range(200)] == [second.next().value for _ in range(200)]
    assert set(KINDS) == set(Mix().shares())


# --- one short run against the test stack ------------------------------------------------------


async def test_inbox_load_end_to_end(stack, prepared, workdir):
    """`inbox load` at a low rate for a few seconds: every path followed, nothing lost or
    duplicated, no error, and a summary (text and JSON) with every path."""
    result_path = workdir / "load.json"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": prepared.kafka.bootstrap_servers,
           "DATABASE_URL": prepared.database.url, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inbox.cli", "load", "--rate", "40", "--duration", "8",
        "--shops", "3", "--grace", "20", "--json", str(result_path),
        env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 150)
    text = output.decode()
    assert process.returncode == 0, text
    assert "[   1s] sent" in text  # a progress line every second
    result = json.loads(result_path.read_text())
    assert result["clean"], text
    assert result["lost"] == 0 and result["duplicated"] == 0 and result["errors"] == []
    assert set(result["paths"]) == set(PATHS), text
    for name, path in result["paths"].items():
        assert path["expected"] > 0 and path["seen"] == path["expected"], name
        assert path["latency"]["p99_ms"] is not None, name
    assert result["database"]["missing"] == 0
    assert result["database"]["duplicate_messages"] == 0
    assert result["database"]["duplicate_timeline_items"] == 0
    assert all(result["sent"][kind] > 0 for kind in KINDS), result["sent"]
    for name in PATHS:
        assert name in text
