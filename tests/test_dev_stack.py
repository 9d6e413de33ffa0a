"""`inbox dev` (what `make run` starts): every service ready, a crashed service restarted,
the test message command, and nothing left running after Ctrl-C."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ROOT


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


class _Output:
    """Collects a process's output in a thread, so the test can wait for a line."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(process,), daemon=True)
        self._thread.start()

    def _pump(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.text):
                return self.text
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not printed within {timeout}s:\n{self.text}")


def _prometheus_watches_the_stack(url: str, services: set[str]) -> None:
    """Every service is an up target, and the project's alert rules load and evaluate."""
    deadline = time.monotonic() + 60
    while True:
        targets = httpx.get(f"{url}/api/v1/targets").json()["data"]["activeTargets"]
        up = {t["labels"]["job"] for t in targets if t["health"] == "up"}
        groups = httpx.get(f"{url}/api/v1/rules").json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        evaluated = rules and all(r.get("health") == "ok" for r in rules)
        if services <= up and evaluated:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"targets up: {sorted(up)}; rules: "
                                 f"{[(r['name'], r.get('health')) for r in rules]}")
        time.sleep(1)
    assert {r["name"] for r in rules} >= {"ServiceDown", "ConsumerLagging", "DeadLettersGrowing"}


@pytest.mark.timeout(240)
def test_dev_stack_runs_restarts_and_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    started = time.monotonic()
    stack = subprocess.Popen(
        [sys.executable, "-m", "inbox.cli", "dev"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = _Output(stack)
    children: list[psutil.Process] = []
    try:
        out = output.wait_for(r"Press Ctrl-C to stop", 90)
        ready_after = time.monotonic() - started
        print(f"inbox dev ready after {ready_after:.1f}s")
        ports = dict(re.findall(r"(\w+) http://127\.0\.0\.1:(\d+)/metrics", out))
        assert set(ports) == {"router", "notifier", "presence", "classifier", "gateway"}
        for name, port in ports.items():
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
            assert ready.status_code == 200, (name, ready.text)
            assert "inbox_events_consumed_total" in httpx.get(
                f"http://127.0.0.1:{port}/metrics").text or name == "gateway"
        children = _descendants(stack.pid)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "tansu" in names and "postgres" in names and "mailcatcher" in names

        sent = subprocess.run(
            [sys.executable, "-m", "inbox.cli", "send-message", "--text", "Hej! Is the anorak "
             "waterproof?"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        conversation_id = re.search(r"arrived: conversation ([0-9a-f-]{36})", sent.stdout)[1]
        token = re.search(r"ava\s+(\S+)", out)[1]
        detail = httpx.get(
            f"http://127.0.0.1:{ports['gateway']}/api/v1/conversations/{conversation_id}",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert [i["text"] for i in detail["timeline"]] == ["Hej! Is the anorak waterproof?"]

        prometheus = re.search(r"Prometheus\s+(http://127\.0\.0\.1:\d+)/", out)
        if shutil.which("prometheus"):
            assert prometheus, "Prometheus is installed but the stack did not start it"
            _prometheus_watches_the_stack(prometheus[1], set(ports))

        router = next(c for c in children if "services.router" in " ".join(c.cmdline()))
        router.kill()
        output.wait_for(r"router exited with code -9; restarting", 20)
        output.wait_for(r"router restarted", 20)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{ports['router']}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            raise AssertionError("the restarted router never became ready")
        children = _descendants(stack.pid)
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(60)
    assert stack.returncode == 0, output.text
    time.sleep(0.5)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running: {[c.cmdline() for c in alive]}"
