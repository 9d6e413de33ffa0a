"""Prometheus for the development stack, when a `prometheus` binary is installed (Debian's
`prometheus` package): the project's alert rules, and every local service as a target."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def find_prometheus() -> str | None:
    return shutil.which("prometheus")


def scrape_config(targets: dict[str, int], rules: Path = RULES, interval: str = "15s") -> str:
    """The production scrape configuration's jobs, with the local ports as static targets."""
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for job, port in sorted(targets.items())
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def prometheus_args(binary: str, config: Path, data_dir: Path, port: int) -> list[str]:
    return [binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d"]
