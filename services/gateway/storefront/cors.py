"""Cross-origin answers for the widget's API: the widget runs on the shop's own pages, so its
API (and only its API: not the merchant API) answers any origin. It uses no cookies (the chat
token travels in a header), so allowing every origin gives nothing away."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.storefront.common import API


class _NoContentPreflight(CORSMiddleware):
    """Starlette's CORS, its allowed preflights answered 204 (headers only) as the widget's API
    always has."""

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code != 200:
            return answer
        headers = {k: v for k, v in answer.headers.items()
                   if k not in ("content-length", "content-type")}
        return Response(status_code=204, headers=headers)


class StorefrontCors:
    """CORS on the paths under `/storefront/api/`; every other path passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = _NoContentPreflight(
            app, allow_origins=["*"], allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"], max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API + "/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
