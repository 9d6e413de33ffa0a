"""Ingress events (SPEC §3): what other systems publish into the backbone."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, HttpUrl, StringConstraints, TypeAdapter, model_validator

from shared.contracts.base import (
    Amount,
    ChannelKey,
    Contract,
    Currency,
    CustomerInfo,
    DiscountCode,
    Event,
    EventTime,
    Id,
    MessageText,
    ShopId,
    ShortText,
)


class Attachment(Contract):
    type: Literal["image", "file", "video", "audio"]
    url: HttpUrl


class ChatInbound(Event):
    """A customer message on any channel. Key: `shop_id:channel:thread_ref`."""

    shop_id: ShopId
    channel: ChannelKey
    thread_ref: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    text: MessageText
    sent_at: EventTime
    customer: CustomerInfo | None = None
    visitor_id: Id | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=10)

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.channel}:{self.thread_ref}"


class CartProduct(Contract):
    id: Id
    title: ShortText
    price: Amount


class CartItem(Contract):
    product_id: Id
    title: ShortText
    quantity: Annotated[int, Field(ge=1, le=100_000)]


class CartDiscount(Contract):
    """A discount code applied to the cart, and what it takes off."""

    code: DiscountCode
    amount: Amount


class Cart(Contract):
    currency: Currency
    #: What the items cost, less the discount when one is applied.
    subtotal: Amount
    items: list[CartItem] = Field(default_factory=list, max_length=500)
    discount: CartDiscount | None = None


class CartEvent(Event):
    """A product added to or removed from a visitor's cart, or a discount code applied to it
    (`apply_discount`: no product; the cart carries the code). Key: `shop_id:visitor_id`."""

    shop_id: ShopId
    visitor_id: Id
    action: Literal["add", "remove", "apply_discount"]
    product: CartProduct | None = None
    quantity: Annotated[int, Field(ge=1, le=100_000)] = 1
    cart: Cart
    at: EventTime

    @model_validator(mode="after")
    def _what_changed(self) -> Self:
        if self.action == "apply_discount":
            if self.cart.discount is None:
                raise ValueError("an applied discount is in the cart (cart.discount)")
            if self.product is not None:
                raise ValueError("an applied discount names no product")
        elif self.product is None:
            raise ValueError(f"a cart {self.action!r} names its product")
        return self

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.visitor_id}"


class ActivityEvent(Event):
    """A storefront presence signal. Key: `shop_id:visitor_id`."""

    shop_id: ShopId
    visitor_id: Id
    type: Literal["heartbeat", "page_view", "left"]
    at: EventTime

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.visitor_id}"


class MessengerOptin(Contract):
    user_ref: Id
    page_id: Id


class Tracking(Contract):
    carrier: ShortText | None = None
    number: ShortText | None = None
    url: HttpUrl | None = None
    status: ShortText | None = None


class OrderEvent(Event):
    """An order's life cycle from the shop platform. Key: `shop_id:order_id`."""

    shop_id: ShopId
    order_id: Id
    order_number: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    type: Literal["created", "fulfilled", "shipped", "delivery_update", "delivered", "cancelled"]
    at: EventTime
    customer: CustomerInfo | None = None
    messenger_optin: MessengerOptin | None = None
    tracking: Tracking | None = None
    total_price: Amount | None = None
    currency: Currency | None = None

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.order_id}"


# --- merchant commands (topic inbox.commands, key `shop_id:conversation_id`) ---------------------


class CommandBase(Contract):
    command_id: Id
    shop_id: ShopId
    conversation_id: Id
    staff_id: Id

    @property
    def event_id(self) -> str:
        # Commands are deduplicated by command_id exactly as events are by event_id.
        return self.command_id

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.conversation_id}"


class ReplyCommand(CommandBase):
    type: Literal["reply"]
    text: MessageText | None = None
    product_id: Id | None = None
    discount_code: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    image_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _one_content(self) -> ReplyCommand:
        extras = [x for x in (self.product_id, self.discount_code, self.image_url) if x]
        if len(extras) > 1:
            raise ValueError("a reply carries at most one of product_id, discount_code, image_url")
        if not extras and not (self.text and self.text.strip()):
            raise ValueError("a reply needs text, product_id, discount_code or image_url")
        return self


class AssignCommand(CommandBase):
    type: Literal["assign"]
    assignee_staff_id: Id


class UnassignCommand(CommandBase):
    type: Literal["unassign"]


class SetStatusCommand(CommandBase):
    type: Literal["set_status"]
    status: Literal["open", "closed"]


class SetSubjectCommand(CommandBase):
    type: Literal["set_subject"]
    subject: Annotated[str, StringConstraints(max_length=255)]


class MarkUnreadCommand(CommandBase):
    type: Literal["mark_unread"]


class AddNoteCommand(CommandBase):
    type: Literal["add_note"]
    text: Annotated[str, StringConstraints(min_length=1, max_length=5000)]


class TurnOffOrderUpdatesCommand(CommandBase):
    type: Literal["turn_off_order_updates"]
    order_id: Id


class BlockCommand(CommandBase):
    """Block the conversation's customer: their identities on its channel open or continue no
    conversation in this shop."""

    type: Literal["block"]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class UnblockCommand(CommandBase):
    type: Literal["unblock"]


InboxCommand = Annotated[
    ReplyCommand
    | AssignCommand
    | UnassignCommand
    | SetStatusCommand
    | SetSubjectCommand
    | MarkUnreadCommand
    | AddNoteCommand
    | TurnOffOrderUpdatesCommand
    | BlockCommand
    | UnblockCommand,
    Field(discriminator="type"),
]
INBOX_COMMAND = TypeAdapter(InboxCommand)
