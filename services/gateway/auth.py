"""Staff authentication: a bearer token, looked up by its SHA-256 (tokens are stored hashed).

Every merchant endpoint depends on `current_staff`; the staff member it returns carries the one
shop whose data the request may touch, and the permissions the handlers enforce.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway import queries as q

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="staffToken",
    description="A staff member's API token: `Authorization: Bearer <token>`.",
)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StaffMember:
    shop_id: str
    staff_id: str
    name: str
    email: str
    permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, {"WWW-Authenticate": "Bearer"})


async def current_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> StaffMember:
    if credentials is None:
        raise _unauthorized("missing bearer token")
    pool = request.app.state.service.pool
    row = await q.staff_by_token(pool, token_sha256(credentials.credentials))
    if row is None:
        raise _unauthorized("invalid token")
    return StaffMember(
        shop_id=row["shop_id"],
        staff_id=row["staff_id"],
        name=row["name"],
        email=row["email"],
        permissions=frozenset(row["permissions"]),
    )
