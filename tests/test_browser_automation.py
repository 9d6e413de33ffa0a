"""Chat settings in the inbox (headless Chromium, real stack): hours, away message and instant
answers set through the dialog, refused with the server's reason, kept across a reload;
read-only without the messaging permission; and automated replies on a conversation's timeline
marked as automated, never as a staff member's."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from shared.hours import DAYS
from tests.helpers import new_shop, open_conversation
from tests.test_api_support import client
from tests.test_browser_support import UI_TIMEOUT_MS, expect, merchant_page, requires_browser

pytestmark = [requires_browser, pytest.mark.timeout(240)]

AWAY = "We're out on the trail: back on Monday at nine, {{ customer_first_name }}."
SHIPPING = "We ship to all of Scandinavia in 2-4 days; free over 50 EUR."


async def _open_settings(inbox):
    await inbox.get_by_role("button", name="Chat settings").click()
    dialog = inbox.get_by_role("dialog", name="Chat settings")
    await expect(dialog).to_be_visible()
    # Loaded: the status line says whether the shop is staffed now.
    await expect(dialog.locator("#chat-status")).to_have_text(re.compile(r"(Available|Away) now"),
                                                              timeout=UI_TIMEOUT_MS)
    return dialog


async def test_chat_hours_and_an_instant_answer_set_in_the_dialog_are_kept(
        browser, stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    gateway = stack["gateway"].url
    inbox = await merchant_page(browser, gateway, shop, "ava")
    dialog = await _open_settings(inbox)
    # A new shop: always available, every instant answer off.
    await expect(dialog.get_by_label("Always available")).to_be_checked()
    await expect(dialog.locator("#chat-status")).to_have_text("Available now.")
    await expect(dialog.get_by_role("group", name="Weekly hours")).to_be_hidden()
    await expect(dialog.get_by_role("switch")).to_have_count(10)
    for switch in await dialog.get_by_role("switch").all():
        await expect(switch).not_to_be_checked()

    # Set hours: Monday split in two, a Friday night shift into Saturday, Tuesday mistyped.
    await dialog.get_by_label("Set hours").check()
    week = dialog.get_by_role("group", name="Weekly hours")
    await expect(week).to_be_visible()
    await expect(week.locator("[data-day=mon]")).to_contain_text("Closed")
    await dialog.get_by_role("button", name="Add hours on Monday").click()
    await expect(dialog.get_by_label("Monday from", exact=True)).to_have_value("09:00")
    await expect(dialog.get_by_label("Monday from", exact=True)).to_be_focused()
    await dialog.get_by_role("button", name="Add hours on Monday").click()
    for label, value in [("Monday range 1 from", "09:00"), ("Monday range 1 to", "12:00"),
                         ("Monday range 2 from", "13:00"), ("Monday range 2 to", "17:30")]:
        await dialog.get_by_label(label, exact=True).fill(value)
    await dialog.get_by_role("button", name="Add hours on Friday").click()
    await dialog.get_by_label("Friday from", exact=True).fill("22:00")
    await dialog.get_by_label("Friday to", exact=True).fill("24:00")
    await dialog.get_by_role("button", name="Add hours on Saturday").click()
    await dialog.get_by_label("Saturday from", exact=True).fill("00:00")
    await dialog.get_by_label("Saturday to", exact=True).fill("02:00")
    await dialog.get_by_role("button", name="Add hours on Tuesday").click()
    await dialog.get_by_label("Tuesday to", exact=True).fill("5pm")
    await dialog.get_by_label("Away message", exact=True).fill(AWAY)
    await dialog.get_by_role("switch", name="Shipping", exact=True).check()
    await dialog.get_by_label("Shipping instant answer").fill("Track it: {{ tracking_url }}")

    save = dialog.get_by_role("button", name="Save chat settings")
    await save.click()
    alert = dialog.locator("p.error[role=alert]")  # (hidden while empty)
    await expect(alert).to_have_text(
        "Chat hours: hours[2].to: '5pm' is not a time of day like 09:00")
    # Tuesday is a day off after all; the answer names a placeholder that does not exist.
    await dialog.get_by_role("button", name="Remove Tuesday").click()
    await expect(week.locator("[data-day=tue]")).to_contain_text("Closed")
    await save.click()
    await expect(alert).to_contain_text(
        "Instant answer for Shipping: unknown placeholders: tracking_url")
    await dialog.get_by_label("Shipping instant answer").fill(SHIPPING)
    await save.click()
    await expect(dialog.get_by_text("Saved.", exact=True)).to_be_visible()
    await expect(alert).to_be_empty()

    hours = [
        {"day": "mon", "from": "09:00", "to": "12:00"},
        {"day": "mon", "from": "13:00", "to": "17:30"},
        {"day": "fri", "from": "22:00", "to": "24:00"},
        {"day": "sat", "from": "00:00", "to": "02:00"},
    ]
    async with client(stack, shop) as api:
        settings = (await api.get("/settings/availability")).json()
        answers = {a["topic"]: a for a in (await api.get("/settings/instant-answers")).json()[
            "items"]}
    assert (settings["mode"], settings["hours"], settings["away_message"]) == (
        "hours", hours, AWAY)
    assert (answers["shipping"]["enabled"], answers["shipping"]["text"]) == (True, SHIPPING)
    assert [t for t, a in answers.items() if a["enabled"] or a["text"]] == ["shipping"]
    # The status line follows the server: staffed now or when it is back.
    await expect(dialog.locator("#chat-status")).to_have_text(
        "Available now." if settings["available"] else re.compile(r"^Away now: back "))

    # Kept: a reload shows what was saved.
    await inbox.reload()
    await expect(inbox.locator("#live-state")).to_have_text("Live", timeout=UI_TIMEOUT_MS)
    dialog = await _open_settings(inbox)
    await expect(dialog.get_by_label("Set hours")).to_be_checked()
    for label, value in [("Monday range 1 from", "09:00"), ("Monday range 1 to", "12:00"),
                         ("Monday range 2 from", "13:00"), ("Monday range 2 to", "17:30"),
                         ("Friday from", "22:00"), ("Friday to", "24:00"),
                         ("Saturday from", "00:00"), ("Saturday to", "02:00")]:
        await expect(dialog.get_by_label(label, exact=True)).to_have_value(value)
    for day in ("tue", "wed", "thu", "sun"):
        await expect(dialog.locator(f"[data-day={day}]")).to_contain_text("Closed")
    await expect(dialog.get_by_label("Away message", exact=True)).to_have_value(AWAY)
    await expect(dialog.get_by_role("switch", name="Shipping", exact=True)).to_be_checked()
    await expect(dialog.get_by_label("Shipping instant answer")).to_have_value(SHIPPING)
    await expect(dialog.get_by_role("switch", name="Returns/delivered orders")).not_to_be_checked()

    # Back to always available: the hours are kept for next time, and hidden.
    await dialog.get_by_label("Always available").check()
    await expect(dialog.get_by_role("group", name="Weekly hours")).to_be_hidden()
    await dialog.get_by_role("button", name="Save chat settings").click()
    await expect(dialog.locator("#chat-status")).to_have_text("Available now.")
    async with client(stack, shop) as api:
        settings = (await api.get("/settings/availability")).json()
    assert (settings["mode"], settings["hours"]) == ("always", hours)


async def test_without_the_messaging_permission_the_settings_are_read_only(
        browser, stack, producer, db):
    shop = await new_shop(producer, db, with_passwords=True)
    async with client(stack, shop) as api:
        response = await api.put("/settings/instant-answers/returns",
                                 json={"enabled": True, "text": "Returns are free for 30 days."})
        assert response.status_code == 200, response.text
    inbox = await merchant_page(browser, stack["gateway"].url, shop, "ben")
    dialog = await _open_settings(inbox)
    await expect(dialog).to_contain_text(
        "Only staff with the messaging permission can change these settings.")
    await expect(dialog.get_by_role("switch", name="Returns/delivered orders")).to_be_checked()
    await expect(dialog.get_by_role("switch", name="Returns/delivered orders")).to_be_disabled()
    await expect(dialog.get_by_label("Returns/delivered orders instant answer")).to_have_value(
        "Returns are free for 30 days.")
    await expect(dialog.get_by_label("Away message", exact=True)).to_be_disabled()
    await expect(dialog.get_by_label("Set hours")).to_be_disabled()
    await expect(dialog.get_by_role("button", name="Save chat settings")).to_have_count(0)


async def test_automated_replies_are_marked_as_automated_on_the_timeline(
        browser, stack, producer, db):
    # A shop far from Berlin: its hours are its own wall clock.
    zone = "America/Los_Angeles"
    shop = await new_shop(producer, db, with_passwords=True, timezone=zone)
    closed_day = DAYS[(datetime.now(ZoneInfo(zone)).weekday() + 3) % 7]
    async with client(stack, shop) as api:
        response = await api.put("/settings/availability", json={
            "mode": "hours", "hours": [{"day": closed_day, "from": "09:00", "to": "17:00"}],
            "away_message": AWAY})
        assert response.status_code == 200, response.text
        assert response.json()["available"] is False
        assert response.json()["time_zone"] == zone
        response = await api.put("/settings/instant-answers/shipping",
                                 json={"enabled": True, "text": SHIPPING})
        assert response.status_code == 200, response.text
    inbox = await merchant_page(browser, stack["gateway"].url, shop, "ava")

    # A customer writes while the shop is closed, about shipping.
    conversation = await open_conversation(
        producer, db, shop.shop_id, text="Can you ship to Norway and what does shipping cost?")
    await inbox.goto(f"{stack['gateway'].url}/inbox/#/c/{conversation['conversation_id']}")
    view = inbox.locator("#view")
    away = view.locator(".item.automated[data-automation=away_message]")
    await expect(away).to_be_visible(timeout=UI_TIMEOUT_MS)
    await expect(away.locator(".automated-label")).to_have_text("Automated \u00b7 Away message")
    await expect(away.locator(".text")).to_have_text(
        "We're out on the trail: back on Monday at nine, Maja.")
    answer = view.locator(".item.automated[data-automation=instant_answer]")
    await expect(answer).to_be_visible(timeout=30_000)
    await expect(answer.locator(".automated-label")).to_have_text(
        "Automated \u00b7 Instant answer: Shipping")
    await expect(answer.locator(".text")).to_have_text(SHIPPING)
    # Never shown as a staff member's reply.
    await expect(view.locator(".item.staff:not(.automated)")).to_have_count(0)
    for item in (away, answer):
        await expect(item).not_to_contain_text("Ava Lindqvist")
        await expect(item).not_to_contain_text("Staff")
    # A staff reply beside them still reads as one.
    await view.locator("#reply-text").fill("Hi Maja, Ava here!")
    await view.get_by_role("button", name="Send", exact=True).click()
    staff = view.locator(".item.staff:not(.automated)")
    await expect(staff).to_have_count(1, timeout=UI_TIMEOUT_MS)
    await expect(staff.locator(".meta")).to_contain_text("Ava Lindqvist")
    await expect(view.locator(".item.automated")).to_have_count(2)
