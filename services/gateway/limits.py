"""Guards on the merchant API's requests, applied before any handler: a size limit on bodies
(413 past it), and no NUL character anywhere (PostgreSQL text cannot hold one: 422). A NUL is
only noted here (`has_nul` in the request's state) and refused once the caller is known, so an
unauthenticated request is always a 401, whatever it carries."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

#: The largest reply (20,000 characters) with room for JSON escaping.
API_MAX_BODY_BYTES = 131_072


def _has_nul(raw: bytes) -> bool:
    lowered = raw.lower()
    return b"\x00" in raw or b"%00" in lowered or b"\\u0000" in lowered


def refuse_nul(state: Any) -> None:
    """After authentication: a request the guard found a NUL in is refused (422)."""
    if getattr(state, "has_nul", False):
        raise HTTPException(422, "NUL characters are not allowed")


class RequestGuard:
    def __init__(self, app: ASGIApp, prefix: str = "/api/", limit: int = API_MAX_BODY_BYTES):
        self.app, self.prefix, self.limit = app, prefix, limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        has_nul = _has_nul(scope.get("query_string", b"")) or "\x00" in scope["path"]
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
        if has_nul or _has_nul(body):
            scope.setdefault("state", {})["has_nul"] = True
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
