"""`inbox dev` (what `make run` starts): every service ready, a crashed service restarted,
the test message command, and nothing left running after Ctrl-C; on Apache Kafka, and on Tansu
(the pip-only fallback) so that path stays honest. On Apache Kafka the data outlives a restart of
the stack, and a broker that dies is restarted like a service."""

from __future__ import annotations

import asyncio
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

from inbox.dev.broker import choose_broker
from shared.config import KafkaSettings, Settings
from shared.topics import CHAT_INBOUND
from tests.conftest import ROOT, read_topic

_KIND, _WHY = choose_broker()
KAFKA_MISSING = _WHY or ("INBOX_BROKER=tansu" if _KIND == "tansu" else None)


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


def _start(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, _Output]:
    stack = subprocess.Popen(
        [sys.executable, "-m", "inbox.cli", "dev"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    return stack, _Output(stack)


def _stop(stack: subprocess.Popen, output: _Output, children: list[psutil.Process]) -> None:
    """Ctrl-C: the stack exits 0 and leaves no process of its own behind."""
    stack.send_signal(signal.SIGINT)
    stack.wait(90)
    assert stack.returncode == 0, output.text
    time.sleep(0.5)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running: {[c.cmdline() for c in alive]}"


def _child(children: list[psutil.Process], marker: str) -> psutil.Process:
    return next(c for c in children if marker in " ".join(c.cmdline()))


@pytest.mark.timeout(360)
@pytest.mark.parametrize("broker", [
    pytest.param("kafka", marks=pytest.mark.skipif(bool(KAFKA_MISSING),
                                                   reason=f"no Apache Kafka: {KAFKA_MISSING}")),
    "tansu",
])
def test_dev_stack_runs_restarts_and_stops_cleanly(tmp_path: Path, broker: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    env["INBOX_BROKER"] = broker
    started = time.monotonic()
    stack, output = _start(tmp_path, env)
    children: list[psutil.Process] = []
    try:
        out = output.wait_for(r"Press Ctrl-C to stop", 120)
        ready_after = time.monotonic() - started
        print(f"inbox dev on {broker} ready after {ready_after:.1f}s")
        assert ("Apache Kafka on" if broker == "kafka" else "Tansu on") in out
        ports = dict(re.findall(r"(\w+) http://127\.0\.0\.1:(\d+)/metrics", out))
        assert set(ports) == {"router", "notifier", "presence", "classifier", "gateway"}
        for name, port in ports.items():
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
            assert ready.status_code == 200, (name, ready.text)
            assert "inbox_events_consumed_total" in httpx.get(
                f"http://127.0.0.1:{port}/metrics").text or name == "gateway"
        children = _descendants(stack.pid)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert ("kafka.Kafka" if broker == "kafka" else "tansu") in names
        assert "postgres" in names and "mailcatcher" in names

        sent = subprocess.run(
            [sys.executable, "-m", "inbox.cli", "send-message", "--text", "Hej! Is the anorak "
             "waterproof?"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        conversation_id = re.search(r"arrived: conversation ([0-9a-f-]{36})", sent.stdout)[1]
        email, password, token = re.search(r"(ava@\S+)\s+(\S+)\s+(\S+)", out).groups()
        detail = httpx.get(
            f"http://127.0.0.1:{ports['gateway']}/api/v1/conversations/{conversation_id}",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert [i["text"] for i in detail["timeline"]] == ["Hej! Is the anorak waterproof?"]
        # Tools run beside the stack find its settings, the Shopify app's secret among them.
        dev_env = (tmp_path / ".inbox" / "dev.env").read_text()
        assert "SHOPIFY_API_SECRET=development-shopify-api-secret" in dev_env
        # The printed password signs Ava in to the inbox.
        with httpx.Client(base_url=f"http://127.0.0.1:{ports['gateway']}") as inbox:
            signed_in = inbox.post("/api/v1/session", json={"email": email, "password": password})
            assert signed_in.status_code == 200, signed_in.text
            assert inbox.get("/api/v1/me").json()["staff_id"] == "ava"
        # The demo shop's Online Store is the demo storefront: a discount link opens there.
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        codes = httpx.get(f"{gateway}/api/v1/discounts?status=active",
                          headers={"Authorization": f"Bearer {token}"}).json()["items"]
        link = next(c["url"] for c in codes if c["code"] == "WELCOME10")
        assert link == f"{gateway}/storefront/demo/demo-shop/discount/WELCOME10"
        assert httpx.get(link).headers["location"] == (
            "/storefront/demo?shop=demo-shop&discount=WELCOME10")

        prometheus = re.search(r"Prometheus\s+(http://127\.0\.0\.1:\d+)/", out)
        if shutil.which("prometheus"):
            assert prometheus, "Prometheus is installed but the stack did not start it"
            _prometheus_watches_the_stack(prometheus[1], set(ports))

        router = _child(children, "services.router")
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
        if broker == "kafka":
            _child(children, "kafka.Kafka").kill()
            output.wait_for(r"broker exited with code -9; restarting", 20)
            output.wait_for(r"broker restarted", 30)
        children = _descendants(stack.pid)
    finally:
        _stop(stack, output, children)
    if broker == "kafka":
        _kafka_kept_the_data(tmp_path, env, conversation_id, token)


def _kafka_kept_the_data(tmp_path: Path, env: dict[str, str], conversation_id: str,
                         token: str) -> None:
    """A second `inbox dev` on the same .inbox/: the broker starts on its data (the first
    run's messages are still on their topic), and a message sent now arrives like the first."""
    assert (tmp_path / ".inbox" / "kafka" / "data" / "meta.properties").exists()
    stack, output = _start(tmp_path, env)
    children: list[psutil.Process] = []
    try:
        out = output.wait_for(r"Press Ctrl-C to stop", 120)
        children = _descendants(stack.pid)
        # Its own ports: the first run's may have been taken meanwhile.
        gateway_port = re.search(r"gateway http://127\.0\.0\.1:(\d+)/metrics", out)[1]
        bootstrap = re.search(r"Kafka\s+(127\.0\.0\.1:\d+)", out)[1]
        first = asyncio.run(read_topic(
            Settings(kafka=KafkaSettings(bootstrap_servers=bootstrap)), CHAT_INBOUND,
            lambda r: b"Hej! Is the anorak waterproof?" in r.value, timeout=30))
        assert len(first) == 1, "the first run's message is gone from chat.inbound"
        sent = subprocess.run(
            [sys.executable, "-m", "inbox.cli", "send-message", "--text", "Still there?"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        detail = httpx.get(
            f"http://127.0.0.1:{gateway_port}/api/v1/conversations/{conversation_id}",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert [i["text"] for i in detail["timeline"]] == ["Hej! Is the anorak waterproof?"]
        assert "arrived: conversation" in sent.stdout, sent.stdout
    finally:
        _stop(stack, output, children)
