"""When nobody is there: the shop's chat hours and away message, and its instant answers per
topic. Shop configuration, saved by the gateway straight into PostgreSQL; the router reads it
when a customer writes (`shared/db/automation.py`), the storefront when it shows the chat."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.gateway import automation_queries as aq
from services.gateway.api.common import Staff, check_placeholders, errors, pool
from shared.db.automation import ShopHours, shop_hours
from shared.hours import (
    DAYS,
    DEFAULT_AWAY_MESSAGE,
    MAX_RANGES,
    HoursError,
    availability_at,
    parse_ranges,
)
from shared.rules import MESSAGE_TOPICS, MESSAGING_PERMISSION, PLACEHOLDERS

router = APIRouter(tags=["automation"])

MAX_AWAY_MESSAGE = 1000
MAX_INSTANT_ANSWER = 2000
_PLACEHOLDER_HELP = "Placeholders: " + ", ".join(f"`{{{{ {p} }}}}`" for p in PLACEHOLDERS) + "."

AwayMessage = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                               max_length=MAX_AWAY_MESSAGE)]
AnswerText = Annotated[str, StringConstraints(strip_whitespace=True,
                                              max_length=MAX_INSTANT_ANSWER)]


class OpeningRange(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    day: str = Field(description=", ".join(DAYS), examples=["mon"])
    start: str = Field(alias="from", description="HH:MM on the shop's wall clock",
                       examples=["09:00"])
    to: str = Field(description="HH:MM after `from`; 24:00 ends the day", examples=["17:30"])


class ChatHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["always", "hours"] = Field(description=(
        "always: staffed at any time; hours: only within `hours` (none: away all week)"))
    hours: list[OpeningRange] = Field(
        default_factory=list, max_length=MAX_RANGES,
        description=("weekly opening ranges in the shop's time zone, several a day allowed, "
                     "no overlaps; kept while the mode is `always`"))
    away_message: AwayMessage = Field(
        DEFAULT_AWAY_MESSAGE,
        description="sent once per closed period to a customer who writes outside the hours")


class ChatHoursOut(BaseModel):
    mode: Literal["always", "hours"]
    hours: list[OpeningRange] = Field(description="sorted by day and time")
    away_message: str
    time_zone: str = Field(description="the shop's time zone, which the hours are in")
    available: bool = Field(description="staffed now, by these settings")
    next_available_at: datetime | None = Field(description=(
        "when the chat is next staffed, with the shop's UTC offset; null while available, or "
        "when no hours are set"))


class InstantAnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(description="answer this topic's messages automatically")
    text: AnswerText = Field(description=_PLACEHOLDER_HELP,
                             examples=["We ship to all of Europe within 3-5 working days."])


class InstantAnswer(BaseModel):
    topic: str = Field(examples=["shipping"])
    name: str = Field(examples=["Shipping"])
    enabled: bool
    text: str


class InstantAnswerList(BaseModel):
    items: list[InstantAnswer] = Field(description="every topic, in the classifier's order")


def _chat_hours_out(saved: ShopHours, now: datetime) -> ChatHoursOut:
    hours = saved.hours
    staffed = availability_at(hours, now)
    return ChatHoursOut(
        mode=hours.mode,
        hours=[OpeningRange(**r.as_dict()) for r in hours.ranges],
        away_message=saved.away_message,
        time_zone=staffed.time_zone,
        available=staffed.available,
        next_available_at=staffed.next_available_at,
    )


async def _saved_hours(request: Request, staff: Staff) -> ShopHours:
    found = await shop_hours(pool(request), {staff.shop_id})
    if staff.shop_id not in found:  # a signed-in staff member's shop is always known
        raise HTTPException(404, "shop not found")
    return found[staff.shop_id]


@router.get("/settings/availability", response_model=ChatHoursOut,
            summary="The shop's chat hours and away message, and whether it is staffed now")
async def get_chat_hours(request: Request, staff: Staff) -> ChatHoursOut:
    return _chat_hours_out(await _saved_hours(request, staff), datetime.now(UTC))


@router.put("/settings/availability", response_model=ChatHoursOut,
            summary="Set the shop's chat hours and away message (needs `messaging`)",
            responses=errors(403, 422))
async def put_chat_hours(request: Request, staff: Staff, body: ChatHoursIn) -> ChatHoursOut:
    staff.require(MESSAGING_PERMISSION, "changing chat hours")
    try:
        ranges = parse_ranges(r.model_dump(by_alias=True) for r in body.hours)
    except HoursError as exc:
        raise HTTPException(422, str(exc)) from None
    now = datetime.now(UTC)
    await aq.save_chat_hours(pool(request), staff.shop_id, body.mode,
                             [r.as_dict() for r in ranges], body.away_message, now)
    return _chat_hours_out(await _saved_hours(request, staff), now)


@router.get("/settings/instant-answers", response_model=InstantAnswerList,
            summary="The shop's instant answer for each topic")
async def list_instant_answers(request: Request, staff: Staff) -> InstantAnswerList:
    saved = await aq.instant_answers(pool(request), staff.shop_id)
    return InstantAnswerList(items=[
        InstantAnswer(topic=topic, name=name,
                      enabled=saved[topic]["enabled"] if topic in saved else False,
                      text=saved[topic]["text"] if topic in saved else "")
        for topic, name in MESSAGE_TOPICS.items()
    ])


@router.put("/settings/instant-answers/{topic}", response_model=InstantAnswer,
            summary="Write a topic's instant answer, turn it on or off (needs `messaging`)",
            responses=errors(403, 404, 422))
async def put_instant_answer(request: Request, staff: Staff, topic: str, body: InstantAnswerIn
                             ) -> InstantAnswer:
    if topic not in MESSAGE_TOPICS:
        raise HTTPException(404, f"no topic {topic!r} (topics: {', '.join(MESSAGE_TOPICS)})")
    staff.require(MESSAGING_PERMISSION, "changing instant answers")
    if body.enabled and not body.text:
        raise HTTPException(422, "an instant answer that is on needs a text")
    check_placeholders(body.text)
    row = await aq.save_instant_answer(pool(request), staff.shop_id, topic, body.enabled,
                                       body.text, datetime.now(UTC))
    return InstantAnswer(topic=topic, name=MESSAGE_TOPICS[topic], enabled=row["enabled"],
                         text=row["text"])
