"""Conversation reports: `GET /reports/conversations?from=&to=&group_by=`."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from services.gateway import queries as q
from services.gateway import reports_queries as rq
from services.gateway.api.common import Staff, errors, pool

router = APIRouter(tags=["reports"])
#: The longest period one report covers.
MAX_DAYS = 366


class ReportRow(BaseModel):
    group: str = Field(description="the day (YYYY-MM-DD, shop's time zone), staff id, channel "
                       "or topic; `total` for the period")
    new_conversations: int
    with_staff_reply: int = Field(description="of those, conversations a staff member answered")
    first_response_median_seconds: float | None = Field(
        description="from the first customer message to the first staff reply")
    first_response_p90_seconds: float | None
    automated_replies: int
    followed_by_order: int = Field(description="conversations followed by an order of the same "
                                   "customer (id or email) within 7 days")


class ConversationReport(BaseModel):
    start: datetime
    end: datetime
    timezone: str
    group_by: Literal["day", "staff", "channel", "topic"]
    groups: list[ReportRow]
    total: ReportRow


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@router.get("/reports/conversations", response_model=ConversationReport,
            summary="Conversation figures over a period, grouped", responses=errors(422))
async def conversation_report(
    request: Request,
    staff: Staff,
    start: Annotated[date | None, Query(alias="from", description=(
        "first day (shop's time zone); default: 6 days before `to`"))] = None,
    end: Annotated[date | None, Query(alias="to", description="last day, included; default "
                                      "today")] = None,
    group_by: Literal["day", "staff", "channel", "topic"] = "day",
) -> ConversationReport:
    shop = await q.shop(pool(request), staff.shop_id)
    zone = _zone(shop["timezone"] if shop else None)
    last = end or datetime.now(zone).date()
    first = start or last - timedelta(days=6)
    if first > last:
        raise HTTPException(422, "`from` is after `to`")
    if (last - first).days >= MAX_DAYS:
        raise HTTPException(422, f"a report covers at most {MAX_DAYS} days")
    begins = datetime.combine(first, time(), zone).astimezone(UTC)
    ends = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    rows = await rq.report(pool(request), staff.shop_id, begins, ends, group_by)
    [total] = await rq.report(pool(request), staff.shop_id, begins, ends, "total") or [None]
    empty = ReportRow(group="total", new_conversations=0, with_staff_reply=0,
                      first_response_median_seconds=None, first_response_p90_seconds=None,
                      automated_replies=0, followed_by_order=0)
    return ConversationReport(
        start=begins, end=ends, timezone=zone.key, group_by=group_by,
        groups=[ReportRow(**dict(r)) for r in rows],
        total=ReportRow(**dict(total)) if total else empty,
    )
