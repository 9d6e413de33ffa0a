"""A shop's chat hours: weekly opening ranges in the shop's own time zone, or always open.

Plain functions, no I/O. Used by the gateway (the storefront says whether the shop is there
and when it is back; the merchant API checks what a shop sets) and by the router (a customer
message outside hours gets the away message once per closed period).

A range is a day and two wall-clock times, `to` after `from` ("24:00" ends the day); a night
shift is two ranges, "fri 22:00-24:00" and "sat 00:00-02:00", which meet without a gap.
Times are the shop's wall clock: across a daylight-saving change, "09:00" stays 09:00 local.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
#: Enough for split shifts; a longer list is a mistake, not a schedule.
MAX_RANGES = 50
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")

Mode = Literal["always", "hours"]


class HoursError(ValueError):
    """Hours that cannot be a schedule; the message says which range and why."""


@dataclass(frozen=True, order=True)
class OpenRange:
    day: int  # 0 = Monday, as datetime.weekday()
    start: int  # minutes after local midnight
    end: int  # minutes after local midnight, 1..1440

    def as_dict(self) -> dict[str, str]:
        return {"day": DAYS[self.day], "from": _clock(self.start), "to": _clock(self.end)}


@dataclass(frozen=True)
class ChatHours:
    mode: Mode
    ranges: tuple[OpenRange, ...]
    time_zone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


ALWAYS_UTC = ChatHours("always", (), "UTC")


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(value: Any, where: str) -> int:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise HoursError(f"{where}: {value!r} is not a time of day like 09:00")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > MINUTES_PER_DAY:
        raise HoursError(f"{where}: {value!r} is after 24:00")
    return minutes


def parse_ranges(items: Iterable[Mapping[str, Any]]) -> tuple[OpenRange, ...]:
    """Opening ranges from `{"day", "from", "to"}` items, sorted; HoursError says what is wrong
    (an unknown day, a time that is not HH:MM, an empty range, two ranges that overlap)."""
    ranges = []
    for index, item in enumerate(items):
        where = f"hours[{index}]"
        day = item.get("day")
        if day not in DAYS:
            raise HoursError(f"{where}.day: {day!r} is not one of {', '.join(DAYS)}")
        start = _minutes(item.get("from"), f"{where}.from")
        end = _minutes(item.get("to"), f"{where}.to")
        if start >= MINUTES_PER_DAY:
            raise HoursError(f"{where}.from: a range starts before 24:00")
        if end <= start:
            raise HoursError(f"{where}: {day} {_clock(start)}-{_clock(end)} ends before it "
                             "starts (a night shift is two ranges: one to 24:00, one from "
                             "00:00 the next day)")
        ranges.append(OpenRange(DAYS.index(day), start, end))
    if len(ranges) > MAX_RANGES:
        raise HoursError(f"hours: at most {MAX_RANGES} ranges")
    ranges.sort()
    for before, after in pairwise(ranges):
        if before.day == after.day and after.start < before.end:
            raise HoursError(
                f"hours: {DAYS[before.day]} {_clock(before.start)}-{_clock(before.end)} "
                f"overlaps {_clock(after.start)}-{_clock(after.end)}")
    return tuple(ranges)


def _local_instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The instant a wall-clock time of `day` happens in `zone` (24:00 is the next midnight).
    A wall time a daylight-saving change skips is read with the offset before the change."""
    return (datetime.combine(day, time()) + timedelta(minutes=minutes)).replace(tzinfo=zone)


def is_open(hours: ChatHours, at: datetime) -> bool:
    """Whether the shop's chat is staffed at the instant `at` (timezone-aware)."""
    if hours.mode == "always":
        return True
    local = at.astimezone(hours.zone)
    minute = local.hour * 60 + local.minute + local.second / 60
    weekday = local.weekday()
    return any(r.day == weekday and r.start <= minute < r.end for r in hours.ranges)


def next_opening(hours: ChatHours, at: datetime) -> datetime | None:
    """When the chat is next staffed after `at`, in the shop's time zone: None while it is open,
    and None when it never opens (mode "hours" with no ranges)."""
    if is_open(hours, at) or not hours.ranges:
        return None
    zone = hours.zone
    today = at.astimezone(zone).date()
    # Eight days cover the same weekday a week on, whatever time of day `at` is.
    starts = (
        _local_instant(today + timedelta(days=offset), r.start, zone)
        for offset in range(8)
        for r in hours.ranges
        if r.day == (today + timedelta(days=offset)).weekday()
    )
    return min((s for s in starts if s > at), default=None)


@dataclass(frozen=True)
class Availability:
    """What a customer and a merchant are told: staffed now, and if not, when again."""

    available: bool
    #: The next opening in the shop's time zone; None while available, or when it never opens.
    next_available_at: datetime | None
    time_zone: str


def availability_at(hours: ChatHours, at: datetime) -> Availability:
    return Availability(is_open(hours, at), next_opening(hours, at), hours.time_zone)


def closed_period(hours: ChatHours, at: datetime) -> str | None:
    """A name for the closed period `at` falls in (the same for every instant of it, different
    for the next one), or None while the chat is open. The away message goes once per name."""
    if is_open(hours, at):
        return None
    opening = next_opening(hours, at)
    if opening is None:
        return "until:never"
    return "until:" + opening.astimezone(ZoneInfo("UTC")).isoformat()


#: What a shop that set hours but wrote no away message says.
DEFAULT_AWAY_MESSAGE = ("Thanks for your message! We're away right now; we'll answer as soon "
                        "as we're back.")
