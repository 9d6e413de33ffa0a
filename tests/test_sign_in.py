"""Staff sign in to the inbox with their email address: a password or an emailed one-time link,
then an HttpOnly session cookie; changes need the session's CSRF token; attempts are limited;
signing out and being made inactive end the session on the server."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.gateway.auth import CSRF
from services.gateway.signin import rules
from shared import tokens
from shared.config import SignInSettings
from shared.contracts import StaffUpserted
from shared.topics import SHOP_STAFF
from tests.conftest import eventually
from tests.helpers import new_shop, unique

API = "/api/v1"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


# --- the rules --------------------------------------------------------------------------------

@pytest.mark.parametrize(("created", "used", "ends"), [
    (T0, T0, T0 + timedelta(hours=12)),  # just signed in: idle expiry
    (T0, T0 + timedelta(days=3), T0 + timedelta(days=3, hours=12)),  # moved on with use
    (T0, T0 + timedelta(days=6, hours=20), T0 + timedelta(days=7)),  # never past the lifetime
])
def test_session_expiry(created, used, ends):
    assert rules.session_expiry(created, used) == ends


@pytest.mark.parametrize(("environment", "name", "secure"), [
    ("development", "inbox_session", False),
    ("production", "__Host-inbox_session", True),
])
def test_session_cookie_is_secure_outside_development(environment, name, secure):
    assert rules.session_cookie(environment) == rules.Cookie(name, secure)


@pytest.mark.parametrize(("for_email", "from_client", "wait"), [
    (0, 0, None), (4, 29, None), (5, 0, 900), (0, 30, 900),
])
def test_attempt_limits(for_email, from_client, wait):
    limits = SignInSettings(window_seconds=900, attempts_per_email=5, attempts_per_client=30)
    assert rules.retry_after(limits, for_email, from_client) == wait


# --- on the real stack ------------------------------------------------------------------------

def inbox(stack) -> httpx.AsyncClient:
    """A browser-like client: it keeps the cookies the gateway sets."""
    return httpx.AsyncClient(base_url=stack["gateway"].url + API, timeout=30)


async def sign_in(client: httpx.AsyncClient, shop, staff_id: str = "ava") -> dict:
    response = await client.post("/session", json={
        "email": shop.emails[staff_id], "password": shop.passwords[staff_id]})
    assert response.status_code == 200, response.text
    return response.json()


async def test_password_sign_in_gives_an_http_only_session_with_csrf(stack, producer, db,
                                                                     prepared):
    shop = await new_shop(producer, db, with_passwords=True)
    async with inbox(stack) as browser:
        wrong = await browser.post("/session", json={"email": shop.emails["ava"],
                                                     "password": "not her password"})
        unknown = await browser.post("/session", json={"email": "nobody@nowhere.example",
                                                       "password": "whatever"})
        # The same answer for a wrong password and an address nobody has.
        assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json()) == (
            401, {"detail": "wrong email address or password"})
        assert (await browser.get("/me")).status_code == 401

        response = await browser.post("/session", json={
            "email": shop.emails["ava"].upper(), "password": shop.passwords["ava"]})
        assert response.status_code == 200, response.text
        session = response.json()
        assert (session["staff_id"], session["shop_id"]) == ("ava", shop.shop_id)
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("inbox_session=")
        assert {"httponly", "samesite=lax", "path=/"} <= {
            part.strip().lower() for part in cookie.split(";")}
        assert "secure" not in cookie.lower()  # development; Secure elsewhere (rules test)
        token = browser.cookies["inbox_session"]
        assert await db.fetchval("SELECT count(*) FROM staff_sessions WHERE shop_id = $1",
                                 shop.shop_id) == 1
        assert token not in str(await db.fetch("SELECT * FROM staff_sessions"))  # only a hash

        me = await browser.get("/me")
        assert (me.status_code, me.json()["staff_id"]) == (200, "ava")
        assert (await browser.get("/session")).json()["csrf_token"] == session["csrf_token"]

        # A change without the page's CSRF token is refused (another site's form could send
        # the cookie, never the header); with it, it is done.
        reply = {"shortcut": unique("hours"), "body": "We are open 9-17."}
        refused = await browser.post("/saved-replies", json=reply)
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
        forged = await browser.post("/saved-replies", json=reply,
                                    headers={"X-CSRF-Token": session["csrf_token"][:-2] + "xx"})
        assert forged.status_code == 403
        done = await browser.post("/saved-replies", json=reply,
                                  headers={"X-CSRF-Token": session["csrf_token"]})
        assert done.status_code == 201, done.text
        # The page's token keeps working all session long (here: one made an hour ago).
        older = tokens.detached_signature(prepared.link_signing_secret, CSRF,
                                          [rules.token_sha256(browser.cookies["inbox_session"])],
                                          issued_at=int(time.time()) - 3600)
        later = await browser.post("/saved-replies", json={**reply, "shortcut": unique("later")},
                                   headers={"X-CSRF-Token": older})
        assert later.status_code == 201, later.text

        # Signing out ends the session on the server: the old cookie opens nothing any more.
        assert (await browser.delete("/session")).status_code == 204
        assert "inbox_session" not in browser.cookies
        browser.cookies.set("inbox_session", token)
        replayed = await browser.get("/me")
        assert replayed.status_code == 401
        assert replayed.json()["detail"] == "your session has ended: sign in again"
    # API tokens still work for integrations.
    async with httpx.AsyncClient(base_url=stack["gateway"].url + API, headers={
            "Authorization": f"Bearer {shop.tokens['ava']}"}) as integration:
        assert (await integration.post("/saved-replies", json={
            "shortcut": unique("returns"), "body": "30 days."})).status_code == 201


async def test_staff_made_inactive_lose_their_sessions_at_once(stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    async with inbox(stack) as laptop, inbox(stack) as phone:
        await sign_in(laptop, shop, "ben")
        await sign_in(phone, shop, "ben")
        assert (await laptop.get("/me")).status_code == 200
        await producer.send_and_wait(SHOP_STAFF, StaffUpserted(
            event_id=unique("staff"), shop_id=shop.shop_id, staff_id="ben", name="Ben Okafor",
            email=shop.emails["ben"], permissions=["online_store_chat"], active=False,
            at=datetime.now(UTC),
        ))

        async def signed_out() -> bool:
            return all([(await c.get("/me")).status_code == 401 for c in (laptop, phone)])

        await eventually(signed_out)
        assert await db.fetchval("SELECT count(*) FROM staff_sessions WHERE shop_id = $1 AND "
                                 "staff_id = 'ben'", shop.shop_id) == 0
        refused = await laptop.post("/session", json={"email": shop.emails["ben"],
                                                      "password": shop.passwords["ben"]})
        assert refused.status_code == 401


async def test_sign_in_link_by_email_opens_once(stack, producer, db, smtp):
    shop = await new_shop(producer, db, with_passwords=True)
    address = shop.emails["carla"]
    async with inbox(stack) as browser:
        asked = await browser.post("/session/link", json={"email": address})
        assert asked.status_code == 202, asked.text
        nobody = await browser.post("/session/link", json={"email": "nobody@nowhere.example"})
        assert (nobody.status_code, nobody.json()) == (202, asked.json())  # tells nothing

        mails = smtp.to(address)  # sent before the answer
        assert len(mails) == 1 and not smtp.to("nobody@nowhere.example")
        body = mails[0].get_content()
        assert "Carla Nguyen" in body and "within 15 minutes" in body
        url = re.search(r"https?://\S+/inbox/\?sign_in=\S+", body)[0]
        token = parse_qs(urlsplit(url).query)["sign_in"][0]
        # A mail scanner opening the link (GET) only gets the page: the link is not used up.
        page = await browser.get(stack["gateway"].url + "/inbox/?" + urlsplit(url).query)
        assert page.status_code == 200
        assert await db.fetchval("SELECT used_at FROM sign_in_links WHERE shop_id = $1",
                                 shop.shop_id) is None

        redeemed = await browser.post("/session/link/redeem", json={"token": token})
        assert redeemed.status_code == 200, redeemed.text
        assert redeemed.json()["staff_id"] == "carla"
        assert (await browser.get("/me")).json()["staff_id"] == "carla"
        again = await browser.post("/session/link/redeem", json={"token": token})
        assert again.status_code == 401 and "used already" in again.json()["detail"]


async def test_an_address_of_several_shops_chooses_one(stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    await producer.send_and_wait(SHOP_STAFF, StaffUpserted(
        event_id=unique("staff"), shop_id=unique("shop"), staff_id="ava2", name="Ava Lindqvist",
        email=shop.emails["ava"], permissions=[], at=datetime.now(UTC),
        password_argon2id=await db.fetchval(
            "SELECT password_hash FROM staff WHERE shop_id = $1 AND staff_id = 'ava'",
            shop.shop_id),
    ))
    await eventually(lambda: db.fetchval("SELECT 1 FROM staff WHERE staff_id = 'ava2' AND "
                                         "email = $1", shop.emails["ava"]))
    async with inbox(stack) as browser:
        credentials = {"email": shop.emails["ava"], "password": shop.passwords["ava"]}
        choose = await browser.post("/session", json=credentials)
        assert choose.status_code == 409, choose.text
        assert shop.shop_id in [s["shop_id"] for s in choose.json()["shops"]]
        chosen = await browser.post("/session", json={**credentials, "shop_id": shop.shop_id})
        assert (chosen.status_code, chosen.json()["shop_id"]) == (200, shop.shop_id)


async def test_sign_in_attempts_are_limited(stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    async with inbox(stack) as browser:
        for _ in range(SignInSettings().attempts_per_email):
            wrong = await browser.post("/session", json={"email": shop.emails["ava"],
                                                         "password": "guess"})
            assert wrong.status_code == 401
        # Past the limit even the right password waits: a guesser cannot tell it was right.
        limited = await browser.post("/session", json={"email": shop.emails["ava"],
                                                       "password": shop.passwords["ava"]})
        assert limited.status_code == 429, limited.text
        assert int(limited.headers["Retry-After"]) > 0
        assert "too many sign-in attempts" in limited.json()["detail"]
        # Another address is not held back.
        await sign_in(browser, shop, "ben")
