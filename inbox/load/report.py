"""Percentiles and the summary of a load run (text for people, a dict for `--json`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values: the smallest value with at least `q` of the
    values at or below it (`q` in [0, 1]; 0 gives the minimum, 1 the maximum)."""
    if not ordered:
        raise ValueError("no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be in [0, 1]")
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50, p95, p99, max and mean in milliseconds (None without values)."""
    ordered = sorted(seconds)
    if not ordered:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None,
                "mean_ms": None}

    def ms(value: float) -> float:
        return round(value * 1000, 1)

    return {
        "count": len(ordered),
        "p50_ms": ms(percentile(ordered, 0.50)),
        "p95_ms": ms(percentile(ordered, 0.95)),
        "p99_ms": ms(percentile(ordered, 0.99)),
        "max_ms": ms(ordered[-1]),
        "mean_ms": ms(sum(ordered) / len(ordered)),
    }


@dataclass
class PathResult:
    """One path (e.g. message→timeline): what was expected, seen, lost, duplicated, how fast."""

    path: str
    expected: int = 0
    seen: int = 0
    lost: int = 0
    duplicated: int = 0
    #: The same effect event delivered again (at-least-once; consumers skip it by its id).
    redelivered: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)
    #: Effects per second over the phase (from its start to the last effect seen).
    throughput: float = 0.0
    #: Outcomes worth telling apart (e.g. delivery results by channel and status): latencies.
    outcomes: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "expected": self.expected, "seen": self.seen, "lost": self.lost,
            "duplicated": self.duplicated, "redelivered": self.redelivered,
            "throughput_per_second": round(self.throughput, 1),
            "latency": latency_summary(self.latencies),
            **({"outcomes": {k: latency_summary(v) for k, v in sorted(self.outcomes.items())}}
               if self.outcomes else {}),
        }


@dataclass
class LoadReport:
    target_rate: float
    duration: float
    mix: str
    shops: int
    sent: dict[str, int]
    achieved_rate: float
    max_send_late_ms: float
    paths: dict[str, PathResult]
    errors: list[dict[str, Any]] = field(default_factory=list)
    database: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Expected effects never seen on their topic within the grace period."""
        return sum(p.lost for p in self.paths.values())

    @property
    def missing_in_database(self) -> int:
        return int(self.database.get("missing", 0)) + int(self.database.get("missing_orders", 0))

    @property
    def duplicated(self) -> int:
        return sum(p.duplicated for p in self.paths.values()) + int(
            self.database.get("duplicate_messages", 0)
        ) + int(self.database.get("duplicate_timeline_items", 0))

    @property
    def clean(self) -> bool:
        """Nothing lost, nothing missing, nothing duplicated, no errors."""
        return (self.lost == 0 and self.missing_in_database == 0 and self.duplicated == 0
                and not self.errors)

    def p99_ms(self, *paths: str) -> float | None:
        """The worst p99 among the given paths (all of them by default) that saw something."""
        found = [latency_summary(self.paths[p].latencies)["p99_ms"]
                 for p in (paths or tuple(self.paths)) if p in self.paths]
        values = [v for v in found if v is not None]
        return max(values) if values else None  # type: ignore[type-var]

    def as_dict(self) -> dict[str, Any]:
        return {
            "target_rate_per_second": self.target_rate,
            "duration_seconds": self.duration,
            "mix": self.mix,
            "shops": self.shops,
            "sent": self.sent,
            "sent_total": sum(self.sent.values()),
            "achieved_rate_per_second": round(self.achieved_rate, 1),
            "max_send_late_ms": round(self.max_send_late_ms, 1),
            "paths": {name: p.as_dict() for name, p in self.paths.items()},
            "lost": self.lost,
            "duplicated": self.duplicated,
            "errors": self.errors,
            "database": self.database,
            "notes": self.notes,
            "clean": self.clean,
        }

    def text(self) -> str:
        sent = ", ".join(f"{k} {v:,}" for k, v in self.sent.items() if v)
        lines = [
            f"sent {sum(self.sent.values()):,} events in {self.duration:g}s "
            f"(target {self.target_rate:,.0f}/s, achieved {self.achieved_rate:,.0f}/s, "
            f"latest send {self.max_send_late_ms:,.0f} ms behind schedule): {sent}",
            f"{'path':<18}{'expected':>9}{'seen':>9}{'lost':>6}{'dup':>5}{'per s':>8}"
            f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}",
        ]
        for name, p in self.paths.items():
            s = latency_summary(p.latencies)

            def cell(key: str, s: dict[str, Any] = s) -> str:
                return "-" if s[key] is None else f"{s[key]:,.1f}"

            lines.append(
                f"{name:<18}{p.expected:>9,}{p.seen:>9,}{p.lost:>6}{p.duplicated:>5}"
                f"{p.throughput:>8,.0f}{cell('p50_ms'):>9}{cell('p95_ms'):>9}"
                f"{cell('p99_ms'):>9}{cell('max_ms'):>9}"
            )
            if p.outcomes:
                for outcome, latencies in sorted(p.outcomes.items()):
                    o = latency_summary(latencies)
                    lines.append(f"  {outcome:<40} {o['count']:>6,}  p50 {o['p50_ms']:,.1f} ms, "
                                 f"p99 {o['p99_ms']:,.1f} ms")
        redelivered = {name: p.redelivered for name, p in self.paths.items() if p.redelivered}
        if redelivered:
            lines.append("redelivered (the same event again, at-least-once; skipped by its id): "
                         + ", ".join(f"{k} {v:,}" for k, v in redelivered.items()))
        if self.database:
            lines.append("database: " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                                  for k, v in self.database.items()))
        if self.errors:
            lines.append(f"errors: {len(self.errors)}")
            lines.extend(f"  {e}" for e in self.errors[:10])
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append(f"lost {self.lost}, duplicated {self.duplicated}, errors {len(self.errors)}"
                     + (": clean" if self.clean else ": NOT CLEAN"))
        return "\n".join(lines)
