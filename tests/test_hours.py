"""Chat hours as plain rules: what a shop may set, whether it is open at an instant, when it opens
next (in its own time zone, across days, weeks and daylight-saving changes), and the name of
each closed period (one away message per name)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from shared.hours import (
    ChatHours,
    HoursError,
    OpenRange,
    closed_period,
    is_open,
    next_opening,
    parse_ranges,
)

WEEKDAYS_9_TO_1730 = [{"day": d, "from": "09:00", "to": "17:30"}
                      for d in ("mon", "tue", "wed", "thu", "fri")]

NIGHT_SHIFT = [{"day": "fri", "from": "22:00", "to": "24:00"},
               {"day": "sat", "from": "00:00", "to": "02:00"}]


def hours(ranges: list[dict[str, str]], zone: str = "Europe/Berlin") -> ChatHours:
    return ChatHours("hours", parse_ranges(ranges), zone)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("items", "message"), [
    ([{"day": "monday", "from": "09:00", "to": "17:00"}], "hours[0].day: 'monday' is not one of"),
    ([{"day": "mon", "from": "9:00", "to": "17:00"}], "hours[0].from: '9:00' is not a time"),
    ([{"day": "mon", "from": "09:00", "to": "24:30"}], "hours[0].to: '24:30' is after 24:00"),
    ([{"day": "mon", "from": "24:00", "to": "24:00"}], "hours[0].from: a range starts before"),
    ([{"day": "mon", "from": "17:00", "to": "09:00"}], "ends before it starts"),
    ([{"day": "mon", "from": "09:00", "to": "09:00"}], "ends before it starts"),
    ([{"day": "mon", "from": "09:00"}], "hours[0].to: None is not a time"),
    ([{"day": "mon", "from": "09:00", "to": "12:00"},
      {"day": "mon", "from": "11:00", "to": "13:00"}],
     "hours: mon 09:00-12:00 overlaps 11:00-13:00"),
    ([{"day": "mon", "from": "00:00", "to": "00:10"}] * 51, "hours: at most 50 ranges"),
])
def test_hours_that_are_not_a_schedule_are_refused_with_the_reason(items, message):
    with pytest.raises(HoursError, match=re.escape(message)):
        parse_ranges(items)


def test_ranges_are_sorted_and_may_meet():
    ranges = parse_ranges([{"day": "tue", "from": "13:00", "to": "24:00"},
                           {"day": "mon", "from": "09:00", "to": "12:00"},
                           {"day": "mon", "from": "12:00", "to": "17:00"}])
    assert ranges == (OpenRange(0, 540, 720), OpenRange(0, 720, 1020), OpenRange(1, 780, 1440))
    assert ranges[2].as_dict() == {"day": "tue", "from": "13:00", "to": "24:00"}


# Friday 2026-12-04; Berlin is UTC+1 in winter, UTC+2 in summer.
@pytest.mark.parametrize(("ranges", "zone", "at", "open_", "opening"), [
    # In a range, at its first minute, at its end (closed).
    (WEEKDAYS_9_TO_1730, "Europe/Berlin", "2026-12-04 12:00", True, None),
    (WEEKDAYS_9_TO_1730, "Europe/Berlin", "2026-12-04 08:00", True, None),  # 09:00 local
    (WEEKDAYS_9_TO_1730, "Europe/Berlin", "2026-12-04 16:30", False, "2026-12-07T09:00:00+01:00"),
    # Friday evening: back on Monday; early Friday: back the same morning.
    (WEEKDAYS_9_TO_1730, "Europe/Berlin", "2026-12-04 20:00", False, "2026-12-07T09:00:00+01:00"),
    (WEEKDAYS_9_TO_1730, "Europe/Berlin", "2026-12-04 05:00", False, "2026-12-04T09:00:00+01:00"),
    # The shop's day is not UTC's: 23:30 UTC Thursday is already Friday 10:30 in Kiritimati
    # (UTC+14), open; 04:00 UTC Friday is Friday 18:00 there, closed until Monday.
    (WEEKDAYS_9_TO_1730, "Pacific/Kiritimati", "2026-12-03 23:30", True, None),
    (WEEKDAYS_9_TO_1730, "Pacific/Kiritimati", "2026-12-04 04:00", False,
     "2026-12-07T09:00:00+14:00"),
    # ... and in Pago Pago (UTC-11) 05:00 UTC Saturday is still Friday 18:00: back on Monday.
    (WEEKDAYS_9_TO_1730, "Pacific/Pago_Pago", "2026-12-05 05:00", False,
     "2026-12-07T09:00:00-11:00"),
    # Only Friday: just after closing, the next opening is a week on.
    ([{"day": "fri", "from": "09:00", "to": "10:00"}], "Europe/Berlin", "2026-12-04 09:00", False,
     "2026-12-11T09:00:00+01:00"),
    # A night shift in two ranges: open across midnight, closed after.
    (NIGHT_SHIFT, "Europe/Berlin", "2026-12-04 23:30", True, None),
    (NIGHT_SHIFT, "Europe/Berlin", "2026-12-05 01:00", False, "2026-12-11T22:00:00+01:00"),
    # Across the change to summer time (Sunday 2026-03-29): Monday 09:00 is 07:00 UTC.
    (WEEKDAYS_9_TO_1730, "Europe/Berlin", "2026-03-27 20:00", False, "2026-03-30T09:00:00+02:00"),
    # No range at all: closed, never opens.
    ([], "Europe/Berlin", "2026-12-04 12:00", False, None),
])
def test_open_now_and_the_next_opening_in_the_shops_time_zone(ranges, zone, at, open_, opening):
    schedule = hours(ranges, zone)
    assert is_open(schedule, utc(at)) is open_
    found = next_opening(schedule, utc(at))
    assert (found.isoformat() if found else None) == opening


def test_always_is_always_open():
    always = ChatHours("always", (), "Europe/Berlin")
    assert is_open(always, utc("2026-12-06 03:00"))
    assert next_opening(always, utc("2026-12-06 03:00")) is None
    assert closed_period(always, utc("2026-12-06 03:00")) is None


def test_each_closed_period_has_one_name():
    schedule = hours(WEEKDAYS_9_TO_1730)
    friday_evening = closed_period(schedule, utc("2026-12-04 20:00"))
    # The whole weekend is one closed period; Monday evening is the next one.
    assert friday_evening == closed_period(schedule, utc("2026-12-06 23:00"))
    assert friday_evening == "until:2026-12-07T08:00:00+00:00"
    assert closed_period(schedule, utc("2026-12-07 20:00")) == "until:2026-12-08T08:00:00+00:00"
    assert closed_period(schedule, utc("2026-12-07 10:00")) is None  # open
    assert closed_period(hours([]), utc("2026-12-07 10:00")) == "until:never"
