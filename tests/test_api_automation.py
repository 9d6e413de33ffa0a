"""Chat hours, the away message and instant answers through the merchant API: defaults, kept
per shop as sent (ranges normalised), refused with the reason, changed only with the messaging
permission, and whether the shop is staffed now computed in its own time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.db.automation import shop_hours
from shared.hours import DAYS, DEFAULT_AWAY_MESSAGE
from shared.rules import MESSAGE_TOPICS, PLACEHOLDERS
from tests.helpers import new_shop
from tests.test_api_support import client, detail

BERLIN = ZoneInfo("Europe/Berlin")  # the demo shop's time zone


def _day(offset: int) -> tuple[str, datetime]:
    """The shop's weekday `offset` days from today, and that day's local midnight."""
    today = datetime.now(BERLIN).date() + timedelta(days=offset)
    return DAYS[today.weekday()], datetime.combine(today, datetime.min.time(), BERLIN)


async def test_a_new_shop_is_always_available_and_answers_nothing(stack, producer, db):
    shop = await new_shop(producer, db)
    async with client(stack, shop, "carla") as api:  # reading needs no permission
        response = await api.get("/settings/availability")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "mode": "always", "hours": [], "away_message": DEFAULT_AWAY_MESSAGE,
            "time_zone": "Europe/Berlin", "available": True, "next_available_at": None,
        }
        response = await api.get("/settings/instant-answers")
        assert response.status_code == 200, response.text
        assert response.json()["items"] == [
            {"topic": topic, "name": name, "enabled": False, "text": ""}
            for topic, name in MESSAGE_TOPICS.items()
        ]


async def test_chat_hours_round_trip_normalised(stack, producer, db):
    shop = await new_shop(producer, db)
    other = await new_shop(producer, db)
    async with client(stack, shop) as api:
        response = await api.put("/settings/availability", json={
            "mode": "hours",
            "hours": [  # unsorted, a split day and a night shift across midnight
                {"day": "sat", "from": "00:00", "to": "02:00"},
                {"day": "mon", "from": "13:30", "to": "17:30"},
                {"day": "fri", "from": "22:00", "to": "24:00"},
                {"day": "mon", "from": "09:00", "to": "12:00"},
            ],
            "away_message": "  Back on Monday at nine!  ",
        })
        assert response.status_code == 200, response.text
        hours = [
            {"day": "mon", "from": "09:00", "to": "12:00"},
            {"day": "mon", "from": "13:30", "to": "17:30"},
            {"day": "fri", "from": "22:00", "to": "24:00"},
            {"day": "sat", "from": "00:00", "to": "02:00"},
        ]
        answered = response.json()
        assert {k: answered[k] for k in ("mode", "hours", "away_message", "time_zone")} == {
            "mode": "hours", "hours": hours, "away_message": "Back on Monday at nine!",
            "time_zone": "Europe/Berlin",
        }
        again = (await api.get("/settings/availability")).json()
        assert {k: again[k] for k in ("mode", "hours", "away_message")} == {
            "mode": "hours", "hours": hours, "away_message": "Back on Monday at nine!"}

        # Always available again: the schedule is kept for the next time.
        response = await api.put("/settings/availability", json={"mode": "always",
                                                                  "hours": hours})
        assert response.status_code == 200, response.text
        assert response.json()["hours"] == hours
        assert response.json()["available"] is True
        assert response.json()["away_message"] == DEFAULT_AWAY_MESSAGE

    # What the router reads is what was saved.
    saved = (await shop_hours(db, {shop.shop_id}))[shop.shop_id]
    assert saved.hours.mode == "always"
    assert [r.as_dict() for r in saved.hours.ranges] == hours

    # Another shop's staff see their own shop's defaults, nothing of this one.
    async with client(stack, other) as theirs:
        assert (await theirs.get("/settings/availability")).json()["hours"] == []


async def test_available_and_next_available_at_are_computed_in_the_shops_zone(
        stack, producer, db):
    shop = await new_shop(producer, db)
    async with client(stack, shop) as api:
        # Open all of today (the shop's today): available, nothing to wait for.
        today, _ = _day(0)
        response = await api.put("/settings/availability", json={
            "mode": "hours", "hours": [{"day": today, "from": "00:00", "to": "24:00"}]})
        assert response.status_code == 200, response.text
        assert (response.json()["available"], response.json()["next_available_at"]) == (
            True, None)

        # Open only three days on, 09:00-10:00: away now, back then, with Berlin's offset.
        later, midnight = _day(3)
        response = await api.put("/settings/availability", json={
            "mode": "hours", "hours": [{"day": later, "from": "09:00", "to": "10:00"}]})
        body = response.json()
        assert body["available"] is False
        opening = midnight.replace(hour=9)
        assert body["next_available_at"] == opening.isoformat()
        assert datetime.fromisoformat(body["next_available_at"]).utcoffset() == \
            opening.utcoffset()
        assert (await api.get("/settings/availability")).json() == body

        # Set hours, but none: away all week, with no opening to announce.
        response = await api.put("/settings/availability", json={"mode": "hours", "hours": []})
        assert (response.json()["available"], response.json()["next_available_at"]) == (
            False, None)


async def test_chat_hours_refused_with_the_reason(stack, producer, db):
    shop = await new_shop(producer, db)
    good = {"day": "mon", "from": "09:00", "to": "17:00"}
    async with client(stack, shop) as api:
        for hours, reason in [
            ([{"day": "monday", "from": "09:00", "to": "17:00"}],
             "hours[0].day: 'monday' is not one of mon, tue, wed, thu, fri, sat, sun"),
            ([good, {"day": "tue", "from": "9:00", "to": "17:00"}],
             "hours[1].from: '9:00' is not a time of day like 09:00"),
            ([{"day": "mon", "from": "09:00", "to": "24:30"}],
             "hours[0].to: '24:30' is after 24:00"),
            ([{"day": "mon", "from": "17:00", "to": "09:00"}],
             "hours[0]: mon 17:00-09:00 ends before it starts"),
            ([{"day": "mon", "from": "10:00", "to": "10:00"}],
             "hours[0]: mon 10:00-10:00 ends before it starts"),
            ([good, {"day": "mon", "from": "16:00", "to": "18:00"}],
             "hours: mon 09:00-17:00 overlaps 16:00-18:00"),
        ]:
            response = await api.put("/settings/availability",
                                     json={"mode": "hours", "hours": hours})
            assert response.status_code == 422, (hours, response.text)
            assert detail(response).startswith(reason), (reason, detail(response))

        for body, field in [
            ({"mode": "hours", "hours": [good], "away_message": "   "}, "away_message"),
            ({"mode": "hours", "hours": [good], "away_message": "x" * 1001}, "away_message"),
            ({"mode": "sometimes"}, "mode"),
            ({"hours": [good]}, "mode"),
            ({"mode": "always", "holidays": []}, "holidays"),
            ({"mode": "hours", "hours": [{**good, "note": "x"}]}, "hours.0.note"),
            ({"mode": "hours", "hours": [{"day": "mon", "from": 9, "to": "17:00"}]},
             "hours.0.from"),
        ]:
            response = await api.put("/settings/availability", json=body)
            assert response.status_code == 422, (body, response.text)
            assert field in detail(response), (body, detail(response))

        # Nothing refused was saved.
        assert (await api.get("/settings/availability")).json()["mode"] == "always"
        assert await db.fetchval("SELECT count(*) FROM chat_hours WHERE shop_id = $1",
                                 shop.shop_id) == 0


async def test_instant_answers_round_trip_and_refusals(stack, producer, db):
    shop = await new_shop(producer, db)
    other = await new_shop(producer, db)
    async with client(stack, shop) as api:
        text = "  Hi {{ customer_first_name }}! We ship within 2 days from {{shop_name}}.  "
        response = await api.put("/settings/instant-answers/shipping",
                                 json={"enabled": True, "text": text})
        assert response.status_code == 200, response.text
        assert response.json() == {"topic": "shipping", "name": "Shipping", "enabled": True,
                                   "text": text.strip()}
        # Written but off, for later.
        response = await api.put("/settings/instant-answers/returns",
                                 json={"enabled": False, "text": "Returns are free."})
        assert response.status_code == 200, response.text
        # Turned off with no text.
        response = await api.put("/settings/instant-answers/checkout",
                                 json={"enabled": False, "text": ""})
        assert response.status_code == 200, response.text

        items = {i["topic"]: i for i in (await api.get("/settings/instant-answers")).json()[
            "items"]}
        assert list(items) == list(MESSAGE_TOPICS)
        assert (items["shipping"]["enabled"], items["shipping"]["text"]) == (True, text.strip())
        assert (items["returns"]["enabled"], items["returns"]["text"]) == (
            False, "Returns are free.")
        assert [t for t, i in items.items() if i["enabled"]] == ["shipping"]

        unknown = await api.put("/settings/instant-answers/shipping", json={
            "enabled": True, "text": "Track it at {{ tracking_url }}, {{ coupon }}"})
        assert unknown.status_code == 422
        assert detail(unknown).startswith("unknown placeholders: coupon, tracking_url")
        assert all(p in detail(unknown) for p in PLACEHOLDERS)
        empty = await api.put("/settings/instant-answers/shipping",
                              json={"enabled": True, "text": "   "})
        assert empty.status_code == 422
        assert detail(empty) == "an instant answer that is on needs a text"
        for body, field in [({"enabled": True, "text": "x" * 2001}, "text"),
                            ({"enabled": True}, "text"),
                            ({"text": "x"}, "enabled"),
                            ({"enabled": True, "text": "x", "topic": "returns"}, "topic")]:
            response = await api.put("/settings/instant-answers/shipping", json=body)
            assert response.status_code == 422, (body, response.text)
            assert field in detail(response), (body, detail(response))
        missing = await api.put("/settings/instant-answers/delivery",
                                json={"enabled": True, "text": "x"})
        assert missing.status_code == 404
        assert detail(missing).startswith("no topic 'delivery' (topics: checkout,")
        # Still as saved before the refusals.
        items = {i["topic"]: i for i in (await api.get("/settings/instant-answers")).json()[
            "items"]}
        assert (items["shipping"]["enabled"], items["shipping"]["text"]) == (True, text.strip())

    async with client(stack, other) as theirs:
        assert not any(i["enabled"] or i["text"] for i in
                       (await theirs.get("/settings/instant-answers")).json()["items"])


async def test_changing_needs_the_messaging_permission(stack, producer, db):
    shop = await new_shop(producer, db)
    for staff_id in ("ben", "carla"):  # the chat permission alone is not enough
        async with client(stack, shop, staff_id) as api:
            response = await api.put("/settings/availability", json={"mode": "hours"})
            assert response.status_code == 403, response.text
            assert detail(response) == "changing chat hours needs the messaging permission"
            response = await api.put("/settings/instant-answers/shipping",
                                     json={"enabled": True, "text": "We ship."})
            assert response.status_code == 403, response.text
            assert detail(response) == "changing instant answers needs the messaging permission"
            # They read them all the same.
            assert (await api.get("/settings/availability")).status_code == 200
            assert (await api.get("/settings/instant-answers")).status_code == 200
    assert await db.fetchval(
        """SELECT (SELECT count(*) FROM chat_hours WHERE shop_id = $1)
                + (SELECT count(*) FROM instant_answers WHERE shop_id = $1)""",
        shop.shop_id) == 0
    async with client(stack) as anonymous:
        assert (await anonymous.get("/settings/availability")).status_code == 401
        assert (await anonymous.put("/settings/instant-answers/shipping",
                                    json={"enabled": False, "text": ""})).status_code == 401
