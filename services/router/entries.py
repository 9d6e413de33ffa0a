"""What one timeline item says, built once by whoever appends it and passed down as it is
(Timeline.append, then the SQL and the announced event), so its fields are listed once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TimelineEntry:
    item_id: uuid.UUID
    kind: str
    author: str
    at: datetime
    text: str | None = None
    message_id: uuid.UUID | None = None
    staff_id: str | None = None
    data: dict[str, Any] | None = None
