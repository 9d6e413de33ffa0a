"""The clock the Messenger send planner reads.

In production it is the system clock, nothing else. For the development stack and the tests
(`DEV_CLOCK_CONTROL=true`) it can be shifted forward through the notifier's side door, exactly
as Meta's local stand-in is, so "30 hours later" is a call rather than a wait:

    PUT /dev/clock {"offset_seconds": 108000}   GET /dev/clock -> {"now", "offset_seconds"}

Only the planner's "now" moves; stored times, retries and Kafka are untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from pydantic import BaseModel, Field


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class ClockState(BaseModel):
    now: datetime
    offset_seconds: float


class ClockShift(BaseModel):
    offset_seconds: float = Field(ge=0, le=400 * 24 * 3600)


def install_dev_clock(app: FastAPI, clock: Clock) -> None:
    """Serve GET/PUT /dev/clock (development and tests only; off the API document)."""

    def state() -> ClockState:
        return ClockState(now=clock.now(), offset_seconds=clock.offset.total_seconds())

    @app.get("/dev/clock", include_in_schema=False)
    async def get_clock() -> ClockState:
        return state()

    @app.put("/dev/clock", include_in_schema=False)
    async def set_clock(shift: ClockShift) -> ClockState:
        clock.offset = timedelta(seconds=shift.offset_seconds)
        return state()
