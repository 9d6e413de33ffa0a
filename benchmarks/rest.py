"""The stack at rest: `inbox dev` (what `make run` starts, demo data included) in a directory of
its own, and the CPU every one of its processes uses with nothing flowing, over two 30 s windows:
the first right after it says it is ready (the demo data is being read, the broker's JIT is still
compiling), the second after that, once it has settled. The figure is the second sum, in percent
of one core; each part of it is printed too, and the first sum beside it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
READY = "Press Ctrl-C to stop."


def _part(process: psutil.Process) -> str:
    """A short name for a process of the stack."""
    line = " ".join(process.cmdline())
    for marker, name in (("kafka.Kafka", "broker"), ("tansu", "broker"),
                         ("services.", None), ("inbox.dev.", None), ("postgres", "postgres"),
                         ("prometheus", "prometheus"), ("inbox.cli", "supervisor")):
        if marker in line:
            if name is None:
                return re.search(re.escape(marker) + r"(\w+)", line)[1]  # type: ignore[index]
            return name
    return process.name()


def _cpu(processes: list[psutil.Process]) -> dict[int, float]:
    found = {}
    for process in processes:
        try:
            times = process.cpu_times()
            found[process.pid] = times.user + times.system
        except psutil.Error:
            continue
    return found


def _parts(processes: list[psutil.Process], before: dict[int, float], after: dict[int, float],
           seconds: float) -> dict[str, float]:
    parts: dict[str, float] = {}
    for process in processes:
        if process.pid in before and process.pid in after:
            name = _part(process)
            used = after[process.pid] - before[process.pid]
            parts[name] = parts.get(name, 0.0) + used / seconds * 100
    return parts


def measure_at_rest(seconds: float = 30.0, start_timeout: float = 180.0) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="inbox-rest-"))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    stack = subprocess.Popen([sys.executable, "-m", "inbox.cli", "dev"], cwd=workdir, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = threading.Event()
    output: list[str] = []

    def pump() -> None:
        assert stack.stdout is not None
        for line in stack.stdout:
            output.append(line)
            if READY in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(start_timeout):
            raise TimeoutError("inbox dev not ready:\n" + "".join(output[-20:]))
        root = psutil.Process(stack.pid)
        processes = [root, *root.children(recursive=True)]
        at_ready = _cpu(processes)
        time.sleep(seconds)
        settling = _cpu(processes)
        time.sleep(seconds)
        settled = _cpu(processes)
        first = _parts(processes, at_ready, settling, seconds)
        parts = _parts(processes, settling, settled, seconds)
        broker = next((line.split("] ", 1)[-1].strip() for line in output
                       if " on 127.0.0.1:" in line and ("Kafka" in line or "Tansu" in line)), "")
        return {
            "seconds": seconds,
            "processes": len(processes),
            "broker": broker,
            "percent_of_one_core": round(sum(parts.values()), 2),
            "first_window_percent": round(sum(first.values()), 2),
            "by_part": {k: round(v, 2) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])},
        }
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(90)
        except subprocess.TimeoutExpired:
            stack.kill()
        shutil.rmtree(workdir, ignore_errors=True)
