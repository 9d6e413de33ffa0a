"""Signing in and out of the inbox: `/api/v1/session`.

A password is checked against the staff member's argon2id hash; a one-time link is sent by
email and redeemed by the inbox page. Either way the answer sets the session cookie and gives
the page the session's CSRF token. Failed attempts are counted per address and per client, and
past the limits the answer is 429 with `Retry-After`. Answers never tell whether an address
belongs to staff.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, Field, StringConstraints

from services.gateway import queries as q
from services.gateway.api.common import ErrorBody, errors, pool
from services.gateway.auth import StaffMember, csrf_token, session_member, session_token
from services.gateway.signin import email as mail
from services.gateway.signin import passwords, rules
from services.gateway.signin import queries as sq
from shared.config import Settings
from shared.mail import SEND_ERRORS, Mailer

log = logging.getLogger(__name__)
router = APIRouter(tags=["sign-in"])

SIGN_INS = Counter(
    "gateway_sign_ins_total",
    "Inbox sign-in attempts by method (password, link) and outcome (signed_in, refused, "
    "limited, link_sent, mail_failed).",
    ["method", "outcome"],
)

EmailAddress = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3,
                                                max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class PasswordSignIn(BaseModel):
    email: EmailAddress
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    shop_id: str | None = Field(None, max_length=200, description=(
        "Only when the address signs in to several shops: which one (the 409 answer lists them)"))


class LinkRequest(BaseModel):
    email: EmailAddress


class LinkRedeem(BaseModel):
    token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Session(BaseModel):
    staff_id: str
    shop_id: str
    name: str
    csrf_token: str = Field(description=f"Send it in `{rules.CSRF_HEADER}` with every request "
                            "that changes something")


class ShopOption(BaseModel):
    shop_id: str
    name: str


class ShopChoice(BaseModel):
    """The address signs in to several shops with this password: send one's `shop_id`."""

    detail: str
    shops: list[ShopOption]


class LinkSent(BaseModel):
    status: Literal["sent"] = "sent"
    detail: str


def _settings(request: Request) -> Settings:
    return request.app.state.service.settings


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _window(request: Request) -> timedelta:
    return timedelta(seconds=_settings(request).sign_in.window_seconds)


async def _check_limits(request: Request, key: str, method: str, now: datetime) -> None:
    since = now - _window(request)
    failed = await sq.failed_attempts(pool(request), key, _client(request), since)
    wait = rules.retry_after(_settings(request).sign_in, *failed)
    if wait is not None:
        SIGN_INS.labels(method, "limited").inc()
        raise HTTPException(429, "too many sign-in attempts: wait a few minutes and try again",
                            {"Retry-After": str(wait)})


async def _record(request: Request, key: str, now: datetime, succeeded: bool) -> None:
    await sq.record_attempt(pool(request), key, _client(request), now, succeeded,
                            now - _window(request))


async def _open_session(request: Request, response: Response, shop_id: str, staff_id: str,
                        name: str, now: datetime) -> Session:
    settings = _settings(request)
    token = rules.new_secret_token()
    sha = rules.token_sha256(token)
    await sq.create_session(pool(request), sha, shop_id, staff_id, now,
                            rules.session_expiry(now, now))
    cookie = rules.session_cookie(settings.inbox_environment)
    response.set_cookie(
        cookie.name, token, max_age=int(rules.SESSION_LIFETIME.total_seconds()), path="/",
        secure=cookie.secure, httponly=True, samesite="lax",
    )
    return Session(staff_id=staff_id, shop_id=shop_id, name=name,
                   csrf_token=csrf_token(settings, sha))


@router.post(
    "/session", response_model=Session, summary="Sign in with email address and password",
    responses={**errors(401, 422), 409: {"model": ShopChoice, "description": "The address "
               "signs in to several shops: `shops` lists them; send `shop_id`."},
               429: {"model": ErrorBody, "description": "Too many failed attempts; see "
                     "`Retry-After`."}},
)
async def sign_in(
    request: Request, response: Response, body: PasswordSignIn
) -> Session | JSONResponse:
    now = datetime.now(UTC)
    key = rules.email_key(body.email)
    await _check_limits(request, key, "password", now)
    candidates = await sq.active_staff_by_email(pool(request), key)
    if body.shop_id is not None:
        candidates = [c for c in candidates if c["shop_id"] == body.shop_id]
    with_password = [c for c in candidates if c["password_hash"]]
    matching = [c for c in with_password
                if await passwords.matches(c["password_hash"], body.password)]
    if not with_password:  # the same work as for a staff member: the time tells nothing
        await passwords.matches(None, body.password)
    await _record(request, key, now, bool(matching))
    if not matching:
        SIGN_INS.labels("password", "refused").inc()
        raise HTTPException(401, "wrong email address or password")
    if len(matching) > 1:
        choice = ShopChoice(detail="this address signs in to several shops: choose one",
                            shops=[ShopOption(shop_id=m["shop_id"], name=m["shop_name"])
                                   for m in matching])
        return JSONResponse(status_code=409, content=choice.model_dump())
    staff = matching[0]
    SIGN_INS.labels("password", "signed_in").inc()
    return await _open_session(request, response, staff["shop_id"], staff["staff_id"],
                               staff["name"], now)


