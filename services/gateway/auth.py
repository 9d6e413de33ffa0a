"""Staff authentication: who is asking, for every merchant endpoint.

Two ways in. Integrations and tests send an API token (`Authorization: Bearer …`), looked up
by its SHA-256 (tokens are stored hashed). The inbox in a browser holds a session cookie
(HttpOnly, so no script on the page can read it) made by signing in (`api.session`); a
request that changes something must then also carry the session's CSRF token in a header,
which a page of another site cannot read or send.

`current_staff` returns the staff member with the one shop whose data the request may touch,
and the permissions the handlers enforce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from services.gateway import queries as q
from services.gateway.signin import queries as sq
from services.gateway.signin import rules
from shared import tokens
from shared.config import Settings

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="staffToken",
    description="A staff member's API token: `Authorization: Bearer <token>`.",
)
# Documented only: the cookie's name depends on the environment (`rules.session_cookie`).
session_cookie_scheme = APIKeyCookie(
    name="inbox_session",
    auto_error=False,
    scheme_name="staffSession",
    description="The inbox's session cookie, made by `POST /api/v1/session` "
    "(`__Host-inbox_session` outside development). Requests that change something also send "
    f"the session's CSRF token in `{rules.CSRF_HEADER}`.",
)

#: The CSRF token is a signature of the session (no state kept); it lives as long as it may.
CSRF = tokens.Purpose("staff-csrf", int(rules.SESSION_LIFETIME.total_seconds()))


def csrf_token(settings: Settings, session_sha256: str) -> str:
    return tokens.detached_signature(settings.link_signing_secret, CSRF, [session_sha256])


@dataclass(frozen=True)
class StaffMember:
    shop_id: str
    staff_id: str
    name: str
    email: str
    permissions: frozenset[str]
    #: SHA-256 of the session cookie, when that is how the request authenticated.
    session_sha256: str | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str, doing: str) -> None:
        """403 unless this staff member holds `permission`; `doing` names what was refused."""
        if not self.can(permission):
            raise HTTPException(403, f"{doing} needs the {permission} permission")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, {"WWW-Authenticate": "Bearer"})


def _member(row: Mapping[str, Any], session_sha256: str | None = None) -> StaffMember:
    return StaffMember(
        shop_id=row["shop_id"],
        staff_id=row["staff_id"],
        name=row["name"],
        email=row["email"],
        permissions=frozenset(row["permissions"]),
        session_sha256=session_sha256,
    )


def session_token(request: Request, settings: Settings) -> str | None:
    return request.cookies.get(rules.session_cookie(settings.inbox_environment).name)


async def session_member(request: Request) -> StaffMember | None:
    """The staff member whose live session the request's cookie names, if any."""
    service = request.app.state.service
    token = session_token(request, service.settings)
    if not token or len(token) > 256:
        return None
    sha = rules.token_sha256(token)
    now = datetime.now(UTC)
    row = await sq.session_staff(service.pool, sha, now)
    if row is None:
        return None
    if now - row["last_seen_at"] >= rules.SESSION_TOUCH_EVERY:
        await sq.touch_session(service.pool, sha, now,
                               rules.session_expiry(row["created_at"], now))
    return _member(row, sha)


async def current_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    _cookie: Annotated[str | None, Security(session_cookie_scheme)] = None,
) -> StaffMember:
    service = request.app.state.service
    if credentials is not None:
        row = await q.staff_by_token(service.pool, rules.token_sha256(credentials.credentials))
        if row is None:
            raise _unauthorized("invalid token")
        return _member(row)
    member = await session_member(request)
    if member is None:
        if session_token(request, service.settings):
            raise _unauthorized("your session has ended: sign in again")
        raise _unauthorized("not signed in: sign in, or send a bearer token")
    if request.method not in rules.SAFE_METHODS:
        sent = request.headers.get(rules.CSRF_HEADER, "")
        if not tokens.valid_detached(service.settings.link_signing_secret, CSRF,
                                     [member.session_sha256 or ""], sent):
            raise HTTPException(403, f"missing or wrong {rules.CSRF_HEADER} header "
                                "(the page's copy of the session's CSRF token)")
    return member
