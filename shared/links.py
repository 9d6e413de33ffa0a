"""Signed links back into a conversation (the "continue the chat" link in an email).

The link carries the conversation and an HMAC of it, so the storefront can resume that one
conversation without the customer signing in, and nobody can guess another's link.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


def _signature(secret: str, shop_id: str, conversation_id: str) -> str:
    payload = f"{shop_id}:{conversation_id}".encode()
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()[:32]


def continue_chat_url(base_url: str, secret: str, shop_id: str, conversation_id: str) -> str:
    query = urlencode({
        "shop": shop_id,
        "conversation": conversation_id,
        "sig": _signature(secret, shop_id, conversation_id),
    })
    return f"{base_url.rstrip('/')}/chat/continue?{query}"


def valid_signature(secret: str, shop_id: str, conversation_id: str, signature: str) -> bool:
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
    expected = _signature(secret, shop_id, conversation_id).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
