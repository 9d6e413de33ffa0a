"""The `inbox` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime

import asyncpg


def _load_dev_env() -> None:
    """Point the commands at a running `inbox dev` unless the environment says otherwise."""
    from inbox.dev.supervisor import DEV_ENV_FILE

    if DEV_ENV_FILE.exists():
        for line in DEV_ENV_FILE.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                os.environ.setdefault(key, value)


def _settings():
    from shared.config import Settings

    return Settings()


def cmd_dev(args: argparse.Namespace) -> int:
    from inbox.dev.supervisor import run

    return run(with_demo=not args.no_demo)


def cmd_migrate(args: argparse.Namespace) -> int:
    from shared.db.migrate import migrate_database

    applied = asyncio.run(migrate_database(_settings().database.url))
    print(f"applied migrations: {applied}" if applied else "database schema is up to date")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from shared.kafka.admin import ensure_topics

    created = asyncio.run(ensure_topics(_settings()))
    print(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))
    return 0


def cmd_send_message(args: argparse.Namespace) -> int:
    from shared.contracts import ChatInbound
    from shared.kafka.producer import EventProducer
    from shared.topics import CHAT_INBOUND

    settings = _settings()
    event = ChatInbound(
        event_id=str(uuid.uuid4()),
        shop_id=args.shop,
        channel=args.channel,
        thread_ref=args.thread or f"visitor-{uuid.uuid4().hex[:8]}",
        text=args.text,
        sent_at=datetime.now(UTC),
        customer={"email": args.email, "name": args.name},
        visitor_id=args.thread,
    )

    async def go() -> int:
        producer = EventProducer(settings, "cli")
        await producer.start()
        try:
            await producer.send_and_wait(CHAT_INBOUND, event)
        finally:
            await producer.stop()
        print(f"sent to {CHAT_INBOUND}: shop={event.shop_id} channel={event.channel} "
              f"thread={event.thread_ref}")
        conn = await asyncpg.connect(settings.database.url)
        try:
            deadline = time.monotonic() + args.wait
            while time.monotonic() < deadline:
                row = await conn.fetchrow(
                    """SELECT c.conversation_id, c.status, c.unread, m.text
                       FROM messages m JOIN conversations c USING (conversation_id)
                       WHERE m.shop_id = $1 AND m.source_id = $2""",
                    event.shop_id, event.event_id,
                )
                if row:
                    print(f"arrived: conversation {row['conversation_id']} "
                          f"({row['status']}, {'unread' if row['unread'] else 'read'}) "
                          f"with message {row['text']!r}")
                    print(f"see it: GET /api/v1/conversations/{row['conversation_id']}")
                    return 0
                await asyncio.sleep(0.2)
        finally:
            await conn.close()
        print(f"not stored within {args.wait}s: is the stack running (make run) and does the "
              f"shop {event.shop_id!r} exist? Check the chat.inbound.dlq topic.", file=sys.stderr)
        return 1

    return asyncio.run(go())


def cmd_load(args: argparse.Namespace) -> int:
    from inbox.load.cli import main as load

    return load(args, _settings())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["classify"]:  # its own options: see `inbox classify --help`
        from services.classifier.cli import main as classify

        return classify(argv[1:])
    parser = argparse.ArgumentParser(prog="inbox", description="The conversation backbone.")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole system locally with demo data")
    dev.add_argument("--no-demo", action="store_true", help="do not load the demo shop")
    dev.set_defaults(func=cmd_dev)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("topics", help="create the Kafka topics").set_defaults(func=cmd_topics)

    send = sub.add_parser("send-message", help="send a test customer message into the stack")
    send.add_argument("--text", required=True)
    send.add_argument("--shop", default="demo-shop")
    send.add_argument("--channel", default="online_store_chat")
    send.add_argument("--thread", help="thread reference (default: a new visitor)")
    # The demo shop knows this customer: two earlier orders make her a returning customer.
    send.add_argument("--email", default="maja.berg@example.com")
    send.add_argument("--name", default="Maja Berg")
    send.add_argument("--wait", type=float, default=15.0, help="seconds to wait for it to arrive")
    send.set_defaults(func=cmd_send_message)

    sub.add_parser("classify", help="classify messages read from stdin, one per line (JSON out)")

    from inbox.load.cli import add_arguments as load_arguments

    load = sub.add_parser("load", help="drive realistic mixed traffic at a steady rate and "
                          "measure it end to end (throughput, latency, lost, duplicated)")
    load_arguments(load)
    load.set_defaults(func=cmd_load)

    args = parser.parse_args(argv)
    if args.command != "dev":
        _load_dev_env()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
