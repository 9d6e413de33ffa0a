"""A TCP proxy for fault tests, run as its own process: `python -m tests.proxy LISTEN UPSTREAM`.

What the network can do to a service, done for real on its sockets:
- down: SIGKILL the proxy; every connection through it breaks and new ones are refused, while
  the server behind it keeps its state; start it again on the same port to heal.
- slow: SIGUSR1 holds every chunk of data, each way, for `--delay-ms` before passing it on
  (SIGUSR2 back to normal), as a distant or overloaded server would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal


class Proxy:
    def __init__(self, upstream_host: str, upstream_port: int, delay: float) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.slow = False

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()  # the server behind is down: so is this connection
            return
        await asyncio.gather(self._pump(client_r, server_w), self._pump(server_r, client_w))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                if self.slow:
                    await asyncio.sleep(self.delay)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One side gone: the whole connection goes, as with a real peer.
            with contextlib.suppress(Exception):
                writer.close()


async def serve(listen: int, upstream: str, delay_ms: float) -> None:
    host, _, port = upstream.rpartition(":")
    proxy = Proxy(host or "127.0.0.1", int(port), delay_ms / 1000)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(proxy, "slow", True))
    loop.add_signal_handler(signal.SIGUSR2, lambda: setattr(proxy, "slow", False))
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", listen, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("listen", type=int, help="port to listen on (127.0.0.1)")
    parser.add_argument("upstream", help="host:port to pass connections to")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="hold per chunk when slow")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, args.upstream, args.delay_ms))


if __name__ == "__main__":
    main()
