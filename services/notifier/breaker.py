"""When a remote server (the mail server, Meta's Send API) cannot be reached, stop asking it
once per delivery: a circuit breaker per remote channel. Plain logic, the clock passed in.

Closed: deliveries go as usual. After `threshold` attempts in a row found the server
unreachable, open: the channel's deliveries stay in PostgreSQL, untouched (they keep their
attempts), for a pause of 2 s doubling to 30 s. Then half-open: one delivery probes; if the
server answers (whatever it says), closed again and the rest follows; if not, a longer pause.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Outcome codes that mean the server was not reached at all (not a refusal: an answer).
UNREACHABLE = frozenset({"smtp_unavailable", "messenger_unreachable"})

State = Literal["closed", "open", "half_open"]


@dataclass
class Breaker:
    threshold: int = 3
    first_pause: float = 2.0
    max_pause: float = 30.0
    in_a_row: int = 0
    pauses: int = 0
    open_until: float = 0.0
    #: The delivery out as a probe (half-open): no other of the channel goes meanwhile.
    probing: str | None = None

    def state(self, now: float) -> State:
        if self.pauses == 0:
            return "closed"
        return "open" if now < self.open_until else "half_open"

    def may_probe(self, now: float) -> bool:
        return self.state(now) == "half_open" and self.probing is None

    def record(self, error_code: str | None, now: float) -> None:
        """The outcome of one attempt on this channel (its error code; None when sent)."""
        if error_code not in UNREACHABLE:
            self.in_a_row, self.pauses, self.open_until, self.probing = 0, 0, 0.0, None
            return
        if self.state(now) == "open":
            return  # sends already in hand when it opened: nothing new learnt
        self.probing = None
        self.in_a_row += 1
        if self.pauses or self.in_a_row >= self.threshold:
            self.open_until = now + min(self.max_pause, self.first_pause * 2**self.pauses)
            self.pauses += 1
            self.in_a_row = 0

    def probe_dropped(self, delivery: str) -> None:
        """The probe was not attempted after all (its claim was lost): another may go."""
        if self.probing == delivery:
            self.probing = None
