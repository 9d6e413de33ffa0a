"""The browser side of the gateway, served as plain files (no build step):

- `inbox/`: the merchant inbox (`/inbox/`), ES modules over the merchant API;
- `storefront/`: the chat widget a shop embeds (`/storefront/widget.js`) and the demo storefront.

Every file goes out with `nosniff`, no referrer, revalidation, and (pages) a strict Content
Security Policy: scripts only from this origin, no inline script, so even a slip in escaping
could not run a customer's text as code.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB = Path(__file__).resolve().parent

INBOX_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

#: The demo storefront may be framed (a shop's preview); the widget's own files carry it too.
STOREFRONT_CSP = INBOX_CSP.removesuffix("; frame-ancestors 'none'")


class _Files(StaticFiles):
    def __init__(self, directory: Path, headers: dict[str, str]) -> None:
        super().__init__(directory=directory, html=True)
        self._headers = headers

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(self._headers)
        return response


_COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def mount(app: FastAPI) -> None:
    """Mount the inbox and the storefront files (after the API routes, which take precedence)."""

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/inbox/")

    app.mount("/inbox", _Files(WEB / "inbox", {
        **_COMMON, "Content-Security-Policy": INBOX_CSP, "X-Frame-Options": "DENY",
    }), name="inbox")
    # The widget's files are loaded by shops' pages on other origins.
    app.mount("/storefront", _Files(WEB / "storefront", {
        **_COMMON, "Content-Security-Policy": STOREFRONT_CSP,
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Origin": "*",
    }), name="storefront")
