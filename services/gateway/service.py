"""Wiring of the gateway: the HTTP API on the side door's server."""

from __future__ import annotations

from fastapi import FastAPI

from services.gateway.api import router as merchant_api
from shared.service import Service


def create_app() -> FastAPI:
    app = FastAPI(
        title="Inbox merchant API",
        version="1",
        description="Conversations between a shop and its customers. Conversations cannot be "
        "deleted: close them instead.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.include_router(merchant_api)
    return app


def build(service: Service) -> None:
    service.app.state.service = service
