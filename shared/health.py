"""Readiness: a service is ready when every one of its checks passed recently."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Check:
    name: str
    ok: bool = False
    detail: str = "not started"
    since: float = field(default_factory=time.monotonic)


class Health:
    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def register(self, name: str) -> None:
        self._checks.setdefault(name, Check(name))

    def set(self, name: str, ok: bool, detail: str = "") -> None:
        check = self._checks.setdefault(name, Check(name))
        if check.ok != ok:
            check.since = time.monotonic()
        check.ok = ok
        check.detail = detail or ("ok" if ok else "failing")

    @property
    def ready(self) -> bool:
        return bool(self._checks) and all(c.ok for c in self._checks.values())

    def report(self) -> dict[str, dict[str, object]]:
        return {c.name: {"ok": c.ok, "detail": c.detail} for c in self._checks.values()}
