"""`inbox load`: options and entry point (heavy imports wait until the command runs)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=100.0,
                        help="events per second, kept whatever the system's speed (default 100)")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of traffic (default 30)")
    parser.add_argument("--mix", default="default",
                        help="kind=weight,… over message, reply, cart, activity, order, or a "
                             "preset: default (message=55,reply=12,cart=12,activity=15,order=6), "
                             "messages, replies")
    parser.add_argument("--shops", type=int, default=5,
                        help="shops to create first, on the shop-data topics (default 5)")
    parser.add_argument("--new-threads", type=float, default=0.3,
                        help="share of customer messages that start a conversation (default 0.3)")
    parser.add_argument("--grace", type=float, default=15.0,
                        help="seconds to wait for the last effects before calling them lost")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the traffic")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quiet", action="store_true", help="no progress line every second")
    parser.add_argument("--gateway-url",
                        help="with --graph-url: the gateway, to connect each shop's Messenger "
                             "channel to its Page (replies on Messenger are then really sent)")
    parser.add_argument("--graph-url", help="Meta's Graph API stand-in (python -m "
                                            "benchmarks.graph), where the shops' Pages are")


async def run(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    from inbox.load.runner import LoadSession
    from inbox.load.traffic import Mix

    mix = Mix.parse(args.mix)
    session = LoadSession(settings, shops=args.shops, seed=args.seed,
                          new_thread_share=args.new_threads, progress=not args.quiet,
                          gateway_url=args.gateway_url, graph_url=args.graph_url)
    print(f"load {session.run_id}: {args.shops} shops (load-{session.run_id}-NN), "
          f"{args.rate:g} events/s for {args.duration:g}s, mix {mix}; "
          f"broker {settings.kafka.bootstrap_servers}", flush=True)
    async with session:
        print("shops stored and warm-up done (every service answered); sending", flush=True)
        for error in session.follower.errors + session.produce_errors:
            print(f"error before the run: {error}")
        report = await session.phase(args.rate, args.duration, mix, grace=args.grace)
    print(report.text(), flush=True)
    return report.as_dict()


def main(args: argparse.Namespace, settings: Any) -> int:
    from inbox.load.traffic import Mix

    try:
        Mix.parse(args.mix)
    except ValueError as exc:
        print(f"inbox load: {exc}")
        return 2
    if bool(args.gateway_url) != bool(args.graph_url):
        print("inbox load: --gateway-url and --graph-url go together")
        return 2
    try:
        result = asyncio.run(run(args, settings))
    except (TimeoutError, RuntimeError, OSError) as exc:
        print(f"inbox load: {exc}")
        return 1
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
        print(f"results written to {args.json}")
    return 0 if result["clean"] else 1

