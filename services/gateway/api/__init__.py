"""The merchant API (`/api/v1`): read the shop's conversations, publish commands on
`inbox.commands`, keep the shop's saved replies. Every endpoint needs a staff token and only
ever sees the caller's shop."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.api import (
    assignment,
    automation,
    catalog,
    channels,
    commands,
    conversations,
    privacy,
    reports,
    saved_replies,
    session,
    staff,
)
from services.gateway.api.common import errors

router = APIRouter(
    prefix="/api/v1",
    responses=errors(401),
    # operationIds are the handlers' names: list_conversations, reply, create_saved_reply…
    generate_unique_id_function=lambda route: route.name,
)
for part in (session, conversations, commands, staff, saved_replies, catalog, channels, privacy,
             assignment, automation, reports):
    router.include_router(part.router)

__all__ = ["router"]
