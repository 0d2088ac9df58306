"""Run the simulator standalone: ``python -m mam_simulator --port 8765 --mam-id demo-cookie``.

Point the integration's advanced option ``mam_base_url`` at the printed URL and paste the cookie.
With rotation on (the default, like MAM) the pasted cookie is valid for one request only; the
integration persists the rotated value, curl users should pass ``--no-rotate``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .app import MamSimulator


async def _serve(host: str, port: int, mam_id: str, rotate: bool) -> None:
    sim = MamSimulator()
    sim.state.rotate = rotate
    cookie = sim.add_cookie(mam_id)
    base_url = await sim.start(host, port)
    print(f"MAM simulator on {base_url}", flush=True)
    print(f"mam_id to paste: {cookie}  (rotation {'on' if rotate else 'off'})", flush=True)
    print(
        f"control API: {base_url}/_sim/state, /_sim/fail, /_sim/cookie, /_sim/requests,"
        " /_sim/torrents",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main() -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m mam_simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--mam-id", default="demo-cookie", help="initially valid cookie value")
    parser.add_argument("--no-rotate", action="store_true", help="keep cookies valid after use")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.mam_id, not args.no_rotate))


if __name__ == "__main__":
    main()
