"""The presence service: who is on the storefront now.

State lives in PostgreSQL (the `visitors` table), not in a faust table: it survives a restart of
the service and of the broker (the development broker keeps nothing), several instances share
it safely (row locks), and the timeout sweep is one indexed UPDATE. Every online/offline flip is
written to the outbox in the same transaction, so a change is announced exactly when it is made.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import Counter, Gauge

from services.presence import queries as q
from services.presence.rules import Visitor, apply_signal, online_now
from shared.contracts import ActivityEvent, PresenceChanged
from shared.db.outbox import Outbox
from shared.db.shops import known_shops
from shared.ids import derived_id
from shared.kafka.consumer import Rejected, Subscription
from shared.pump import Pump
from shared.service import Service
from shared.topics import PRESENCE_CHANGES, STOREFRONT_ACTIVITY

CHANGES = Counter(
    "presence_changes_total", "Presence transitions by direction and reason.",
    ["online", "reason"],
)
ONLINE = Gauge("presence_online_visitors", "Visitors online now (all shops).")


def _change(shop_id: str, visitor_id: str, online: bool, reason: str, last_seen: datetime,
            at: datetime) -> PresenceChanged:
    CHANGES.labels(str(online).lower(), reason).inc()
    return PresenceChanged(
        event_id=str(derived_id("presence", shop_id, visitor_id, str(online),
                                last_seen.isoformat(), reason)),
        shop_id=shop_id, visitor_id=visitor_id, online=online, reason=reason,  # type: ignore[arg-type]
        last_seen_at=last_seen, at=at,
    )


class Presence:
    def __init__(self, outbox: Outbox, timeout: timedelta) -> None:
        self.outbox = outbox
        self.timeout = timeout

    async def on_activity(self, conn: asyncpg.Connection, events: list[ActivityEvent]) -> None:
        unknown = {e.shop_id for e in events} - await known_shops(conn, {e.shop_id for e in events})
        if unknown:
            raise Rejected(f"unknown shop {sorted(unknown)[0]!r}")
        now = datetime.now(UTC)
        known = await q.lock_visitors(conn, list({(e.shop_id, e.visitor_id) for e in events}))
        states = dict(known)
        last_kind: dict[tuple[str, str], str] = {}
        for event in events:
            key = (event.shop_id, event.visitor_id)
            states[key] = apply_signal(states.get(key, Visitor()), event.type, event.at)
            last_kind[key] = event.type
        rows, changes = [], []
        for (shop_id, visitor_id), state in states.items():
            if state.last_seen_at is None:
                continue  # only ever left (a page closed before its first signal): never online
            before = known.get((shop_id, visitor_id), Visitor())
            online = online_now(state, now, self.timeout)
            changed = online != before.online
            rows.append((shop_id, visitor_id, Visitor(state.last_seen_at, state.left_at, online),
                         changed))
            if changed and state.last_seen_at is not None:
                reason = "activity" if online else (
                    "left" if last_kind[(shop_id, visitor_id)] == "left" else "timeout")
                change = _change(shop_id, visitor_id, online, reason, state.last_seen_at, now)
                changes.append((PRESENCE_CHANGES, change.key, change))
        await q.save_visitors(conn, rows)
        await self.outbox.add_many(conn, changes)

    async def expire(self, pool: asyncpg.Pool) -> int:
        async with pool.acquire() as conn, conn.transaction():
            expired = await q.expire(conn, self.timeout, 1000)
            changes = []
            for r in expired:
                change = _change(r["shop_id"], r["visitor_id"], False, "timeout",
                                 r["last_seen_at"], r["changed_at"])
                changes.append((PRESENCE_CHANGES, change.key, change))
            await self.outbox.add_many(conn, changes)
            ONLINE.set(await conn.fetchval("SELECT count(*) FROM visitors WHERE online"))
        return len(expired)


def build(service: Service) -> None:
    timeout = timedelta(seconds=service.settings.presence_timeout_seconds)
    presence = Presence(service.outbox, timeout)

    async def sweep() -> int:
        expired = await presence.expire(service.pool)
        if expired:
            service.relay.wake()
        return expired

    async def next_expiry() -> float:
        async with service.pool.acquire() as conn:
            due = await q.next_expiry_in(conn, presence.timeout)
        return presence.timeout.total_seconds() if due is None else due + 0.05

    # The next expiry is known exactly; a visitor who comes online meanwhile expires no sooner
    # than the timeout, so a sleep of half of it is never late.
    sweeper = Pump("presence sweep", sweep, next_expiry,
                   max_idle=max(1.0, service.settings.presence_timeout_seconds / 2))

    async def run_sweeper() -> None:
        # After downtime, the signals queued meanwhile must count before anyone times out.
        await service.caught_up()
        await sweeper.run()

    service.consume([Subscription(STOREFRONT_ACTIVITY, presence.on_activity)])
    service.background(run_sweeper)
