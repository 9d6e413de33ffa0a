"""The storefront's pages: the demo storefront (with its own address per shop, where a shared
discount link applies its code), and the "continue the chat" link from emails."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from services.gateway.storefront.common import settings, shop
from services.gateway.storefront.shop import DISCOUNT_CODE_PATTERN
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

_DISCOUNT_INVALID = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Discount link not valid</title></head><body style="font-family: system-ui, sans-serif;
max-width: 36rem; margin: 3rem auto; padding: 0 1rem"><h1>This discount link is not valid</h1>
<p>The store or the discount code in this link does not exist. Open the link again from the
message it came in, or ask the shop for a new one.</p></body></html>"""

_SHOP_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

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


def _store_page(shop_id: str, **query: str) -> str:
    return "/storefront/demo?" + urlencode({"shop": shop_id, **query})


@router.get("/storefront/demo/{shop_id}")
async def demo_store_home(request: Request, shop_id: str) -> Response:
    """A shop's demo storefront at an address of its own: the address a development shop's
    `storefront_url` names (`/discount/{CODE}` is below it)."""
    if not _SHOP_ID.fullmatch(shop_id):
        return HTMLResponse(_DISCOUNT_INVALID, status_code=404, headers=SECURITY_HEADERS)
    return RedirectResponse(_store_page(shop_id), status_code=303)


@router.get("/storefront/demo/{shop_id}/discount/{code}")
async def demo_discount_link(request: Request, shop_id: str, code: str) -> Response:
    """A shared discount link, served as a Shopify storefront serves `/discount/{CODE}`: the
    customer lands back on the store, where the code is applied to their cart (the cart lives
    in their browser; the page checks the code with the shop and says so if it cannot
    apply)."""
    if not _SHOP_ID.fullmatch(shop_id) or not re.fullmatch(DISCOUNT_CODE_PATTERN, code):
        return HTMLResponse(_DISCOUNT_INVALID, status_code=404, headers=SECURITY_HEADERS)
    try:
        await shop(request, shop_id)
    except HTTPException:
        return HTMLResponse(_DISCOUNT_INVALID, status_code=404, headers=SECURITY_HEADERS)
    return RedirectResponse(_store_page(shop_id, discount=code), status_code=303,
                            headers={"Referrer-Policy": "no-referrer"})
