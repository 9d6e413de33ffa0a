"""Messenger delivery: the send planner (Meta's messaging window), the Send API sender, Meta's
error codes, the per-Page rate limit and the planner's clock."""

from __future__ import annotations

from services.notifier.messenger.clock import Clock, install_dev_clock
from services.notifier.messenger.sender import MessengerSender
from shared.service import Service


def messenger_sender(service: Service) -> MessengerSender:
    """The Messenger sender of this notifier; with DEV_CLOCK_CONTROL, its clock is served at
    /dev/clock (development and tests only)."""
    clock = Clock()
    if service.settings.dev_clock_control:
        install_dev_clock(service.app, clock)
    return MessengerSender(service.settings, service.pool, clock)


__all__ = ["Clock", "MessengerSender", "messenger_sender"]
