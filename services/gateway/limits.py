"""Guards on the merchant API's requests, applied before any handler: a size limit on bodies
(413 past it), and no NUL character anywhere (PostgreSQL text cannot hold one: 422)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

#: The largest reply (20,000 characters) with room for JSON escaping.
API_MAX_BODY_BYTES = 131_072


def _has_nul(raw: bytes) -> bool:
    lowered = raw.lower()
    return b"\x00" in raw or b"%00" in lowered or b"\\u0000" in lowered


class RequestGuard:
    def __init__(self, app: ASGIApp, prefix: str = "/api/", limit: int = API_MAX_BODY_BYTES):
        self.app, self.prefix, self.limit = app, prefix, limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if _has_nul(scope.get("query_string", b"")) or "\x00" in scope["path"]:
            await self._refuse(send, 422, "NUL characters are not allowed")
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, 413, self._too_large)
            return
        chunks, size, more = [], 0, True
        while more:  # buffer what is allowed; refuse as soon as it is too much
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(send, 413, self._too_large)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _has_nul(body):
            await self._refuse(send, 422, "NUL characters are not allowed")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @property
    def _too_large(self) -> str:
        return f"request body too large (at most {self.limit} bytes)"

    async def _refuse(self, send: Any, status: int, detail: str) -> None:
        payload = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
