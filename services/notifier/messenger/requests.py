"""Send API request bodies for a planned message: plain functions, no I/O.

`POST /{version}/{page_id}/messages` with `{"recipient": {"id": PSID} | {"user_ref": REF},
"messaging_type", ["tag"], "message"}`. A message with text and an image is two requests (a
Messenger message carries text or one attachment). An order update outside the window is a
utility template: `"messaging_type": "UTILITY"` and `"message": {"template": {"name",
"language": {"code"}, "components": [{"type": "body", "parameters": [...]}]}}`.
"""

from __future__ import annotations

from typing import Any

from services.notifier.messenger.planner import ALLOWED_TAGS, RETIRED_TAGS, SendPlan
from shared.contracts import MessengerOutbound
from shared.messenger import TEMPLATE_LANGUAGE, order_update_template

#: Meta's limit on a text message.
TEXT_LIMIT = 2000


class UnsendableMessage(ValueError):
    """The message cannot be expressed as a Send API request; the text says why."""


def recipient(psid: str | None, user_ref: str | None) -> dict[str, str]:
    if psid:
        return {"id": psid}
    if user_ref:
        return {"user_ref": user_ref}
    raise UnsendableMessage("no Messenger recipient (neither a PSID nor a user_ref)")


def _texts(message: MessengerOutbound) -> str:
    content = message.content
    lines = [content.text.strip()] if content.text and content.text.strip() else []
    if content.product:
        product = content.product
        url = product.get("url")
        lines.append(f"{product.get('title')}: {url}" if url else str(product.get("title")))
    if content.discount:
        lines.append(f"Use code {content.discount.get('code')}: {content.discount.get('url')}")
    return "\n".join(lines)


def _template_message(message: MessengerOutbound) -> dict[str, Any]:
    update = message.order_update
    if update is None:
        raise UnsendableMessage("only order updates go as utility templates")
    template = order_update_template(update.update, update.order_number, update.tracking_number)
    return {"template": {
        "name": template.name,
        "language": {"code": TEMPLATE_LANGUAGE},
        "components": [{
            "type": "body",
            "parameters": [{"type": "text", "text": p} for p in template.parameters],
        }],
    }}


def send_bodies(
    message: MessengerOutbound, plan: SendPlan, to: dict[str, str]
) -> list[dict[str, Any]]:
    """The request bodies, in order, that deliver `message` as `plan` says."""
    if plan.decision != "send" or plan.messaging_type is None:
        raise UnsendableMessage(f"nothing to send: {plan.reason}")
    if plan.tag is not None and (plan.tag in RETIRED_TAGS or plan.tag not in ALLOWED_TAGS):
        raise UnsendableMessage(f"the message tag {plan.tag} is retired or not allowed")
    base: dict[str, Any] = {"recipient": to, "messaging_type": plan.messaging_type}
    if plan.tag:
        base["tag"] = plan.tag

    messages: list[dict[str, Any]] = []
    if plan.template:
        messages.append(_template_message(message))
    else:
        text = _texts(message)
        if len(text) > TEXT_LIMIT:
            raise UnsendableMessage(
                f"Messenger messages are limited to {TEXT_LIMIT} characters ({len(text)} given)"
            )
        if text:
            body: dict[str, Any] = {"text": text}
            if message.quick_replies:
                body["quick_replies"] = [
                    {"content_type": "text", "title": q.title, "payload": q.payload}
                    for q in message.quick_replies
                ]
            messages.append(body)
        if message.content.image_url:
            messages.append({"attachment": {
                "type": "image", "payload": {"url": message.content.image_url, "is_reusable": True},
            }})
    if not messages:
        raise UnsendableMessage("the message has nothing Messenger can show")
    return [{**base, "message": m} for m in messages]
