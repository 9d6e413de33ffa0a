"""Presence through the real stack: online on activity, offline on leave or by timeout alone,
and a restart of the presence service keeps who is online."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from services.presence.rules import Visitor, apply_signal, online_now
from shared.contracts import ActivityEvent, PresenceChanged
from shared.topics import PRESENCE_CHANGES, STOREFRONT_ACTIVITY
from tests.conftest import PRESENCE_TIMEOUT, read_topic
from tests.helpers import new_shop, unique

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=60)


def test_online_while_signals_are_recent_and_no_leave_came_after():
    v = apply_signal(Visitor(), "heartbeat", T0)
    assert online_now(v, T0 + timedelta(seconds=59), TIMEOUT)
    assert not online_now(v, T0 + timedelta(seconds=60), TIMEOUT)  # exactly the timeout: gone
    left = apply_signal(v, "left", T0 + timedelta(seconds=5))
    assert not online_now(left, T0 + timedelta(seconds=6), TIMEOUT)
    back = apply_signal(left, "page_view", T0 + timedelta(seconds=7))
    assert online_now(back, T0 + timedelta(seconds=8), TIMEOUT)
    # A late, older heartbeat does not undo a leave.
    late = apply_signal(left, "heartbeat", T0 + timedelta(seconds=1))
    assert not online_now(late, T0 + timedelta(seconds=6), TIMEOUT)
    assert not online_now(Visitor(), T0, TIMEOUT)


def _activity(shop_id: str, visitor_id: str, kind: str) -> ActivityEvent:
    return ActivityEvent(event_id=unique("act"), shop_id=shop_id, visitor_id=visitor_id,
                         type=kind, at=datetime.now(UTC))


async def _changes(prepared, visitor_id: str, expected: int) -> list[PresenceChanged]:
    """The visitor's changes, each once: the outbox publishes at least once, so a service
    killed between the broker's acknowledgement and its own commit sends one again (with the
    same event id, which is how readers tell)."""
    seen: set[str] = set()

    def new_change(record) -> bool:
        if visitor_id.encode() not in record.value:
            return False
        event_id = PresenceChanged.model_validate_json(record.value).event_id
        if event_id in seen:
            return False
        seen.add(event_id)
        return True

    records = await read_topic(prepared, PRESENCE_CHANGES, new_change, expected=expected,
                               timeout=PRESENCE_TIMEOUT * 4)
    return [PresenceChanged.model_validate_json(r.value) for r in records]


async def test_online_then_offline_by_leave(stack, producer, prepared, db):
    shop, visitor = (await new_shop(producer, db)).shop_id, unique("visitor")
    await producer.send_and_wait(STOREFRONT_ACTIVITY, _activity(shop, visitor, "page_view"))
    await producer.send_and_wait(STOREFRONT_ACTIVITY, _activity(shop, visitor, "heartbeat"))
    await producer.send_and_wait(STOREFRONT_ACTIVITY, _activity(shop, visitor, "left"))
    changes = await _changes(prepared, visitor, 2)
    assert [(c.online, c.reason) for c in changes] == [(True, "activity"), (False, "left")]


async def test_offline_by_timeout_without_any_further_event(stack, producer, prepared, db):
    shop, visitor = (await new_shop(producer, db)).shop_id, unique("visitor")
    await producer.send_and_wait(STOREFRONT_ACTIVITY, _activity(shop, visitor, "heartbeat"))
    changes = await _changes(prepared, visitor, 2)
    assert [(c.online, c.reason) for c in changes] == [(True, "activity"), (False, "timeout")]
    offline_after = (changes[1].at - changes[0].last_seen_at).total_seconds()
    assert PRESENCE_TIMEOUT <= offline_after < PRESENCE_TIMEOUT + 2.5


async def test_a_restart_of_presence_keeps_who_is_online(stack, producer, prepared, db):
    """The widget keeps sending heartbeats while the service is down: after the restart the
    visitor is still online (no offline/online flicker), and a timeout is still noticed."""
    shop, visitor = (await new_shop(producer, db)).shop_id, unique("visitor")
    presence = stack["presence"]

    async def heartbeats() -> None:
        while True:
            await producer.send_and_wait(STOREFRONT_ACTIVITY, _activity(shop, visitor,
                                                                         "heartbeat"))
            await asyncio.sleep(0.5)

    beating = asyncio.create_task(heartbeats())
    try:
        await _changes(prepared, visitor, 1)
        presence.kill()
        presence.start()
        await presence.wait_ready()
        await asyncio.sleep(PRESENCE_TIMEOUT)
        assert await db.fetchval(
            "SELECT online FROM visitors WHERE shop_id = $1 AND visitor_id = $2", shop, visitor)
    finally:
        beating.cancel()
    changes = await _changes(prepared, visitor, 2)
    assert [(c.online, c.reason) for c in changes] == [(True, "activity"), (False, "timeout")]


async def test_the_sweep_sleeps_while_nobody_is_online(db):
    """With nobody online no timeout is due: the sweep waits for the next signal instead of
    looking again at once (it once spun 20 times a second on an idle stack)."""
    from services.presence import queries

    async with db.acquire() as conn:
        rollback = conn.transaction()
        await rollback.start()
        try:
            await conn.execute("UPDATE visitors SET online = false WHERE online")
            assert await queries.next_expiry_in(conn, TIMEOUT) is None
            await conn.execute(
                "INSERT INTO visitors (shop_id, visitor_id, last_seen_at, online) "
                "VALUES ('sweep-shop', 'v', now() - interval '50 seconds', true)")
            due = await queries.next_expiry_in(conn, TIMEOUT)
            assert due is not None and 5 < due <= 10
        finally:
            await rollback.rollback()
