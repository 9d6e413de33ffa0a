"""The request guard: one check of every HTTP request's form, before any handler runs (and so
before authentication: what it refuses is refused whoever sends it).

- the body: at most a size (413; per path prefix, the webhooks' from configuration), UTF-8
  (400), JSON (every body this surface takes is JSON; 422), nested at most `MAX_JSON_DEPTH`
  deep (422), and no text PostgreSQL cannot store (NUL, unpaired surrogates: 422);
- the path and the query string, percent-decoded: UTF-8 (400), no such text either (422).

Every refusal is a JSON `{"detail": ...}` naming where the problem is ("the path …", "the query
string …", "the request body …"), and is counted in `gateway_requests_refused_total{reason}`.
What passes is replayed to the application unchanged, so handlers read bodies as usual.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from prometheus_client import Counter
from pydantic_core import from_json

from shared.storable import SURROGATE, text_problem, value_problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

#: The largest reply (20,000 characters) even with every character JSON-escaped (an emoji is
#: 12 bytes as `\ud83d\ude00`).
API_MAX_BODY_BYTES = 262_144
#: Deeper than any body this surface takes (Meta's webhooks, the deepest, are about 10).
MAX_JSON_DEPTH = 32
_DEEP = f"the request body is nested too deep (at most {MAX_JSON_DEPTH} levels)"
_HIGH, _LOW = rb"\\u[dD][89abAB][0-9a-fA-F]{2}", rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
#: A \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one, or the other way round.
_LONE_SURROGATE = re.compile(_HIGH + rb"(?!" + _LOW + rb")|(?<!" + _HIGH + rb")" + _LOW)

REFUSED = Counter(
    "gateway_requests_refused_total",
    "HTTP requests the request guard refused before any handler, by reason (too_large, "
    "not_utf8, not_json, too_deep, unstorable).",
    ["reason"],
)


class Refusal(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


def _text(raw: bytes, where: str) -> str:
    try:
        text = raw.decode("utf-8")  # strict: also refuses encoded surrogates and overlong forms
    except UnicodeDecodeError:
        raise Refusal(400, "not_utf8", f"{where} is not valid UTF-8") from None
    problem = text_problem(text)
    if problem:
        raise Refusal(422, "unstorable", f"{where}: {problem}")
    return text


def _too_deep(value: Any, limit: int) -> bool:
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:  # breadth first, containers only: no recursion, stops past the limit
        depth += 1
        if depth > limit:
            return True
        level = [child for item in level
                 for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, dict | list)]
    return False


def check_url(scope: Scope) -> None:
    path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    _text(unquote_to_bytes(path), "the path")
    query = scope.get("query_string") or b""
    if query:
        _text(unquote_to_bytes(query.replace(b"+", b" ")), "the query string")


def check_body(body: bytes) -> None:
    if not body:
        return
    _text(body, "the request body")
    try:
        # Rust's parser: bounded recursion, and strict (no NaN, no lone surrogate escapes).
        value = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        if "recursion limit" in str(exc):
            raise Refusal(422, "too_deep", _DEEP) from None
        if _LONE_SURROGATE.search(body):  # said plainly: the parser's words are about escapes
            raise Refusal(422, "unstorable", f"the request body: {SURROGATE}") from None
        raise Refusal(422, "not_json", f"the request body is not valid JSON: {exc}") from None
    if _too_deep(value, MAX_JSON_DEPTH):
        raise Refusal(422, "too_deep", _DEEP)
    # The parser refused raw control characters and lone surrogate escapes: a NUL can only have
    # come from a \u0000 escape, so the strings are looked at only when one may be there.
    problem = value_problem(value) if b"\\u0000" in body else None
    if problem:
        raise Refusal(422, "unstorable", f"the request body: {problem}")



class RequestGuard:
    def __init__(
        self, app: ASGIApp, limits: Sequence[tuple[str, int]] = (),
        default_limit: int = API_MAX_BODY_BYTES,
    ) -> None:
        """`limits`: (path prefix, largest body in bytes), the first matching prefix wins;
        `default_limit` for every other path."""
        self.app, self.limits, self.default_limit = app, list(limits), default_limit

    def _limit(self, path: str) -> int:
        return next((limit for prefix, limit in self.limits if path.startswith(prefix)),
                    self.default_limit)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_url(scope)
            body = await self._read(scope, receive, self._limit(scope["path"]))
            check_body(body)
        except Refusal as refusal:
            REFUSED.labels(refusal.reason).inc()
            await _answer(send, refusal.status, refusal.detail)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the client's disconnect, for streams

        await self.app(scope, replay, send)

    @staticmethod
    async def _read(scope: Scope, receive: Any, limit: int) -> bytes:
        too_large = Refusal(413, "too_large", f"the request body is too large (at most {limit} "
                                              "bytes)")
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks, size, more = [], 0, True
        while more:  # buffer what is allowed; refuse as soon as it is too much
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


async def _answer(send: Any, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
