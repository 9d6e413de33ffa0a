"""Staff authentication: a bearer token, looked up by its SHA-256 (tokens are stored hashed)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway import queries as q

bearer = HTTPBearer(auto_error=False, description="A staff member's API token.")


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StaffMember:
    shop_id: str
    staff_id: str
    name: str
    permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        return permission in self.permissions


async def current_staff(request: Request) -> StaffMember:
    credentials: HTTPAuthorizationCredentials | None = await bearer(request)
    if credentials is None:
        raise HTTPException(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
    pool = request.app.state.service.pool
    row = await q.staff_by_token(pool, token_sha256(credentials.credentials))
    if row is None:
        raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})
    return StaffMember(row["shop_id"], row["staff_id"], row["name"], frozenset(row["permissions"]))
