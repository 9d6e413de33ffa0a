"""The sign-in link email (built without I/O)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import urlencode

from services.gateway.signin.rules import LINK_LIFETIME


def link_url(public_base_url: str, token: str) -> str:
    # The inbox page redeems the token by a POST: a mail scanner fetching the link (GET) opens
    # the page but cannot use the link up.
    return f"{public_base_url.rstrip('/')}/inbox/?{urlencode({'sign_in': token})}"


def sign_in_email(
    *, from_address: str, domain: str, to_name: str, to_address: str,
    links: list[tuple[str, str]],
) -> EmailMessage:
    """`links`: (shop name, sign-in URL) for each shop the address signs in to."""
    minutes = int(LINK_LIFETIME.total_seconds() // 60)
    lines = [f"Hello {to_name},", "", "Someone (we hope you) asked to sign in to the inbox."]
    if len(links) == 1:
        lines += ["Open this link to sign in:", "", links[0][1]]
    else:
        lines += ["Open the link of the shop you want to sign in to:", ""]
        for shop_name, url in links:
            lines += [f"{shop_name}:", url, ""]
    lines += [
        "",
        f"The link works once, within {minutes} minutes. If you did not ask for it, ignore this "
        "email: nobody can sign in without opening it.",
    ]
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = formataddr((to_name, to_address))
    message["Subject"] = "Your sign-in link for the inbox"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content("\n".join(lines))
    return message
