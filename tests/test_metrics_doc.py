"""deploy/METRICS.md documents exactly the metrics the services define."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

from tests.helpers import register_all_metrics

DOC = (Path(__file__).resolve().parent.parent / "deploy" / "METRICS.md").read_text()
PREFIXES = ("inbox_", "router_", "notifier_", "presence_", "classifier_", "gateway_",
            "messenger_")


def defined_metrics() -> set[str]:
    register_all_metrics()
    names = set()
    for metric in REGISTRY.collect():
        name = metric.name + ("_total" if metric.type == "counter" else "")
        if name.startswith(PREFIXES):
            names.add(name)
    return names


def documented_metrics() -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", DOC, flags=re.MULTILINE))


def test_every_metric_is_documented_and_every_documented_one_exists():
    defined, documented = defined_metrics(), documented_metrics()
    assert defined - documented == set(), "not documented in deploy/METRICS.md"
    assert documented - defined == set(), "documented but not defined"
