"""Wiring of the gateway: the HTTP API on the side door's server."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from services.gateway import live, shopify_webhooks, storefront, web, webhooks
from services.gateway.api import router as merchant_api
from services.gateway.limits import RequestGuard
from shared.config import Settings, get_settings
from shared.contracts.base import error_sentence
from shared.mail import Mailer
from shared.service import Service

DESCRIPTION = """\
Conversations between a shop and its customers.

Authenticate with a staff member's API token: `Authorization: Bearer <token>`. The inbox in a
browser signs in instead (`POST /api/v1/session`, or an emailed link) and holds an HttpOnly
session cookie; its requests that change something carry the session's CSRF token in
`X-CSRF-Token`. A staff member only
ever sees their own shop: another shop's conversation or saved reply is simply not found (404).
Any active staff member may read and answer the shop's conversations; assignment is limited to
staff holding the `online_store_chat` permission, and the subject to staff holding `messaging`.

Commands (replies, assignment, status, subject, notes…) are checked against the shop's data and
answered `202 Accepted`: they are queued on `inbox.commands` and their effect shows on the
conversation and its timeline shortly after. Conversations cannot be deleted: close them.

Every error answer is a JSON object `{"detail": "<what went wrong>"}`.
"""

TAGS = [
    {"name": "sign-in", "description": "The inbox's session: sign in and out (no token needed)."},
    {"name": "conversations", "description": "The conversation list and one conversation."},
    {"name": "conversation commands", "description": "Act on a conversation (queued, 202)."},
    {"name": "staff", "description": "The caller and the staff a conversation can go to."},
    {"name": "saved replies", "description": "Per-shop snippets with placeholders."},
    {"name": "catalog", "description": "Products and discount codes to share in a reply."},
    {"name": "channels", "description": "The shop's Messenger channel and order-update consents."},
    {"name": "reports", "description": "Conversation figures over a period."},
    {"name": "assignment", "description": "Automatic assignment and staff availability."},
    {"name": "automation", "description": "Chat hours, the away message and instant answers."},
    {"name": "privacy", "description": "Customer data requests and erasures (`customer_privacy`)."},
]

_INVALID = "The request is invalid or refused by the rules; `detail` says why."
_WHERE = {"body": "body field", "query": "query parameter", "path": "path parameter"}


def _place(loc: list[str]) -> str:
    """Where in the request an error is: "body field x.y", "request body", or nowhere."""
    if len(loc) > 1:
        return f"{_WHERE.get(loc[0], loc[0])} {'.'.join(loc[1:])}"
    return "request body" if loc == ["body"] else ""


def _validation_detail(exc: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one readable message."""
    return error_sentence(exc.errors(), where=_place) or "invalid request"


async def _on_validation_error(request: Request, exc: Any) -> JSONResponse:
    return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, with every 422 described by the body this API really sends."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        for operation in (op for ops in schema["paths"].values() for op in ops.values()):
            invalid = operation.get("responses", {}).get("422")
            if invalid is not None:
                invalid["description"] = _INVALID
                invalid["content"] = {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                }
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Inbox merchant API",
        version="1",
        description=DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        openapi_tags=TAGS,
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.include_router(merchant_api)
    app.include_router(webhooks.router)  # Meta's Messenger webhooks (not part of the API doc)
    app.include_router(shopify_webhooks.router)  # Shopify's compliance webhooks (privacy)
    # The browser side: live updates, the storefront chat's API, the inbox and widget files.
    app.include_router(live.router)
    storefront.install(app, settings)
    # Every request's form is checked first (the guard), inside the storefront's CORS so that
    # a widget on a shop's page can read the refusal.
    app.add_middleware(RequestGuard, limits=[
        (webhooks.WEBHOOK_PATH, settings.messenger.webhook_max_bytes),
    ])
    app.add_middleware(storefront.StorefrontCors)
    web.mount(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def build(service: Service) -> None:
    service.app.state.service = service
    service.app.state.mailer = Mailer(service.settings.mail)  # sign-in links
    live.install(service)
