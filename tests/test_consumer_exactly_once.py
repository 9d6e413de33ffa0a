"""The consume loop's exactly-once subscriptions, on the real broker: a handler that fails on
one event aborts the batch's transaction; the events are then applied one by one, each in a
transaction of its own, the failing one goes to the DLQ with the reason, and a read_committed
reader sees every other output once, in order. (At least once where the broker has no
transactions: the outputs are all there, a repeat allowed.)"""

from __future__ import annotations

import asyncio

from shared.config import Settings
from shared.health import Health
from shared.kafka.admin import ensure_topics, topic_partitions
from shared.kafka.consumer import ConsumeLoop, Subscription
from shared.kafka.producer import EventProducer
from shared.topics import dlq_topic
from tests.conftest import eventually, read_topic
from tests.helpers import unique


async def test_a_failing_event_goes_to_the_dlq_and_the_others_are_output_once(
    prepared: Settings, producer: EventProducer
):
    source, output = unique("eo-in"), unique("eo-out")
    await ensure_topics(prepared, [source, dlq_topic(source), output])

    async def described() -> bool:  # else the group may be formed before the topic is known
        return len(await topic_partitions(prepared, [source])) == prepared.kafka.topic_partitions

    await eventually(described, timeout=30)
    # One key: one partition, one batch, in this order.
    for value in (b"a", b"b", b"poison", b"c", b"\xff not text", b"d"):
        await (await producer.send_raw(source, value, "same-key"))

    async def handler(events: list[str], out: EventProducer) -> None:
        for event in events:
            if event == "poison":
                raise RuntimeError("cannot handle poison")
            await (await out.send_raw(output, event.upper().encode(), "same-key"))

    name = unique("eo")
    loop = ConsumeLoop(
        name=name, settings=prepared, producer=producer, health=Health(),
        subscriptions=[Subscription(source, handler, transactional=False, exactly_once=True,
                                    decode=lambda value: value.decode())],
    )
    task = asyncio.create_task(loop.run())
    try:
        letters = await read_topic(prepared, dlq_topic(source), lambda r: True, expected=2,
                                   timeout=60)
        outputs = await read_topic(prepared, output, lambda r: True, expected=4, timeout=30,
                                   isolation_level="read_committed")
    finally:
        loop.stop()
        await asyncio.wait_for(task, 30)

    reasons = {r.value: dict(r.headers) for r in letters}
    assert set(reasons) == {b"poison", b"\xff not text"}
    assert reasons[b"poison"]["dlq.kind"] == b"failed"
    assert b"cannot handle poison" in reasons[b"poison"]["dlq.reason"]
    assert reasons[b"\xff not text"]["dlq.kind"] == b"invalid"
    values = [r.value for r in outputs]
    if prepared.kafka.transactions:
        assert values == [b"A", b"B", b"C", b"D"]
        # The whole batch's transaction had A and B written (acknowledged) before the poison:
        # they are in the log, aborted, and only a read_uncommitted reader is given them.
        written = await read_topic(prepared, output, lambda r: True, expected=6, timeout=30,
                                   isolation_level="read_uncommitted")
        assert [r.value for r in written] == [b"A", b"B", b"A", b"B", b"C", b"D"]
    else:
        assert set(values) == {b"A", b"B", b"C", b"D"}
