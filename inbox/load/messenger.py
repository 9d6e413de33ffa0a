"""The load shops' Messenger channels: each shop's Page (the one its Messenger traffic names in
its thread refs) registered on Meta's Graph API stand-in, then connected as the shop's channel
through the merchant API, as a merchant does it. Without this, every reply to a Messenger
conversation fails with `channel_not_connected` and the send path is never taken."""

from __future__ import annotations

import asyncio
import time

import httpx

#: The staff member who connects the channel (the demo shop's: has the messaging permission).
STAFF = "ava"


def page_token(page_id: str, run_id: str) -> str:
    return f"load-{run_id}-page-{page_id}-token"


async def connect_pages(
    gateway_url: str, graph_url: str, pages: dict[str, str], staff_tokens: dict[str, str],
    run_id: str, timeout: float = 60.0,
) -> None:
    """`pages`: shop id -> Page id; `staff_tokens`: shop id -> an API token with the messaging
    permission. Retries until the gateway answers (it may still be starting)."""
    async with httpx.AsyncClient(timeout=10) as client:
        for shop_id, page_id in pages.items():
            token = page_token(page_id, run_id)
            response = await client.put(f"{graph_url}/admin/pages/{page_id}",
                                        json={"access_token": token})
            response.raise_for_status()
            await _connect(client, gateway_url, staff_tokens[shop_id], page_id, token, timeout)


async def _connect(client: httpx.AsyncClient, gateway_url: str, staff_token: str, page_id: str,
                   page_token: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            response = await client.put(
                f"{gateway_url}/api/v1/channels/messenger",
                json={"page_id": page_id, "page_access_token": page_token},
                headers={"Authorization": f"Bearer {staff_token}"})
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
            if response.status_code not in (401, 503):  # 401: the staff is not stored yet
                break
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    raise RuntimeError(f"could not connect Page {page_id} as a Messenger channel: {last}")
