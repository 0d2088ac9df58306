"""A loopback TCP proxy that adds a round-trip time: every chunk waits RTT/2 in each direction.

No kernel feature (netem, namespaces) is needed: it is plain asyncio in its own process, so its
work never runs on the benchmark's event loop. Bandwidth is not limited, order is kept, and the
delay is per chunk, so a request/response exchange costs one RTT more, as over a real link.

    python benchmarks/rtt_proxy.py --target 127.0.0.1:8080 --rtt-ms 20   # prints "port N"

Only loopback addresses are accepted as a target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def pump() -> None:
        while True:
            data = await reader.read(1 << 16)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                return

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        await asyncio.gather(pump(), deliver())


async def serve(target_host: str, target_port: int, rtt_ms: float, listen_port: int) -> None:
    delay = rtt_ms / 2000.0

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(_pipe(client_r, server_w, delay), _pipe(server_r, client_w, delay))
        finally:
            for w in (client_w, server_w):
                w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    port = server.sockets[0].getsockname()[1]
    print(f"port {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port (loopback only)")
    parser.add_argument("--rtt-ms", type=float, required=True)
    parser.add_argument("--listen", type=int, default=0)
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit("the target must be a loopback address")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, int(port), args.rtt_ms, args.listen))


if __name__ == "__main__":
    main()
