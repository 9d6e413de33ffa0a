"""A local stand-in for Meta's Graph API (Messenger), for `make run` and the tests.

A real HTTP server. As Meta, it serves the Send API (`POST /{version}/{page_id}/messages`),
keeps the messaging window per Page and person (opened by the person's messages, postbacks and
checkout opt-ins made through it), accepts and records what Meta would accept, and answers the
rest with Meta's own error envelope and codes:

| request                                         | answer                                    |
|-------------------------------------------------|-------------------------------------------|
| wrong or revoked Page access token              | 190                                       |
| more calls per second than the Page may make    | 613                                       |
| retired tag (POST_PURCHASE_UPDATE, …), bad body | 100                                       |
| unknown PSID or user_ref                        | 100 / 2018001                             |
| person blocked the Page                         | 551 / 1545041                             |
| HUMAN_AGENT from a Page not approved for it     | 10 (no subcode: a permission)             |
| RESPONSE/UPDATE after 24 h, HUMAN_AGENT after 7 days, a template to a stranger | 10 / 2018278 |
| a fault queued by the test (`/admin/pages/{page}/faults`) | that error                      |

As the customer, it sends signed webhooks (`X-Hub-Signature-256` with the app secret) to the
gateway: a message (`/customer/message`), a tap on a postback such as the "Order update
settings" menu (`/customer/postback`), a quick-reply answer (`/customer/message` with
`quick_reply_payload`), the checkout checkbox opt-in (`/customer/optin`). The shop platform's
side of checkout (the `orders.events` event with `messenger_optin`) is not Meta's business:
whoever plays the shop publishes it.

Its clock can be moved forward (`POST /admin/clock/advance {"hours": 30}`), like the notifier's
(`PUT /dev/clock`), so "30 hours later" is a call, not a wait.

    python -m inbox.dev.graph_api --port 8990 --app-secret S --verify-token T \\
        --webhook-url http://127.0.0.1:8080/webhooks/messenger --page 1001:token-1001:human_agent
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import re
import signal
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shared.http import HttpServer
from shared.messenger import UTILITY_TEMPLATES

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
RETIRED_TAGS = {"POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE"}
KNOWN_TAGS = {"HUMAN_AGENT"}
MESSAGING_TYPES = {"RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY"}
_VERSION = re.compile(r"^v\d+\.\d+$")


class GraphError(Exception):
    def __init__(self, code: int, message: str, subcode: int | None = None, status: int = 400):
        super().__init__(message)
        self.code, self.subcode, self.message, self.status = code, subcode, message, status

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": "OAuthException",
            "code": self.code,
            "fbtrace_id": uuid.uuid4().hex[:11].upper(),
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}


def outside_window() -> GraphError:
    return GraphError(10, "(#10) This message is sent outside of allowed window.", 2018278)


@dataclass
class Person:
    psid: str
    last_action_at: datetime | None = None
    blocked: bool = False
    #: Checkbox opt-ins not yet reported with `prior_message` (newest last).
    unannounced_refs: list[str] = field(default_factory=list)


@dataclass
class UserRef:
    user_ref: str
    psid: str
    optin_at: datetime


@dataclass
class Page:
    page_id: str
    access_token: str
    human_agent_approved: bool = False
    templates: dict[str, int] = field(
        default_factory=lambda: {name: n for name, (_, n) in UTILITY_TEMPLATES.items()}
    )
    people: dict[str, Person] = field(default_factory=dict)
    user_refs: dict[str, UserRef] = field(default_factory=dict)
    faults: deque[GraphError] = field(default_factory=deque)
    calls: deque[float] = field(default_factory=deque)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class GraphStandIn:
    def __init__(
        self, app_secret: str, verify_token: str = "", webhook_url: str | None = None,
        rate_limit: int = 300, strangers_just_wrote: bool = False,
    ) -> None:
        self.app_secret = app_secret
        #: Take a PSID the Page never heard of for a person who has just written (a load
        #: generator's customers reach the backbone directly, not through this stand-in).
        self.strangers_just_wrote = strangers_just_wrote
        self.verify_token = verify_token
        self.webhook_url = webhook_url
        self.rate_limit = rate_limit
        self.offset = timedelta(0)
        self.pages: dict[str, Page] = {}
        self.sends: list[dict[str, Any]] = []
        self.webhooks: list[tuple[bytes, str]] = []

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def page(self, page_id: str) -> Page:
        page = self.pages.get(page_id)
        if page is None:
            raise HTTPException(404, f"no Page {page_id} (register it with PUT /admin/pages/…)")
        return page

    # --- the Send API -----------------------------------------------------------------------------

    def send(self, page_id: str, token: str | None, body: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "page_id": page_id, "at": self.now().isoformat(), "request": body,
            "recipient": body.get("recipient") if isinstance(body, dict) else None,
            "messaging_type": body.get("messaging_type") if isinstance(body, dict) else None,
            "tag": body.get("tag") if isinstance(body, dict) else None,
            "message": body.get("message") if isinstance(body, dict) else None,
        }
        self.sends.append(record)
        try:
            result = self._send(page_id, token, body)
        except GraphError as error:
            record.update(ok=False, error=error.body()["error"])
            raise
        record.update(ok=True, error=None, message_id=result["message_id"])
        return result

    def _send(self, page_id: str, token: str | None, body: Any) -> dict[str, Any]:
        page = self.pages.get(page_id)
        if page is None or not token or not hmac.compare_digest(token, page.access_token):
            raise GraphError(190, "Error validating access token: The session has been "
                             "invalidated because the user changed their password or Facebook "
                             "has changed the session for security reasons.", 460)
        if page.faults:
            raise page.faults.popleft()
        now_real = time.monotonic()
        while page.calls and now_real - page.calls[0] > 1.0:
            page.calls.popleft()
        if len(page.calls) >= self.rate_limit:
            raise GraphError(613, "(#613) Calls to this api have exceeded the rate limit.")
        page.calls.append(now_real)
        if not isinstance(body, dict):
            raise GraphError(100, "(#100) The request body must be a JSON object")
        recipient = body.get("recipient")
        if not isinstance(recipient, dict) or not (recipient.get("id") or
                                                   recipient.get("user_ref")):
            raise GraphError(100, "(#100) param recipient must be non-empty.")
        if "sender_action" in body:
            if "message" in body:
                raise GraphError(100, "(#100) sender_action cannot be sent with message")
            return {"recipient_id": recipient.get("id")}
        messaging_type, tag = body.get("messaging_type"), body.get("tag")
        if messaging_type not in MESSAGING_TYPES:
            raise GraphError(100, "(#100) messaging_type must be one of RESPONSE, UPDATE, "
                             "MESSAGE_TAG, UTILITY")
        if tag in RETIRED_TAGS:
            raise GraphError(100, f"(#100) Invalid parameter: the tag {tag} was retired on "
                             "2026-04-27")
        if (messaging_type == "MESSAGE_TAG") != (tag is not None) or (tag and
                                                                      tag not in KNOWN_TAGS):
            raise GraphError(100, "(#100) Invalid parameter: tag")
        message = body.get("message")
        self._check_message(page, messaging_type, message)

        person = self._recipient(page, recipient)
        if person.blocked:
            raise GraphError(551, "This person isn't available right now.", 1545041)
        opened = self._window_opened(page, person)
        elapsed = None if opened is None else self.now() - opened
        if messaging_type in ("RESPONSE", "UPDATE"):
            if elapsed is None or elapsed >= STANDARD_WINDOW:
                raise outside_window()
        elif messaging_type == "MESSAGE_TAG":
            if not page.human_agent_approved:
                raise GraphError(10, "(#10) Application does not have permission for this "
                                 "action")
            if elapsed is None or elapsed >= HUMAN_AGENT_WINDOW:
                raise outside_window()
        elif elapsed is None:  # UTILITY: only to someone who opted in or wrote to the Page
            raise outside_window()
        result = {"message_id": f"m_{uuid.uuid4().hex}"}
        if recipient.get("id"):
            result["recipient_id"] = person.psid
        return result

    def _check_message(self, page: Page, messaging_type: str, message: Any) -> None:
        if not isinstance(message, dict) or not message:
            raise GraphError(100, "(#100) param message must be non-empty.")
        if messaging_type == "UTILITY":
            template = message.get("template")
            if not isinstance(template, dict):
                raise GraphError(100, "(#100) A utility message needs a template")
            name = template.get("name")
            if name not in page.templates:
                raise GraphError(100, f"(#100) Template {name!r} does not exist for this Page")
            params = [p.get("text") for c in template.get("components") or []
                      if c.get("type") == "body" for p in c.get("parameters") or []]
            if len(params) != page.templates[name] or not all(params):
                raise GraphError(100, f"(#100) Template {name!r} takes {page.templates[name]} "
                                 "non-empty parameters")
            return
        if "template" in message:
            raise GraphError(100, "(#100) Utility templates need messaging_type UTILITY")
        text, attachment = message.get("text"), message.get("attachment")
        if bool(text) == bool(attachment):
            raise GraphError(100, "(#100) message must have text or an attachment")
        if text and len(text) > 2000:
            raise GraphError(100, "(#100) param message[text] must be at most 2000 characters")
        for reply in message.get("quick_replies") or []:
            if len(str(reply.get("title", ""))) > 20:
                raise GraphError(100, "(#100) quick_replies title is limited to 20 characters")

    def _recipient(self, page: Page, recipient: dict[str, Any]) -> Person:
        if recipient.get("id"):
            psid = str(recipient["id"])
            if self.strangers_just_wrote and psid not in page.people:
                page.people[psid] = Person(psid, last_action_at=self.now())
            person = page.people.get(psid)
            if person is None:
                raise GraphError(100, "(#100) No matching user found", 2018001)
            return person
        ref = page.user_refs.get(str(recipient["user_ref"]))
        if ref is None:
            raise GraphError(100, "(#100) No matching user found", 2018001)
        return page.people[ref.psid]

    def _window_opened(self, page: Page, person: Person) -> datetime | None:
        times = [r.optin_at for r in page.user_refs.values() if r.psid == person.psid]
        if person.last_action_at:
            times.append(person.last_action_at)
        return max(times) if times else None

    # --- the customer -----------------------------------------------------------------------------

    def person(self, page: Page, psid: str | None) -> Person:
        psid = psid or str(uuid.uuid4().int)[:16]
        return page.people.setdefault(psid, Person(psid))

    def _entry(self, page: Page, at: datetime, item: dict[str, Any]) -> dict[str, Any]:
        return {"object": "page", "entry": [{"id": page.page_id, "time": _ms(at),
                                             "messaging": [item]}]}

    def _acted(self, page: Page, person: Person, at: datetime, item: dict[str, Any]) -> None:
        person.last_action_at = at
        if person.unannounced_refs:
            item["prior_message"] = {"source": "checkbox_plugin",
                                     "identifier": person.unannounced_refs[-1]}
            person.unannounced_refs.clear()

    def message_webhook(
        self, page: Page, psid: str | None, text: str | None, quick_reply_payload: str | None,
        attachments: list[dict[str, Any]], mid: str | None,
    ) -> tuple[dict[str, Any], str, str]:
        person = self.person(page, psid)
        at = self.now()
        mid = mid or f"m_{uuid.uuid4().hex}"
        message: dict[str, Any] = {"mid": mid}
        if text:
            message["text"] = text
        if quick_reply_payload:
            message["quick_reply"] = {"payload": quick_reply_payload}
        if attachments:
            message["attachments"] = attachments
        item = {"sender": {"id": person.psid}, "recipient": {"id": page.page_id},
                "timestamp": _ms(at), "message": message}
        self._acted(page, person, at, item)
        return self._entry(page, at, item), person.psid, mid

    def postback_webhook(
        self, page: Page, psid: str, payload: str, title: str
    ) -> dict[str, Any]:
        person = self.person(page, psid)
        at = self.now()
        item = {"sender": {"id": person.psid}, "recipient": {"id": page.page_id},
                "timestamp": _ms(at), "postback": {"title": title, "payload": payload,
                                                   "mid": f"m_{uuid.uuid4().hex}"}}
        self._acted(page, person, at, item)
        return self._entry(page, at, item)

    def optin_webhook(
        self, page: Page, user_ref: str, psid: str | None, ref: str | None
    ) -> tuple[dict[str, Any], str]:
        person = self.person(page, psid)
        at = self.now()
        page.user_refs[user_ref] = UserRef(user_ref, person.psid, at)
        person.unannounced_refs.append(user_ref)
        optin: dict[str, Any] = {"type": "checkbox_plugin", "user_ref": user_ref}
        if ref:
            optin["ref"] = ref
        item = {"recipient": {"id": page.page_id}, "timestamp": _ms(at), "optin": optin}
        return self._entry(page, at, item), person.psid

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    async def deliver(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Sign and POST a webhook to the gateway, as Meta does; remember it for redelivery."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.webhooks.append((body, self.sign(body)))
        return await self.redeliver(len(self.webhooks) - 1)

    async def redeliver(self, delivery_id: int) -> dict[str, Any]:
        if not self.webhook_url:
            raise HTTPException(409, "no webhook URL set (PUT /admin/webhook)")
        body, signature = self.webhooks[delivery_id]
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(self.webhook_url, content=body, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": signature})
        return {"delivery_id": delivery_id, "status": response.status_code,
                "answer": response.text[:500]}


# --- HTTP ----------------------------------------------------------------------------------------


class PageIn(BaseModel):
    access_token: str = Field(min_length=1)
    human_agent_approved: bool = False
    templates: dict[str, int] | None = None


class FaultIn(BaseModel):
    code: int
    subcode: int | None = None
    message: str | None = None
    count: int = Field(default=1, ge=1, le=1000)


class BlockIn(BaseModel):
    blocked: bool = True


class ClockIn(BaseModel):
    offset_seconds: float = Field(ge=0)


class AdvanceIn(BaseModel):
    hours: float = Field(default=0, ge=0)
    seconds: float = Field(default=0, ge=0)


class WebhookIn(BaseModel):
    url: str


class MessageIn(BaseModel):
    page_id: str
    psid: str | None = None
    text: str | None = None
    quick_reply_payload: str | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    mid: str | None = None


class PostbackIn(BaseModel):
    page_id: str
    psid: str
    payload: str
    title: str = "Order update settings"


class OptinIn(BaseModel):
    page_id: str
    user_ref: str = Field(default_factory=lambda: f"ref-{uuid.uuid4().hex[:16]}")
    psid: str | None = None
    ref: str | None = None


_FAULT_MESSAGES = {
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: "(#10) Application does not have permission for this action",
    100: "(#100) Invalid parameter",
    190: "Error validating access token",
    551: "This person isn't available right now.",
    613: "(#613) Calls to this api have exceeded the rate limit.",
}


def create_app(graph: GraphStandIn) -> FastAPI:
    app = FastAPI(title="Graph API stand-in (Messenger)")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/{version}/{page_id}/messages")
    async def send_api(version: str, page_id: str, request: Request) -> JSONResponse:
        if not _VERSION.match(version):
            error = GraphError(100, f"Unknown path components: /{version}/{page_id}/messages",
                               2500)
            return JSONResponse(error.body(), error.status)
        token = request.query_params.get("access_token")
        if token is None and request.headers.get("authorization", "").startswith("Bearer "):
            token = request.headers["authorization"].removeprefix("Bearer ")
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        try:
            return JSONResponse(graph.send(page_id, token, body))
        except GraphError as error:
            return JSONResponse(error.body(), 500 if error.code == 2 else error.status)

    # --- admin --------------------------------------------------------------------------------

    @app.put("/admin/pages/{page_id}")
    async def put_page(page_id: str, body: PageIn) -> dict[str, Any]:
        page = graph.pages.get(page_id)
        if page is None:
            page = graph.pages[page_id] = Page(page_id, body.access_token)
        page.access_token = body.access_token
        page.human_agent_approved = body.human_agent_approved
        if body.templates is not None:
            page.templates = dict(body.templates)
        return {"page_id": page_id, "human_agent_approved": page.human_agent_approved,
                "templates": page.templates}

    @app.post("/admin/pages/{page_id}/faults")
    async def add_fault(page_id: str, body: FaultIn) -> dict[str, Any]:
        page = graph.page(page_id)
        message = body.message or _FAULT_MESSAGES.get(body.code, "An error occurred")
        for _ in range(body.count):
            page.faults.append(GraphError(body.code, message, body.subcode))
        return {"page_id": page_id, "queued": len(page.faults)}

    @app.post("/admin/pages/{page_id}/people/{psid}/block")
    async def block(page_id: str, psid: str, body: BlockIn) -> dict[str, Any]:
        person = graph.person(graph.page(page_id), psid)
        person.blocked = body.blocked
        return {"psid": psid, "blocked": person.blocked}

    @app.get("/admin/sends")
    async def sends(page_id: str | None = None, ok: bool | None = None) -> list[dict[str, Any]]:
        return [s for s in graph.sends
                if (page_id is None or s["page_id"] == page_id)
                and (ok is None or s.get("ok") == ok)]

    @app.get("/admin/clock")
    async def get_clock() -> dict[str, Any]:
        return {"now": graph.now().isoformat(), "offset_seconds": graph.offset.total_seconds()}

    @app.put("/admin/clock")
    async def set_clock(body: ClockIn) -> dict[str, Any]:
        graph.offset = timedelta(seconds=body.offset_seconds)
        return await get_clock()

    @app.post("/admin/clock/advance")
    async def advance(body: AdvanceIn) -> dict[str, Any]:
        graph.offset += timedelta(hours=body.hours, seconds=body.seconds)
        return await get_clock()

    @app.put("/admin/webhook")
    async def set_webhook(body: WebhookIn) -> dict[str, Any]:
        graph.webhook_url = body.url
        return {"url": body.url}

    @app.post("/admin/webhooks/{delivery_id}/redeliver")
    async def redeliver(delivery_id: int) -> dict[str, Any]:
        if not 0 <= delivery_id < len(graph.webhooks):
            raise HTTPException(404, "no such webhook delivery")
        return await graph.redeliver(delivery_id)

    @app.post("/admin/subscribe")
    async def subscribe() -> dict[str, Any]:
        """Meta's verification handshake against the webhook URL."""
        if not graph.webhook_url:
            raise HTTPException(409, "no webhook URL set")
        challenge = uuid.uuid4().hex
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(graph.webhook_url, params={
                "hub.mode": "subscribe", "hub.verify_token": graph.verify_token,
                "hub.challenge": challenge})
        return {"verified": response.status_code == 200 and response.text == challenge,
                "status": response.status_code}

    # --- the customer -------------------------------------------------------------------------

    @app.post("/customer/message")
    async def customer_message(body: MessageIn) -> dict[str, Any]:
        payload, psid, mid = graph.message_webhook(
            graph.page(body.page_id), body.psid, body.text, body.quick_reply_payload,
            body.attachments, body.mid)
        return {"psid": psid, "mid": mid, **await graph.deliver(payload)}

    @app.post("/customer/postback")
    async def customer_postback(body: PostbackIn) -> dict[str, Any]:
        payload = graph.postback_webhook(graph.page(body.page_id), body.psid, body.payload,
                                         body.title)
        return {"psid": body.psid, **await graph.deliver(payload)}

    @app.post("/customer/optin")
    async def customer_optin(body: OptinIn) -> dict[str, Any]:
        payload, psid = graph.optin_webhook(graph.page(body.page_id), body.user_ref, body.psid,
                                            body.ref)
        return {"psid": psid, "user_ref": body.user_ref, **await graph.deliver(payload)}

    return app


async def serve(graph: GraphStandIn, host: str, port: int) -> None:
    http = HttpServer(create_app(graph), host, port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, http.stop)
    await http.serve()


def main() -> None:
    parser = argparse.ArgumentParser(description="A local stand-in for Meta's Graph API.")
    parser.add_argument("--port", type=int, default=8990)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--webhook-url", help="where webhooks go (the gateway's)")
    parser.add_argument("--app-secret", default="development-app-secret")
    parser.add_argument("--verify-token", default="")
    parser.add_argument("--rate-limit", type=int, default=300, help="Send API calls/s per Page")
    parser.add_argument("--page", action="append", default=[],
                        help="PAGE_ID:ACCESS_TOKEN[:human_agent], repeatable")
    args = parser.parse_args()
    graph = GraphStandIn(args.app_secret, args.verify_token, args.webhook_url, args.rate_limit)
    for spec in args.page:
        page_id, token, *flags = spec.split(":")
        graph.pages[page_id] = Page(page_id, token, human_agent_approved="human_agent" in flags)
    asyncio.run(serve(graph, args.host, args.port))


if __name__ == "__main__":
    main()
