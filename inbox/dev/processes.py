"""Child processes that cannot outlive their parent.

Each child gets its own session (a terminal's Ctrl-C reaches only the supervisor, which then
stops everything in order) and the kernel's parent-death signal (if the supervisor is killed,
the children get SIGTERM instead of running on).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Collection, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(preferred: int | None = None, avoid: Collection[int] = ()) -> int:
    """`preferred` when it is free on 127.0.0.1, else any free port; never one of `avoid`
    (ports chosen already for another listener: nothing is bound on them yet, and the kernel
    may hand out a port it just handed out)."""
    candidates = [preferred] if preferred and preferred not in avoid else []
    for candidate in candidates + [0] * 20:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if candidate:
                # As servers bind: a port whose last connections linger in TIME_WAIT is free.
                # (Not when the kernel picks: it could hand out such a port in use.)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port = sock.getsockname()[1]
            if port in avoid or (not candidate and port in _HANDED_OUT):
                continue
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free port")


#: Ports this process chose: a listener started from one may take seconds to bind it (a JVM),
#: and meanwhile the kernel would hand the same "free" port to the next caller.
_HANDED_OUT: set[int] = set()


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def spawn(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen:
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            list(args),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            user=user,
            cwd=cwd,
        )
    finally:
        if log_path:
            out.close()  # type: ignore[union-attr]


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    """Signal the process, wait, and kill it if it does not go; returns its exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    return process.returncode
