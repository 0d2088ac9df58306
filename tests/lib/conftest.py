"""Fixtures of the library tests: every real-daemon test runs on qBittorrent 4.5 and 5.x."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aioqbt.client import APIClient
import pytest

from tests.support.qbt_daemon import QbtDaemon
from tests.support.qbt_helpers import logged_in_client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """The session handed to the adapter (as HA's would be: unsafe jar, never closed by it)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest.fixture
async def api(qbittorrent_any: QbtDaemon) -> AsyncIterator[APIClient]:
    """An independent aioqbt client (own session) for arranging and checking."""
    async with logged_in_client(qbittorrent_any) as client:
        yield client
