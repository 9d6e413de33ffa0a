"""Meta's Graph API for the benchmarks: the development stand-in (`inbox.dev.graph_api`), run as a
process of its own beside the stack, so that replies to Messenger conversations are really sent
(Send API call, token, rate limit, body and messaging-type checks) and its CPU is Meta's, not
the services'.

One difference from the stand-in as the tests use it: a person the Page has never heard of is
taken for one who has just written. The load generator's customer messages reach the backbone
on `chat.inbound` directly, not as webhooks from this stand-in, so it cannot have seen them; the
messaging window the notifier plans with is still the one the stored conversation shows.

    python -m benchmarks.graph --port 8990
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from inbox.dev.graph_api import GraphStandIn, serve

#: The app secret the benchmark stack's gateway and this stand-in share (webhooks are not used).
APP_SECRET = "benchmark-messenger-app-secret"


class BenchGraph(GraphStandIn):
    """The stand-in, keeping only its recent sends."""

    def send(self, page_id: str, token: str | None, body: Any) -> dict[str, Any]:
        try:
            return super().send(page_id, token, body)
        finally:
            # Only the outcomes are asked for (GET /admin/sends): keep the recent ones, so a long
            # run does not grow the process.
            if len(self.sends) > 20_000:
                del self.sends[:10_000]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8990)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rate-limit", type=int, default=300, help="Send API calls/s per Page")
    args = parser.parse_args()
    graph = BenchGraph(APP_SECRET, rate_limit=args.rate_limit, strangers_just_wrote=True)
    asyncio.run(serve(graph, args.host, args.port))


if __name__ == "__main__":
    main()
