"""A local SMTP catcher for the development stack: accepts every email, keeps it as an .eml
file, and lists what arrived on a small web page (and as JSON)."""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import html
import signal
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, PlainTextResponse

from shared.http import HttpServer


class _SaveHandler:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def handle_DATA(self, server, session, envelope) -> str:
        name = f"{time.time_ns()}.eml"
        (self._folder / name).write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def _summaries(folder: Path) -> list[dict[str, str]]:
    found = []
    for path in sorted(folder.glob("*.eml"), reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found.append({
            "id": path.stem,
            "from": str(message["From"] or ""),
            "to": str(message["To"] or ""),
            "subject": str(message["Subject"] or ""),
            "date": str(message["Date"] or ""),
        })
    return found


def create_app(folder: Path) -> FastAPI:
    app = FastAPI(title="mail catcher")

    @app.get("/api/messages")
    async def messages() -> list[dict[str, str]]:
        return _summaries(folder)

    @app.get("/messages/{message_id}", response_class=PlainTextResponse)
    async def raw(message_id: str) -> str:
        path = folder / f"{message_id}.eml"
        if not message_id.isdigit() or not path.exists():
            raise HTTPException(404, "no such message")
        return path.read_text(errors="replace")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        rows = "".join(
            f"<tr><td>{html.escape(m['date'])}</td><td>{html.escape(m['from'])}</td>"
            f"<td>{html.escape(m['to'])}</td><td><a href='/messages/{m['id']}'>"
            f"{html.escape(m['subject'] or '(no subject)')}</a></td></tr>"
            for m in _summaries(folder)
        )
        return (
            "<!doctype html><meta charset=utf-8><title>Mail catcher</title>"
            "<h1>Caught emails</h1><table border=1 cellpadding=4>"
            "<tr><th>Date</th><th>From</th><th>To</th><th>Subject</th></tr>"
            f"{rows or '<tr><td colspan=4>Nothing yet.</td></tr>'}</table>"
        )

    return app


async def serve(folder: Path, smtp_port: int, http_port: int) -> None:
    controller = Controller(_SaveHandler(folder), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    http = HttpServer(create_app(folder), "127.0.0.1", http_port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, http.stop)
    try:
        await http.serve()
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.dir, args.smtp_port, args.http_port))


if __name__ == "__main__":
    main()
