"""Automatic assignment in the router's transaction.

Whenever a conversation may need an assignee (a new or reopened one, one closed or unassigned
freeing a place, staff turning available, the shop changing its settings), the shop's waiting
conversations are given out in arrival order (`assignment_rules`). The shop's settings row is
held meanwhile, so router instances decide one after the other and never exceed a capacity;
conversations another transaction holds are left for the next round rather than waited for
(no deadlock with a command holding one).
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from prometheus_client import Counter

from services.router import assignment_rules as rules
from services.router.entries import TimelineEntry
from services.router.timeline import Timeline
from shared.contracts import AssignmentNudge
from shared.ids import derived_id

AUTO_ASSIGNED = Counter(
    "router_conversations_auto_assigned_total",
    "Conversations given to a staff member by automatic assignment, by mode.",
    ["mode"],
)
#: Waiting conversations looked at per round (the rest wait for the next).
BATCH = 100


class Assigner:
    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline

    async def assign_waiting_in(self, conn: asyncpg.Connection, shop_ids: set[str]) -> None:
        """Gives out the waiting conversations of those of `shop_ids` that assign
        automatically: one look for the whole batch (most shops do not), in a stable order."""
        assigning = await conn.fetch(
            """SELECT shop_id FROM assignment_settings
               WHERE shop_id = ANY($1::text[]) AND mode <> 'off' ORDER BY shop_id""",
            sorted(shop_ids))
        for row in assigning:
            await self._assign_waiting(conn, row["shop_id"])

    async def _assign_waiting(self, conn: asyncpg.Connection, shop_id: str) -> int:
        """Gives out the shop's waiting conversations; returns how many were assigned."""
        settings = await conn.fetchrow(  # held: one decision at a time per shop
            "SELECT mode, capacity FROM assignment_settings WHERE shop_id = $1 FOR UPDATE",
            shop_id)
        if settings is None or settings["mode"] == "off":
            return 0
        waiting = await conn.fetch(
            """SELECT c.*, s.name AS shop_name FROM conversations c
               LEFT JOIN shops s ON s.shop_id = c.shop_id
               WHERE c.shop_id = $1 AND c.status = 'open' AND c.assignee_staff_id IS NULL
                 AND c.redacted_at IS NULL
               ORDER BY c.created_at, c.conversation_id LIMIT $2
               FOR UPDATE OF c SKIP LOCKED""",
            shop_id, BATCH)
        if not waiting:
            return 0
        staff = await conn.fetch(
            """SELECT s.staff_id, s.name, a.last_assigned_at,
                      (SELECT count(*) FROM conversations c WHERE c.shop_id = s.shop_id
                         AND c.status = 'open' AND c.assignee_staff_id = s.staff_id) AS open
               FROM staff s JOIN staff_availability a USING (shop_id, staff_id)
               WHERE s.shop_id = $1 AND s.active AND a.available
                 AND 'online_store_chat' = ANY(s.permissions)""",
            shop_id)
        now = datetime.now(UTC)
        decided = rules.assign_waiting(
            settings["mode"], settings["capacity"],
            [rules.Candidate(r["staff_id"], r["open"], r["last_assigned_at"]) for r in staff],
            [str(c["conversation_id"]) for c in waiting], now)
        names = {r["staff_id"]: r["name"] for r in staff}
        conversations = {str(c["conversation_id"]): c for c in waiting}
        for conversation_id, staff_id in decided:
            conversation = conversations[conversation_id]
            await conn.execute(
                "UPDATE conversations SET assignee_staff_id = $2 WHERE conversation_id = $1",
                conversation["conversation_id"], staff_id)
            await conn.execute(
                """UPDATE staff_availability SET last_assigned_at = $3
                   WHERE shop_id = $1 AND staff_id = $2""", shop_id, staff_id, now)
            await self.timeline.append(conn, conversation, TimelineEntry(
                item_id=derived_id("auto-assigned", conversation_id, staff_id, now.isoformat()),
                kind="assigned", author="system", at=now,
                data={"assignee_staff_id": staff_id, "assignee_name": names[staff_id],
                      "automatic": True, "mode": settings["mode"]},
            ))
            AUTO_ASSIGNED.labels(settings["mode"]).inc()
        return len(decided)

    async def on_nudges(self, conn: asyncpg.Connection, nudges: list[AssignmentNudge]) -> None:
        await self.assign_waiting_in(conn, {n.shop_id for n in nudges})
