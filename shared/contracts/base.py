"""Building blocks shared by every event contract."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from shared.channels import CHANNELS
from shared.locales import is_language_tag, is_time_zone
from shared.storable import value_problem

#: How far in the future a producer's clock may be before an event is refused.
MAX_CLOCK_SKEW = timedelta(minutes=5)
#: Events older than this are refused as ancient (a replayed archive, a broken clock).
MAX_EVENT_AGE = timedelta(days=365)
#: Amounts are stored as numeric(14,2): at most 12 digits before the decimal point.
MAX_AMOUNT = Decimal("1e12")


def error_sentence(
    errors: Sequence[Mapping[str, Any]],
    *,
    where: Callable[[list[str]], str] = ".".join,
    unlocated: str = "",
    limit: int | None = None,
    keep_prefix: bool = False,
) -> str:
    """Validation errors (pydantic's or FastAPI's `errors()`) as one readable sentence.

    Each error reads "where: message", or only the message when it has no place (`where` of its
    `loc`, else `unlocated`); at most `limit` of them, joined by "; ".
    """
    parts = []
    for error in errors[:limit]:
        message = str(error.get("msg", "invalid"))
        if not keep_prefix:  # pydantic's wrapping of a validator's ValueError says nothing
            message = message.removeprefix("Value error, ")
        place = where([str(p) for p in error.get("loc", ())]) or unlocated
        parts.append(f"{place}: {message}" if place else message)
    return "; ".join(parts)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _recent(value: datetime) -> datetime:
    now = datetime.now(UTC)
    if value > now + MAX_CLOCK_SKEW:
        raise ValueError(f"timestamp {value.isoformat()} is in the future")
    if value < now - MAX_EVENT_AGE:
        raise ValueError(f"timestamp {value.isoformat()} is too old")
    return value


def _known_channel(value: str) -> str:
    if value not in CHANNELS:
        raise ValueError(f"unknown channel {value!r} (known: {', '.join(sorted(CHANNELS))})")
    return value


_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?")


def _decimal_string(value: str) -> str:
    # Plain digits only: what every store reads alike (no exponent, sign, spaces, underscores).
    if not _DECIMAL.fullmatch(value):
        raise ValueError(f"{value!r} is not a decimal amount (digits, optionally a point)")
    if Decimal(value) >= MAX_AMOUNT:
        raise ValueError(f"{value!r} is too large an amount (below {MAX_AMOUNT:,.0f})")
    return value


def _time_zone(value: str) -> str:
    if not is_time_zone(value):
        raise ValueError(f"{value[:64]!r} is not an IANA time zone name (like Europe/Zurich)")
    return value


def _language_tag(value: str) -> str:
    if not is_language_tag(value):
        raise ValueError(f"{value[:64]!r} is not a BCP 47 language tag (like de-CH)")
    return value


#: RFC 3339 time with an offset, normalised to UTC.
UtcTime = Annotated[AwareDatetime, AfterValidator(_utc)]
#: A time an external producer stamped: also refused when in the future or ancient.
EventTime = Annotated[AwareDatetime, AfterValidator(_utc), AfterValidator(_recent)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
ShopId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
ChannelKey = Annotated[str, AfterValidator(_known_channel)]
Amount = Annotated[str, StringConstraints(max_length=32), AfterValidator(_decimal_string)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
ShortText = Annotated[str, StringConstraints(max_length=500)]
#: A time zone as the tz database names it (checked against its list, never read as a path).
TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_time_zone)]
#: A language as a browser reports it (`navigator.language`), a valid BCP 47 tag.
LanguageTag = Annotated[str, StringConstraints(max_length=35), AfterValidator(_language_tag)]
#: A discount code as a shop names it (Shopify's codes: case-insensitive, at most 255).
DiscountCode = Annotated[str, StringConstraints(min_length=1, max_length=255)]
MessageText = Annotated[str, StringConstraints(max_length=20_000)]


class Contract(BaseModel):
    """Base of every event: strict about shape, tolerant of fields added later."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_max_length=100_000)

    @model_validator(mode="after")
    def _storable(self) -> Self:
        # Refused here, where it is clear, rather than by the database after retries.
        for name, value in self.__dict__.items():
            problem = value_problem(value)
            if problem:
                raise ValueError(f"{name}: {problem}")
        return self


class Event(Contract):
    event_id: Id


Email = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class CustomerInfo(Contract):
    email: Email | None = None
    name: ShortText | None = None
    customer_id: Id | None = None
    locale: Annotated[str, StringConstraints(max_length=35)] | None = None
    city: ShortText | None = None
    country: Annotated[str, StringConstraints(max_length=64)] | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = None


class Money(Contract):
    amount: Amount
    currency: Currency


def limited_list(max_items: int):
    return Field(default_factory=list, max_length=max_items)
