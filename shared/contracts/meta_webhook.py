"""Meta's Messenger webhook body, as the gateway reads it (MESSENGER.md, "Webhooks").

Tolerant of what Meta adds (unknown fields are ignored, ids may come as integers), strict about
the type of every field the gateway reads: a body of the wrong shape is a validation error with
its reason, never an exception further on. The document is read in three steps, so one
malformed entry or item is skipped with its reason and the rest of the delivery still counts:
`WebhookDocument`, then each `Entry`, then each `MessagingItem`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints


def _number_as_text(value: Any) -> Any:
    # Ids are numeric strings, which some senders write as JSON numbers: same id. Text stays text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


MetaId = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    BeforeValidator(_number_as_text),
]
#: Meta's own limits are far lower (a message's text: 2,000 characters); this only bounds work.
MetaText = Annotated[str, StringConstraints(max_length=100_000)]
#: Milliseconds since the epoch.
MetaTime = int | float


class MetaShape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Party(MetaShape):
    id: MetaId | None = None
    user_ref: MetaId | None = None


class QuickReplyAnswer(MetaShape):
    payload: MetaText | None = None


class AttachmentPayload(MetaShape):
    url: MetaText | None = None


class MessageAttachment(MetaShape):
    type: MetaText
    #: Templates and fallbacks carry other payloads (or none): only `url` is read.
    payload: AttachmentPayload | None = None


class Message(MetaShape):
    mid: MetaId | None = None
    text: MetaText | None = None
    is_echo: bool = False
    quick_reply: QuickReplyAnswer | None = None
    attachments: list[MessageAttachment] = Field(default_factory=list, max_length=100)


class Postback(MetaShape):
    mid: MetaId | None = None
    title: MetaText | None = None
    payload: MetaText | None = None


class Optin(MetaShape):
    type: MetaText | None = None
    user_ref: MetaId | None = None
    ref: MetaText | None = None


class Receipt(MetaShape):
    """A delivery or read report: the Page's messages up to `watermark`."""

    mids: list[MetaId] = Field(default_factory=list, max_length=1000)
    watermark: MetaTime | None = None


class PriorMessage(MetaShape):
    source: MetaText | None = None
    identifier: MetaId | None = None


class MessagingItem(MetaShape):
    """One thing that happened in a conversation with the Page (at most one kind of it)."""

    sender: Party | None = None
    recipient: Party | None = None
    timestamp: MetaTime | None = None
    message: Message | None = None
    postback: Postback | None = None
    optin: Optin | None = None
    delivery: Receipt | None = None
    read: Receipt | None = None
    prior_message: PriorMessage | None = None


#: The item kinds read from `messaging`, in the order they are looked for.
ITEM_KINDS = ("message", "postback", "optin", "delivery", "read")


class Entry(MetaShape):
    """One Page's part of a delivery; its items are read one by one (`MessagingItem`)."""

    id: MetaId
    time: MetaTime | None = None
    messaging: list[Any] = Field(default_factory=list, max_length=10_000)


class WebhookDocument(MetaShape):
    object: MetaText
    entry: list[Any] = Field(default_factory=list, max_length=10_000)
