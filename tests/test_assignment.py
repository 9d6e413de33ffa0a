"""Automatic assignment: round robin and balanced, capacity, availability, waiting in arrival
order, and two router instances deciding at once without exceeding a capacity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.router.assignment_rules import Candidate, assign_waiting, choose
from shared.topics import CHAT_INBOUND
from tests.conftest import ServiceProcess, eventually
from tests.helpers import chat_message, new_shop
from tests.test_api_support import client
from tests.test_browser_support import UI_TIMEOUT_MS, expect, merchant_page, requires_browser

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def c(staff_id: str, open_conversations: int = 0, minutes_ago: int | None = None) -> Candidate:
    when = None if minutes_ago is None else T0 - timedelta(minutes=minutes_ago)
    return Candidate(staff_id, open_conversations, when)


@pytest.mark.parametrize(("mode", "capacity", "candidates", "chosen"), [
    ("off", 5, [c("ava")], None),
    ("balanced", 5, [], None),
    ("balanced", 2, [c("ava", 2), c("ben", 2)], None),  # everyone at capacity: it waits
    ("balanced", 5, [c("ava", 3, 60), c("ben", 1, 1)], "ben"),  # fewest open
    ("balanced", 5, [c("ava", 1, 1), c("ben", 1, 60)], "ben"),  # then least recently given
    ("balanced", 5, [c("ava", 1, 1), c("ben", 1)], "ben"),  # never given one comes first
    ("round_robin", 5, [c("ava", 0, 1), c("ben", 4, 60)], "ben"),  # the order, not the load
    ("round_robin", 5, [c("ava", 0, 1), c("ben", 5, 60)], "ava"),  # but never past capacity
    ("round_robin", 5, [c("ben"), c("ava")], "ava"),  # ties by id: a stable order
])
def test_who_takes_the_next_conversation(mode, capacity, candidates, chosen):
    picked = choose(mode, capacity, candidates)
    assert (picked.staff_id if picked else None) == chosen


def test_waiting_conversations_go_out_in_order_as_far_as_capacity_goes():
    decided = assign_waiting("round_robin", 2, [c("ava", 1, 5), c("ben", 0, 10)],
                             ["c1", "c2", "c3", "c4"], T0)
    assert decided == [("c1", "ben"), ("c2", "ava"), ("c3", "ben")]  # c4 waits


async def _setup(stack, shop, mode: str, capacity: int, available=("ava", "ben")) -> None:
    async with client(stack, shop) as ava:
        response = await ava.put("/settings/assignment", json={"mode": mode,
                                                                "capacity": capacity})
        assert response.status_code == 200, response.text
    for staff_id in available:
        async with client(stack, shop, staff_id) as them:
            response = await them.put("/me/availability", json={"available": True})
            assert response.status_code == 200, response.text


async def _new_conversations(producer, db, shop_id: str, n: int) -> list[str]:
    threads = []
    for _ in range(n):
        message = chat_message(shop_id)
        threads.append(message.thread_ref)
        await producer.send_and_wait(CHAT_INBOUND, message)

    async def stored() -> list[str] | None:
        rows = await db.fetch(
            "SELECT conversation_id::text FROM conversations WHERE shop_id = $1 "
            "AND thread_ref = ANY($2::text[]) ORDER BY created_at", shop_id, threads)
        return [r[0] for r in rows] if len(rows) == n else None

    return await eventually(stored)


async def _assignees(db, shop_id: str) -> dict[str, int]:
    rows = await db.fetch(
        """SELECT coalesce(assignee_staff_id, '-') AS who, count(*) AS n FROM conversations
           WHERE shop_id = $1 AND status = 'open' GROUP BY 1""", shop_id)
    return {r["who"]: r["n"] for r in rows}


async def test_balanced_within_capacity_then_the_waiting_one_when_a_place_frees(
    stack, producer, db
):
    shop = await new_shop(producer, db)
    await _setup(stack, shop, "balanced", 1)
    first, second, third = await _new_conversations(producer, db, shop.shop_id, 3)
    await eventually(lambda: _counted(db, shop.shop_id, {"ava": 1, "ben": 1, "-": 1}))
    # Carla has no chat permission: never a candidate (and cannot set herself available).
    async with client(stack, shop, "carla") as carla:
        assert (await carla.put("/me/availability", json={"available": True})).status_code == 403
    waiting = await db.fetchval(
        "SELECT conversation_id::text FROM conversations WHERE shop_id = $1 "
        "AND assignee_staff_id IS NULL", shop.shop_id)
    assert waiting == third  # the newest waits
    assignee = await db.fetchval(
        "SELECT assignee_staff_id FROM conversations WHERE conversation_id = $1::uuid", first)
    # Closing one frees a place: the waiting conversation goes to that staff member at once.
    async with client(stack, shop, assignee) as them:
        closed = await them.post(f"/conversations/{first}/status", json={"status": "closed"})
        assert closed.status_code == 202, closed.text
    await eventually(lambda: db.fetchval(
        "SELECT assignee_staff_id = $2 FROM conversations WHERE conversation_id = $1::uuid",
        third, assignee))
    async with client(stack, shop) as ava:
        timeline = (await ava.get(f"/conversations/{third}")).json()["timeline"]
    [automatic] = [i for i in timeline if i["kind"] == "assigned"]
    assert automatic["author"] == "system" and automatic["data"]["automatic"] is True
    assert second != third


async def _counted(db, shop_id: str, expected: dict[str, int]) -> bool:
    return await _assignees(db, shop_id) == expected


async def test_nobody_available_then_someone_is(stack, producer, db):
    shop = await new_shop(producer, db)
    await _setup(stack, shop, "round_robin", 5, available=())
    await _new_conversations(producer, db, shop.shop_id, 2)
    # Stored, and assignment decided in the same transaction: nobody to give them to.
    assert await _assignees(db, shop.shop_id) == {"-": 2}
    async with client(stack, shop, "ben") as ben:
        assert (await ben.get("/me/availability")).json() == {"available": False}
        await ben.put("/me/availability", json={"available": True})
    await eventually(lambda: _counted(db, shop.shop_id, {"ben": 2}))


async def test_two_routers_never_exceed_a_capacity(stack, producer, db, prepared, workdir):
    shop = await new_shop(producer, db)
    await _setup(stack, shop, "balanced", 3)
    second = ServiceProcess("router", prepared, workdir)
    second.log_path = workdir / "router-2.log"
    second.env.update(stack["router"].env | {"HTTP_PORT": str(second.port)})
    second.start()
    try:
        await second.wait_ready()
        await _new_conversations(producer, db, shop.shop_id, 12)
        await eventually(lambda: _counted(db, shop.shop_id, {"ava": 3, "ben": 3, "-": 6}),
                         timeout=40)
        # Each conversation was given out once.
        twice = await db.fetchval(
            """SELECT count(*) FROM (SELECT conversation_id FROM timeline_items t
                 JOIN conversations c USING (conversation_id)
                 WHERE c.shop_id = $1 AND t.kind = 'assigned'
                 GROUP BY conversation_id HAVING count(*) > 1) x""", shop.shop_id)
        assert twice == 0
    finally:
        second.terminate()


@requires_browser
async def test_the_inbox_switch_and_an_automatic_assignment(browser, stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    await _setup(stack, shop, "balanced", 5, available=())
    inbox = await merchant_page(browser, stack["gateway"].url, shop, "ben")
    switch = inbox.get_by_role("switch", name="Available")
    await expect(switch).not_to_be_checked()
    await switch.check()
    await expect(inbox.locator("#toast")).to_contain_text("You are available")
    await eventually(lambda: db.fetchval(
        "SELECT available FROM staff_availability WHERE shop_id = $1 AND staff_id = 'ben'",
        shop.shop_id))
    [conversation_id] = await _new_conversations(producer, db, shop.shop_id, 1)
    await inbox.goto(f"{stack['gateway'].url}/inbox/#/c/{conversation_id}")
    await expect(inbox.locator("#view")).to_contain_text(
        "Assigned automatically to Ben Okafor", timeout=UI_TIMEOUT_MS)
    await inbox.reload()
    await expect(inbox.get_by_role("switch", name="Available")).to_be_checked(
        timeout=UI_TIMEOUT_MS)
