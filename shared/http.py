"""The HTTP side door every service exposes: /metrics, /healthz, /readyz.

The gateway mounts its API on the same application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.health import Health

log = logging.getLogger(__name__)


def side_door(app: FastAPI, health: Health) -> FastAPI:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        # Alive: the process answers. Dependencies are /readyz's business.
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        status = 200 if health.ready else 503
        return JSONResponse({"ready": health.ready, "checks": health.report()}, status)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_now = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service runner owns SIGTERM/SIGINT and stops the server itself.
        yield

    async def main_loop(self) -> None:
        # uvicorn's own loop wakes ten times a second to see whether to stop; a stop here is
        # an event, so the loop ticks once a second (the Date header's resolution).
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000  # each tick is "a second" to on_tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.exit_now.wait(), 1.0)


class HttpServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = _Server(config)
        self.host, self.port = host, port

    async def serve(self) -> None:
        await self._server.serve()

    @property
    def started(self) -> bool:
        return self._server.started

    def stop(self) -> None:
        self._server.should_exit = True
        self._server.exit_now.set()
