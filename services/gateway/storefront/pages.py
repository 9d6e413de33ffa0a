"""The storefront's pages: the demo storefront, and the "continue the chat" link from emails."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from services.gateway.storefront.common import settings
from shared.links import valid_signature

WEB = Path(__file__).resolve().parent.parent / "web"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

_CONTINUE_INVALID = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link not valid</title></head><body style="font-family: system-ui, sans-serif;
max-width: 36rem; margin: 3rem auto; padding: 0 1rem"><h1>This link is not valid</h1>
<p>The link to continue the chat is incomplete, was changed or has expired. Open it again from
the email, or start a new chat from the store.</p></body></html>"""

router = APIRouter(include_in_schema=False)


@router.get("/chat/continue")
async def continue_chat(
    request: Request,
    shop: Annotated[str, Query(max_length=64)] = "",
    conversation: Annotated[str, Query(max_length=64)] = "",
    sig: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """The link in a reply sent by email: back to the store with that conversation open.

    The signature is checked here and again when the page resumes the chat; the redirect
    carries it in the fragment, which browsers never send to a server."""
    if not (shop and conversation and sig) or not valid_signature(
        settings(request).link_signing_secret, shop, conversation, sig
    ):
        return HTMLResponse(_CONTINUE_INVALID, status_code=403, headers=SECURITY_HEADERS)
    target = f"/storefront/demo?shop={shop}#continue={conversation}.{sig}"
    return RedirectResponse(target, status_code=303, headers={"Referrer-Policy": "no-referrer"})


@router.get("/storefront/demo")
async def demo_storefront() -> FileResponse:
    """A demo storefront (`?shop=<id>`): products, a cart and the chat widget."""
    return FileResponse(
        WEB / "storefront" / "demo.html",
        headers={**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP,
                 "Cache-Control": "no-cache"},
    )
