"""A service's life cycle: not ready without its dependencies, clean exit on SIGTERM."""

from __future__ import annotations

import asyncio

import httpx

from inbox.dev.processes import free_port
from tests.conftest import ServiceProcess


async def test_alive_but_not_ready_without_postgres(prepared, workdir):
    closed_port = free_port()
    presence = ServiceProcess("presence", prepared, workdir)
    presence.env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{closed_port}/postgres"
    presence.start()
    try:
        async with httpx.AsyncClient(base_url=presence.url) as client:
            for _ in range(100):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["postgres"]["ok"] is False
    finally:
        presence.kill()


async def test_sigterm_stops_a_service_cleanly(prepared, workdir):
    notifier = ServiceProcess("notifier", prepared, workdir)
    notifier.log_path = workdir / "notifier-sigterm.log"
    notifier.start()
    await notifier.wait_ready()
    assert notifier.terminate() == 0
    assert "notifier stopped" in notifier.log_tail()