@router.post(
    "/session/link", response_model=LinkSent, status_code=202,
    summary="Email a one-time sign-in link",
    responses={**errors(422), 429: {"model": ErrorBody, "description": "Too many requests."},
               503: {"model": ErrorBody, "description": "The mail server did not take it."}},
)
async def send_link(request: Request, body: LinkRequest) -> LinkSent:
    now = datetime.now(UTC)
    key = rules.email_key(body.email)
    await _check_limits(request, key, "link", now)
    # Counted as a failed attempt: asking for links is limited like guessing passwords.
    await _record(request, key, now, False)
    candidates = await sq.active_staff_by_email(pool(request), key)
    sent = LinkSent(detail="If this address belongs to a staff member, a sign-in link is on "
                    "its way. It works once, within 15 minutes.")
    if not candidates:
        return sent
    settings = _settings(request)
    links, urls = [], []
    for staff in candidates:
        token = rules.new_secret_token()
        links.append((rules.token_sha256(token), staff["shop_id"], staff["staff_id"]))
        urls.append((staff["shop_name"], mail.link_url(settings.public_base_url, token)))
    await sq.create_links(pool(request), links, now, now + rules.LINK_LIFETIME)
    mailer: Mailer = request.app.state.mailer
    message = mail.sign_in_email(
        from_address=mailer.from_address, domain=mailer.domain, to_name=candidates[0]["name"],
        to_address=candidates[0]["email"], links=urls,
    )
    try:
        await mailer.send(message)
    except SEND_ERRORS as exc:
        log.warning("sign-in link not sent: %s: %s", type(exc).__name__, exc)
        SIGN_INS.labels("link", "mail_failed").inc()
        raise HTTPException(503, "the sign-in email could not be sent now: try again shortly, "
                            "or sign in with your password") from None
    SIGN_INS.labels("link", "link_sent").inc()
    return sent


@router.post(
    "/session/link/redeem", response_model=Session, summary="Sign in with an emailed link",
    responses=errors(401, 422),
)
async def redeem_link(request: Request, response: Response, body: LinkRedeem) -> Session:
    now = datetime.now(UTC)
    used = await sq.use_link(pool(request), rules.token_sha256(body.token), now)
    if used is None:
        SIGN_INS.labels("link", "refused").inc()
        raise HTTPException(401, "this sign-in link is not valid: it was used already, has "
                            "expired, or was never sent; ask for a new one")
    staff = await q.staff_member(pool(request), used["shop_id"], used["staff_id"])
    SIGN_INS.labels("link", "signed_in").inc()
    return await _open_session(request, response, used["shop_id"], used["staff_id"],
                               staff["name"] if staff else used["staff_id"], now)


async def _signed_in(request: Request) -> StaffMember:
    member = await session_member(request)
    if member is None:
        raise HTTPException(401, "not signed in")
    return member


@router.get("/session", response_model=Session, summary="The current session",
            responses=errors(401))
async def current_session(request: Request) -> Session:
    member = await _signed_in(request)
    return Session(staff_id=member.staff_id, shop_id=member.shop_id, name=member.name,
                   csrf_token=csrf_token(_settings(request), member.session_sha256 or ""))


@router.delete("/session", status_code=204, summary="Sign out (ends the session)")
async def sign_out(request: Request) -> Response:
    settings = _settings(request)
    token = session_token(request, settings)
    if token:
        # Not CSRF-checked: another site making the browser sign out does no harm.
        await sq.end_session(pool(request), rules.token_sha256(token))
    response = Response(status_code=204)
    cookie = rules.session_cookie(settings.inbox_environment)
    response.delete_cookie(cookie.name, path="/", secure=cookie.secure, httponly=True,
                           samesite="lax")
    return response
