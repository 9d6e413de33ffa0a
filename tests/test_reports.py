"""Conversation reports against a scripted week whose figures are known: new conversations by
day, staff, channel and topic, staff replies, first response times, orders that followed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from shared.contracts import TopicTag
from shared.topics import CHAT_INBOUND, CLASSIFIER_TAGS
from tests.conftest import eventually
from tests.helpers import chat_message, new_shop, unique
from tests.messenger_support import order_event, publish_order
from tests.test_api_support import client
from tests.test_browser_support import UI_TIMEOUT_MS, expect, merchant_page, requires_browser

BERLIN = ZoneInfo("Europe/Berlin")  # the demo shop's time zone


def at(day: datetime, hour: int) -> datetime:
    return datetime.combine(day, time(hour), BERLIN).astimezone(UTC)


async def test_a_scripted_week(stack, producer, db):
    shop = await new_shop(producer, db)
    today = datetime.now(BERLIN).date()
    days = {n: today - timedelta(days=n) for n in (5, 3, 1)}
    script = {  # conversation: (channel, first message, answered by, topic)
        "c1": ("online_store_chat", at(days[5], 12), None, None),
        "c2": ("email", at(days[3], 12), "ava", None),
        "c3": ("online_store_chat", at(days[3], 14), "ben", "shipping"),
        "c4": ("online_store_chat", at(days[1], 9), "ava", "order_status"),
    }
    ids: dict[str, str] = {}
    for name, (channel, sent_at, _, _) in script.items():
        message = chat_message(shop.shop_id, channel=channel, sent_at=sent_at, text="Hello!",
                               customer={"name": name, "email": f"{name}-{shop.shop_id}@ex.se"},
                               visitor_id=None if channel == "email" else unique("visitor"))
        await producer.send_and_wait(CHAT_INBOUND, message)
        ids[name] = await eventually(lambda m=message: db.fetchval(
            "SELECT conversation_id::text FROM conversations WHERE shop_id = $1 "
            "AND thread_ref = $2", shop.shop_id, m.thread_ref))
    # c1's customer orders two days later (counted); c2's ordered the day before (not).
    await publish_order(producer, order_event(
        shop.shop_id, unique("order"), "#1", "created", at=at(days[5], 12) + timedelta(days=2),
        customer={"email": f"c1-{shop.shop_id}@ex.se"}))
    await publish_order(producer, order_event(
        shop.shop_id, unique("order"), "#2", "created", at=at(days[3], 12) - timedelta(days=1),
        customer={"email": f"c2-{shop.shop_id}@ex.se"}))
    for name, (_, _, staff_id, topic) in script.items():
        if topic:
            await producer.send_and_wait(CLASSIFIER_TAGS, TopicTag(
                event_id=unique("tag"), shop_id=shop.shop_id, conversation_id=ids[name],
                message_id=unique("m"), topic=topic, probability=0.97, model_version="test",
                at=datetime.now(UTC)))
        if staff_id:
            async with client(stack, shop, staff_id) as them:
                assert (await them.post(f"/conversations/{ids[name]}/assign",
                                        json={"staff_id": staff_id})).status_code == 202
                assert (await them.post(f"/conversations/{ids[name]}/replies",
                                        json={"text": "Hi! How can I help?"})).status_code == 202
    await eventually(lambda: db.fetchval(  # and the demo shop's own two orders (Maja's)
        """SELECT count(*) = 2 FROM orders WHERE shop_id = $1 AND order_number LIKE '#_'""",
        shop.shop_id))
    await eventually(lambda: db.fetchval(
        """SELECT count(*) = 3 FROM messages m JOIN conversations c USING (conversation_id)
           WHERE c.shop_id = $1 AND m.author = 'staff'""", shop.shop_id))
    await eventually(lambda: db.fetchval(
        """SELECT count(*) = 2 FROM conversations WHERE shop_id = $1
           AND cardinality(topics) > 0""", shop.shop_id))
    await eventually(lambda: db.fetchval(
        """SELECT count(*) = 3 FROM conversations WHERE shop_id = $1
           AND assignee_staff_id IS NOT NULL""", shop.shop_id))
    replied = {str(r["conversation_id"]): r["sent_at"] for r in await db.fetch(
        """SELECT m.conversation_id, m.sent_at FROM messages m
           JOIN conversations c USING (conversation_id)
           WHERE c.shop_id = $1 AND m.author = 'staff'""", shop.shop_id)}
    waits = sorted((replied[ids[n]] - script[n][1]).total_seconds()
                   for n in ("c2", "c3", "c4"))

    async with client(stack, shop) as ava:
        async def report(group_by: str) -> dict:
            response = await ava.get("/reports/conversations", params={
                "from": str(today - timedelta(days=6)), "to": str(today), "group_by": group_by})
            assert response.status_code == 200, response.text
            return response.json()

        def counts(body: dict, field: str = "new_conversations") -> dict[str, int]:
            return {g["group"]: g[field] for g in body["groups"]}

        by_day = await report("day")
        total = by_day["total"]
        expected_total = {
            "group": "total", "new_conversations": 4, "with_staff_reply": 3,
            "automated_replies": 0, "followed_by_order": 1,
        }
        assert {k: total[k] for k in expected_total} == expected_total
        assert abs(total["first_response_median_seconds"] - np.percentile(waits, 50)) < 1
        assert abs(total["first_response_p90_seconds"] - np.percentile(waits, 90)) < 1
        assert counts(by_day) == {str(days[5]): 1, str(days[3]): 2, str(days[1]): 1}
        assert counts(by_day, "followed_by_order") == {str(days[5]): 1, str(days[3]): 0,
                                                        str(days[1]): 0}
        assert counts(await report("channel")) == {"email": 1, "online_store_chat": 3}
        assert counts(await report("staff")) == {"(unassigned)": 1, "ava": 2, "ben": 1}
        assert counts(await report("topic")) == {"none": 2, "order_status": 1, "shipping": 1}
        by_staff = await report("staff")
        assert counts(by_staff, "with_staff_reply") == {"(unassigned)": 0, "ava": 2, "ben": 1}
        print("scripted week:", {g["group"]: {k: v for k, v in g.items() if k != "group"}
                                  for g in by_day["groups"]}, "total:", total)

        bad = await ava.get("/reports/conversations", params={"from": str(today),
                                                              "to": str(today - timedelta(1))})
        assert bad.status_code == 422 and "after" in bad.json()["detail"]


@requires_browser
async def test_the_inbox_reports_page(browser, stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    for _ in range(2):
        await producer.send_and_wait(CHAT_INBOUND, chat_message(shop.shop_id, text="Hello!"))
    await eventually(lambda: db.fetchval(
        "SELECT count(*) = 2 FROM conversations WHERE shop_id = $1", shop.shop_id))
    inbox = await merchant_page(browser, stack["gateway"].url, shop, "ava")
    await inbox.get_by_role("button", name="Reports").click()
    dialog = inbox.get_by_role("dialog", name="Conversation reports")
    totals = dialog.get_by_label("Totals for the period")
    await expect(totals.locator('[data-figure="new_conversations"]')).to_have_text(
        "2", timeout=UI_TIMEOUT_MS)
    await expect(totals.locator('[data-figure="first_response_median_seconds"]')).to_have_text(
        "\u2013")
    chart = dialog.locator('.report-chart[data-figure="new_conversations"] li')
    await expect(chart).to_have_count(1)  # one day
    await dialog.get_by_label("Group by").select_option("channel")
    await expect(chart).to_have_text([re.compile(r"online store chat\s*2")],
                                     timeout=UI_TIMEOUT_MS)
    width = await chart.locator(".bar").evaluate("b => b.style.width")
    assert width == "100%"
