"""Signed links back into a conversation (the "continue the chat" link in an email).

The link names the shop and the conversation and carries a signature of both (detached: the
names are in the link already), so the storefront can resume that one conversation without
the customer signing in, and nobody can make a link to another's.
"""

from __future__ import annotations

from urllib.parse import urlencode

from shared import tokens

#: A link in an email opens its conversation as long as a chat token does.
CONTINUE_LINK = tokens.Purpose("continue-chat", 90 * 24 * 3600)


def continue_chat_url(base_url: str, secret: tokens.Secret, shop_id: str,
                      conversation_id: str) -> str:
    query = urlencode({
        "shop": shop_id,
        "conversation": conversation_id,
        "sig": tokens.detached_signature(secret, CONTINUE_LINK, [shop_id, conversation_id]),
    })
    return f"{base_url.rstrip('/')}/chat/continue?{query}"


def valid_signature(secret: tokens.Secret, shop_id: str, conversation_id: str,
                    signature: str) -> bool:
    return tokens.valid_detached(secret, CONTINUE_LINK, [shop_id, conversation_id], signature)
