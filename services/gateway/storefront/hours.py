"""Whether a shop's chat is staffed now and when it is back, as the storefront tells the widget.

The hours are read on every request (one lookup by primary key), not kept with the shop's
cached record: a merchant who changes them sees the widget follow at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from shared.db.automation import shop_hours
from shared.hours import Availability, ChatHours, availability_at


async def availability(db: asyncpg.Pool, shop_id: str, time_zone: str) -> Availability:
    """The shop's availability now; a shop without hours (or gone since its record was
    cached) is always available, in `time_zone`."""
    found = (await shop_hours(db, {shop_id})).get(shop_id)
    hours = found.hours if found is not None else ChatHours("always", (), time_zone)
    return availability_at(hours, datetime.now(UTC))
