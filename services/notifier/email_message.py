"""The email a customer receives: built by a plain function, no I/O."""

from __future__ import annotations

import html
import unicodedata
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from shared.contracts import OutboundMessage


def header_text(value: str | None) -> str:
    """Text safe in a header: one line, no control characters (no header injection)."""
    printable = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in value or "")
    return " ".join(printable.split())


def email_message_id(message_id: str, domain: str) -> str:
    """The Message-ID header of the email carrying this reply (stable, so threads can cite it)."""
    return f"<{message_id}@{domain}>"


def thread_root_id(conversation_id: str, domain: str) -> str:
    """A Message-ID every email of the conversation refers to, so they always form one thread,
    whatever order they are sent in."""
    return f"<conversation-{conversation_id}@{domain}>"


def build_email(
    message: OutboundMessage,
    *,
    from_address: str,
    message_id_domain: str,
    earlier: list[str],
    continue_url: str,
) -> EmailMessage:
    """`earlier`: the Message-IDs of the conversation's emails already sent, oldest first. With
    the thread root they make this email part of the conversation's one thread."""
    if not message.recipient.email:
        raise ValueError("the customer gave no email address")
    shop = header_text(message.shop_name) or "the shop"
    email = EmailMessage()
    email["From"] = formataddr((shop, from_address))
    email["To"] = formataddr((header_text(message.recipient.name), message.recipient.email))
    subject = f"Your conversation with {shop}"
    email["Subject"] = f"Re: {subject}" if earlier else subject
    email["Date"] = format_datetime(message.created_at)
    email["Message-ID"] = email_message_id(message.message_id, message_id_domain)
    references = [thread_root_id(message.conversation_id, message_id_domain), *earlier]
    email["In-Reply-To"] = references[-1]
    email["References"] = " ".join(references)
    email["Auto-Submitted"] = "auto-generated" if message.kind != "human_reply" else "no"
    email.set_content(_text(message, continue_url))
    email.add_alternative(_html(message, continue_url), subtype="html")
    return email


def _text(message: OutboundMessage, continue_url: str) -> str:
    content = message.content
    lines = [content.text or ""]
    if content.product:
        lines.append(f"{content.product['title']}: {content.product.get('url') or ''}".strip())
    if content.discount:
        lines.append(f"Discount code {content.discount['code']}: {content.discount['url']}")
    if content.image_url:
        lines.append(f"Image: {content.image_url}")
    lines += ["", f"Continue the chat: {continue_url}"]
    return "\n".join(line for line in lines if line is not None).strip() + "\n"


def _html(message: OutboundMessage, continue_url: str) -> str:
    content = message.content
    e = html.escape
    parts = []
    if content.text:
        paragraphs = e(content.text).split("\n")
        parts.append("<p>" + "<br>".join(paragraphs) + "</p>")
    if content.product:
        url = content.product.get("url") or continue_url
        parts.append(f'<p><a href="{e(url)}">{e(content.product["title"])}</a> '
                     f'{e(str(content.product.get("price", "")))} '
                     f'{e(str(content.product.get("currency", "")))}</p>')
    if content.discount:
        parts.append(f'<p><a href="{e(content.discount["url"])}">Apply discount code '
                     f'{e(content.discount["code"])}</a></p>')
    if content.image_url:
        parts.append(f'<p><img src="{e(content.image_url)}" alt="Image from the shop" '
                     'style="max-width:100%"></p>')
    parts.append(f'<p><a href="{e(continue_url)}">Continue the chat</a></p>')
    return "<!doctype html><html><body>" + "\n".join(parts) + "</body></html>"
