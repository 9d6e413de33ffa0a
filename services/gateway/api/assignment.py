"""Automatic assignment: the shop's mode and capacity, and each staff member's availability.
A change is saved, then the router is told (`inbox.assignment`) so that waiting conversations
are given out at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from aiokafka.errors import KafkaError
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from services.gateway import assignment_queries as aq
from services.gateway.api.common import Staff, errors, log, pool
from shared.contracts import AssignmentNudge
from shared.rules import CHAT_PERMISSION, MESSAGING_PERMISSION
from shared.topics import INBOX_ASSIGNMENT

router = APIRouter(tags=["assignment"])
DEFAULT_CAPACITY = 10


class AssignmentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["off", "round_robin", "balanced"] = Field(description=(
        "off; round_robin: to whoever was given one least recently; balanced: to whoever has "
        "the fewest open conversations"))
    capacity: Annotated[int, Field(ge=1, le=1000, description=(
        "the most open conversations automatic assignment gives one staff member"))] = (
        DEFAULT_CAPACITY)


class Availability(BaseModel):
    model_config = ConfigDict(extra="forbid")

    available: bool = Field(description="takes automatically assigned conversations now")


async def _nudge(request: Request, staff: Staff, reason: Literal["availability", "settings"]
                 ) -> None:
    nudge = AssignmentNudge(event_id=f"nudge:{uuid.uuid4()}", shop_id=staff.shop_id,
                            reason=reason, staff_id=staff.staff_id, at=datetime.now(UTC))
    try:
        await request.app.state.service.producer.send_and_wait(INBOX_ASSIGNMENT, nudge)
    except KafkaError as exc:
        # Saved all the same: the next conversation or command assigns the waiting ones.
        log.warning("assignment nudge for %s not sent: %s", staff.shop_id, exc)


@router.get("/settings/assignment", response_model=AssignmentSettings,
            summary="The shop's automatic assignment")
async def get_assignment_settings(request: Request, staff: Staff) -> AssignmentSettings:
    row = await aq.settings(pool(request), staff.shop_id)
    return AssignmentSettings(mode=row["mode"], capacity=row["capacity"]) if row else (
        AssignmentSettings(mode="off"))


@router.put("/settings/assignment", response_model=AssignmentSettings,
            summary="Set the shop's automatic assignment (needs `messaging`)",
            responses=errors(403, 422))
async def put_assignment_settings(request: Request, staff: Staff, body: AssignmentSettings
                                  ) -> AssignmentSettings:
    staff.require(MESSAGING_PERMISSION, "changing assignment")
    await aq.save_settings(pool(request), staff.shop_id, body.mode, body.capacity,
                           datetime.now(UTC))
    await _nudge(request, staff, "settings")
    return body


@router.get("/me/availability", response_model=Availability,
            summary="Whether I take automatically assigned conversations")
async def get_my_availability(request: Request, staff: Staff) -> Availability:
    return Availability(available=await aq.availability(pool(request), staff.shop_id,
                                                        staff.staff_id))


@router.put("/me/availability", response_model=Availability,
            summary="Set myself available or away", responses=errors(403, 422))
async def put_my_availability(request: Request, staff: Staff, body: Availability
                              ) -> Availability:
    if body.available and not staff.can(CHAT_PERMISSION):
        raise HTTPException(403, "only staff with the online_store_chat permission can be "
                            "assigned conversations")
    await aq.save_availability(pool(request), staff.shop_id, staff.staff_id, body.available,
                               datetime.now(UTC))
    if body.available:
        await _nudge(request, staff, "availability")
    return body
