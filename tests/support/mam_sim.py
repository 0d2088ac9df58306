"""Glue between tests and the in-process MAM simulator (``mam_simulator``).

Tests that use it open real sockets on 127.0.0.1, so they must request ``socket_enabled``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from mam_simulator import MamSimulator

TEST_COOKIE = "test-cookie-Zx81%2Bq"
USER_AGENT = "mam_guard-tests/0"


@asynccontextmanager
async def running_simulator(cookie: str = TEST_COOKIE, **state: Any) -> AsyncIterator[MamSimulator]:
    """A started simulator on a free 127.0.0.1 port accepting ``cookie``.

    ``state`` overrides :class:`~mam_simulator.SimState` fields, e.g. ``ratio="∞"``.
    """
    sim = MamSimulator(cookies={cookie})
    for key, value in state.items():
        if not hasattr(sim.state, key):
            raise AttributeError(f"SimState has no field {key!r}")
        setattr(sim.state, key, value)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@asynccontextmanager
async def mam_http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A session like the one the HA layer creates for the client: no cookie jar."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session
