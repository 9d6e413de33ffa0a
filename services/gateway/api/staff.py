"""The caller and their colleagues."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from services.gateway import queries as q
from services.gateway.api.common import Staff, errors, pool, search_text
from shared.rules import assignable, may_see_subject

router = APIRouter(tags=["staff"])


class Shop(BaseModel):
    shop_id: str
    name: str
    domain: str
    currency: str
    timezone: str


class Me(BaseModel):
    staff_id: str
    name: str
    email: str
    shop_id: str
    shop: Shop | None = Field(description="null until the shop's own record has arrived")
    permissions: list[str] = Field(examples=[["online_store_chat", "messaging"]])
    can_be_assigned: bool = Field(description="holds the online store chat permission")
    can_see_subjects: bool = Field(description="holds the messaging permission")


class StaffEntry(BaseModel):
    staff_id: str
    name: str
    email: str


class StaffList(BaseModel):
    items: list[StaffEntry]


@router.get("/me", response_model=Me, summary="The authenticated staff member and their shop")
async def me(request: Request, staff: Staff) -> Me:
    shop = await q.shop(pool(request), staff.shop_id)
    return Me(
        staff_id=staff.staff_id,
        name=staff.name,
        email=staff.email,
        shop_id=staff.shop_id,
        shop=Shop(**dict(shop)) if shop else None,
        permissions=sorted(staff.permissions),
        can_be_assigned=assignable(staff.permissions),
        can_see_subjects=may_see_subject(staff.permissions),
    )


@router.get(
    "/staff/assignable",
    response_model=StaffList,
    summary="Staff a conversation can be assigned to (online store chat permission)",
    responses=errors(422),
)
async def assignable_staff(
    request: Request,
    staff: Staff,
    search: Annotated[str | None, search_text("text in the name or email")],
) -> StaffList:
    rows = await q.search_staff(pool(request), staff.shop_id, search)
    return StaffList(items=[
        StaffEntry(staff_id=r["staff_id"], name=r["name"], email=r["email"])
        for r in rows
        if assignable(r["permissions"], r["active"])
    ])
