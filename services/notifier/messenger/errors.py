"""Meta's Send API errors and what each means for a delivery: plain functions, no I/O.

| code / subcode            | handling                                                        |
|---------------------------|-----------------------------------------------------------------|
| 10 / 2018278              | outside the window: failed, never retried                       |
| 10 / 2018108              | the person can't receive messages now: failed                   |
| 10 / 1893063              | Page temporarily restricted: the Page pauses, retried later     |
| 10 (no other subcode)     | the app lacks a permission (configuration): failed              |
| 551 (any subcode)         | blocked / unavailable: failed, automated sends to them stop     |
| 4, 613 (any subcode)      | rate limit: the Page backs off, retried                         |
| 100 / 2018001             | no matching user: failed                                        |
| 100                       | invalid parameter (also a retired tag): failed, not retried     |
| 190                       | token invalid or expired: channel needs reconnection, held      |
| 2                         | unexpected: retried a few times, then failed                    |
| 2018300                   | another app controls the thread: failed                         |
| anything else, HTTP 5xx   | retried; other HTTP 4xx: failed                                 |
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

#: Tries of an error 2 ("unexpected") before giving up.
UNEXPECTED_ERROR_ATTEMPTS = 3

Effect = Literal["reconnect", "block_recipient", "pause_page"] | None


@dataclass(frozen=True)
class GraphError:
    http_status: int
    code: int | None
    subcode: int | None
    message: str
    fbtrace_id: str | None = None

    @property
    def label(self) -> str:
        """`code` or `code/subcode`, e.g. `10/2018278`."""
        if self.code is None:
            return f"http_{self.http_status}"
        return f"{self.code}/{self.subcode}" if self.subcode else str(self.code)


def parse_error(http_status: int, body: bytes) -> GraphError:
    """Meta's envelope `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`;
    anything else keeps only the HTTP status."""
    try:
        error = json.loads(body)["error"]
        code = error.get("code")
        subcode = error.get("error_subcode")
        return GraphError(
            http_status,
            int(code) if code is not None else None,
            int(subcode) if subcode is not None else None,
            str(error.get("message") or ""),
            error.get("fbtrace_id"),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        text = body[:200].decode("utf-8", "replace")
        return GraphError(http_status, None, None, f"HTTP {http_status}: {text}")


@dataclass(frozen=True)
class ErrorHandling:
    status: Literal["failed", "retry"]
    reason: str
    effect: Effect = None


#: Error labels counted as themselves in metrics; others count as "other".
KNOWN_LABELS = frozenset({
    "10/2018278", "10/2018108", "10/1893063", "10", "551", "551/1545041", "4", "613",
    "613/2534040", "613/2018338", "100", "100/2018001", "190", "2", "2018300", "10/2018300",
})


def metric_label(error: GraphError) -> str:
    if error.code is None:
        return "http_5xx" if error.http_status >= 500 else "http_4xx"
    if error.label in KNOWN_LABELS:
        return error.label
    return str(error.code) if str(error.code) in KNOWN_LABELS else "other"


def handle_error(error: GraphError, attempt: int) -> ErrorHandling:
    """What to do after Meta refused attempt number `attempt` (1-based)."""
    meta = f" (Meta {error.label}: {error.message})" if error.message else f" ({error.label})"
    code, sub = error.code, error.subcode
    if code == 2018300 or sub == 2018300:
        return ErrorHandling("failed", "Not delivered: another app controls this Messenger "
                             "conversation (handover)." + meta)
    if code == 10 and sub == 2018278:
        return ErrorHandling("failed", "Not delivered: outside Meta's messaging window. Not "
                             "retried; a person can reply with Human Agent within 7 days, an "
                             "order update goes as a template, or reply by email." + meta)
    if code == 10 and sub == 2018108:
        return ErrorHandling("failed", "Not delivered: the person can't receive messages on "
                             "Messenger right now." + meta)
    if code == 10 and sub == 1893063:
        return ErrorHandling("retry", "Waiting: Meta has temporarily restricted the Page from "
                             "sending; its messages are paused." + meta, "pause_page")
    if code == 10:
        return ErrorHandling("failed", "Not delivered: the Messenger app lacks a permission "
                             "for this message (a configuration problem, e.g. Human Agent not "
                             "approved; not the messaging window)." + meta)
    if code == 551:
        return ErrorHandling("failed", "Not delivered: the customer blocked the Page or is "
                             "unavailable on Messenger; automated messages to them stop." + meta,
                             "block_recipient")
    if code in (4, 613):
        return ErrorHandling("retry", "Waiting: Meta's rate limit was reached; the Page's "
                             "messages back off and are tried again." + meta, "pause_page")
    if code == 100 and sub == 2018001:
        return ErrorHandling("failed", "Not delivered: Meta found no matching Messenger user."
                             + meta)
    if code == 100:
        return ErrorHandling("failed", "Not delivered: Meta refused a parameter of the message "
                             "(not retried as is)." + meta)
    if code == 190:
        return ErrorHandling("retry", "Waiting: Meta refused the Page's access token; the "
                             "Messenger channel needs reconnecting and its messages wait."
                             + meta, "reconnect")
    if code == 2:
        if attempt < UNEXPECTED_ERROR_ATTEMPTS:
            return ErrorHandling("retry", "Meta had an unexpected error; trying again." + meta)
        return ErrorHandling("failed", f"Not delivered: Meta kept failing unexpectedly "
                             f"({attempt} tries)." + meta)
    if code is None and error.http_status >= 500:
        return ErrorHandling("retry", "Meta's Send API is unavailable; trying again." + meta)
    return ErrorHandling("failed", "Not delivered: Meta refused the message." + meta)
