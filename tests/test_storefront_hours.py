"""Chat hours as the storefront tells them, against the real stack: whether the shop is there
now and when it is back (in the shop's own time zone, across a day change too), and a chat
that starts while nobody is there needs the customer's email address."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.hours import DAYS
from tests.conftest import eventually
from tests.helpers import new_shop, unique
from tests.test_api_support import detail, set_chat_hours
from tests.test_storefront_api import SF, bearer, say, storefront

#: Real zones without daylight saving, one for every whole UTC offset from -11 to +14 (the
#: same-day test picks the one where it is around noon now).
FIXED_ZONES = (
    "Pacific/Pago_Pago", "Pacific/Honolulu", "Pacific/Gambier", "Pacific/Pitcairn",
    "America/Phoenix", "America/Regina", "America/Bogota", "America/Puerto_Rico",
    "America/Argentina/Buenos_Aires", "Atlantic/South_Georgia", "Atlantic/Cape_Verde",
    "Africa/Abidjan", "Africa/Lagos", "Africa/Johannesburg", "Europe/Moscow", "Asia/Dubai",
    "Asia/Tashkent", "Asia/Dhaka", "Asia/Bangkok", "Asia/Singapore", "Asia/Tokyo",
    "Australia/Brisbane", "Pacific/Guadalcanal", "Pacific/Tarawa", "Pacific/Tongatapu",
    "Pacific/Kiritimati",
)


def hours_range(day: datetime, start: str, end: str) -> dict[str, str]:
    return {"day": DAYS[day.weekday()], "from": start, "to": end}


def clock(at: datetime) -> str:
    return at.strftime("%H:%M")


async def shop_info(stack: dict, shop_id: str) -> dict[str, Any]:
    async with storefront(stack) as sf:
        response = await sf.get(f"{SF}/shops/{shop_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def availability(stack: dict, shop_id: str) -> tuple[bool, str | None]:
    info = await shop_info(stack, shop_id)
    return info["available"], info["next_available_at"]


async def test_always_available_without_hours_or_set_to_always(stack, producer, db):
    shop = await new_shop(producer, db, timezone="Asia/Tokyo")
    info = await shop_info(stack, shop.shop_id)
    assert (info["available"], info["next_available_at"], info["time_zone"]) == (
        True, None, "Asia/Tokyo")
    await set_chat_hours(stack, shop, "always")
    assert await availability(stack, shop.shop_id) == (True, None)


async def test_open_now_and_never_open(stack, producer, db):
    zone = ZoneInfo("Europe/Berlin")
    shop = await new_shop(producer, db)
    today = datetime.now(zone)
    # Today and tomorrow all day: open now, even if the test runs across midnight.
    await set_chat_hours(stack, shop, "hours", [
        hours_range(today, "00:00", "24:00"),
        hours_range(today + timedelta(days=1), "00:00", "24:00")])
    assert await availability(stack, shop.shop_id) == (True, None)
    # Hours with no opening at all: away, with nothing to say about when it is back.
    await set_chat_hours(stack, shop, "hours", [])
    assert await availability(stack, shop.shop_id) == (False, None)


async def test_closed_now_back_later_the_same_local_day(stack, producer, db):
    # Where it is about noon now, so that an opening two hours on is still today there.
    now = datetime.now(UTC)

    def from_noon(name: str) -> float:
        there = now.astimezone(ZoneInfo(name))
        return abs(there.hour + there.minute / 60 - 12)

    zone = min(FIXED_ZONES, key=from_noon)
    shop = await new_shop(producer, db, timezone=zone)
    local = now.astimezone(ZoneInfo(zone))
    earlier, opening = local - timedelta(hours=2), local + timedelta(hours=2)
    assert earlier.date() == opening.date() == local.date()
    await set_chat_hours(stack, shop, "hours", [
        hours_range(local, "00:00", clock(earlier)),  # over for today
        hours_range(local, clock(opening), clock(opening + timedelta(hours=1))),
        hours_range(local + timedelta(days=2), "08:00", "12:00"),
    ])
    expected = opening.replace(second=0, microsecond=0)
    info = await shop_info(stack, shop.shop_id)
    assert (info["available"], info["time_zone"]) == (False, zone)
    assert info["next_available_at"] == expected.isoformat()
    assert datetime.fromisoformat(info["next_available_at"]) == expected


async def test_back_on_the_shops_next_day_while_utc_is_on_another_date(stack, producer, db):
    # Kiritimati is UTC+14: its 09:00 is 19:00 UTC of the day before. Pago Pago is UTC-11: its
    # 20:00 is 07:00 UTC of the day after. Each opens only on its own next day (whatever the
    # hour now), so the answer names the shop's date and offset, not UTC's.
    for zone, opens, offset, utc_day in (("Pacific/Kiritimati", "09:00", "+14:00", -1),
                                         ("Pacific/Pago_Pago", "20:00", "-11:00", 1)):
        shop = await new_shop(producer, db, timezone=zone)
        tomorrow = datetime.now(ZoneInfo(zone)) + timedelta(days=1)
        await set_chat_hours(stack, shop, "hours", [hours_range(tomorrow, opens, "23:00")])
        expected = f"{tomorrow.date().isoformat()}T{opens}:00{offset}"
        assert await availability(stack, shop.shop_id) == (False, expected), zone
        assert datetime.fromisoformat(expected).astimezone(UTC).date() == (
            tomorrow.date() + timedelta(days=utc_day))


async def test_hours_changed_by_the_merchant_show_at_once(stack, producer, db):
    shop = await new_shop(producer, db)
    assert await availability(stack, shop.shop_id) == (True, None)  # the shop is cached now
    await set_chat_hours(stack, shop, "hours", [])

    async def away() -> bool:
        return await availability(stack, shop.shop_id) == (False, None)

    await eventually(away, timeout=3)


async def test_a_chat_outside_hours_needs_an_email_address(stack, producer, db):
    shop = await new_shop(producer, db, timezone="Pacific/Kiritimati")
    chats = f"{SF}/shops/{shop.shop_id}/chats"
    tomorrow = datetime.now(ZoneInfo("Pacific/Kiritimati")) + timedelta(days=1)
    async with storefront(stack) as sf:
        # In hours (none set: always) the email is optional; this chat starts without one.
        early = await sf.post(chats, json={"visitor_id": unique("visitor"), "name": "Early"})
        assert early.status_code == 201, early.text

        await set_chat_hours(stack, shop, "hours", [hours_range(tomorrow, "09:00", "17:00")])
        visitor = unique("visitor")
        refused = await sf.post(chats, json={"visitor_id": visitor, "name": "Tui"})
        assert refused.status_code == 422
        assert detail(refused).startswith("email: the shop is away right now")
        assert "email address" in detail(refused)
        email = f"{unique('tui')}@example.ki"
        started = await sf.post(chats, json={"visitor_id": visitor, "name": "Tui",
                                             "email": email})
        assert started.status_code == 201, started.text
        assert started.json()["customer"]["email"] == email
        await say(sf, started.json(), "Are you open on Sunday?")

        # The chat started in hours goes on without an email, away or not.
        session = early.json()
        await say(sf, session, "Still there?")
        thread = await eventually(lambda: _thread_started(sf, session))
        assert [m["text"] for m in thread["messages"] if m["author"] == "customer"] == [
            "Still there?"]

        # Back in hours, the email is optional again.
        await set_chat_hours(stack, shop, "always")
        again = await sf.post(chats, json={"visitor_id": unique("visitor"), "name": "Later"})
        assert again.status_code == 201, again.text
    await eventually(lambda: db.fetchval(
        "SELECT 1 FROM conversations WHERE shop_id = $1 AND customer_email = $2",
        shop.shop_id, email))
    # Nothing refused reached the backbone (the two chats that wrote are all there is).
    await asyncio.sleep(0.5)
    assert await db.fetchval(
        "SELECT count(*) FROM conversations WHERE shop_id = $1", shop.shop_id) == 2


async def _thread_started(sf: Any, session: dict) -> dict | None:
    response = await sf.get(f"{SF}/chat", headers=bearer(session))
    body = response.json()
    return body if body["started"] and body["messages"] else None
