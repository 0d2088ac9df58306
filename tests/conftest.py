"""Shared fixtures: HA test harness, real qBittorrent daemons, the MAM simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import os
from pathlib import Path

import aiohttp
from aioqbt.client import APIClient, create_client
import pytest

# Import our package before phcc mounts its own testing_config/custom_components (toolchain.md).
import custom_components.mam_guard  # noqa: F401
from tests.support.qbt_daemon import QbtDaemon, available_flavours, cleanup, start_qbt

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load custom_components.mam_guard in every test."""


def _require_flavour(flavour: str) -> None:
    if flavour in available_flavours():
        return
    what = "qbittorrent-nox" if flavour == "4" else "the qBittorrent 5.x chroot (MAM_GUARD_QBT5=1)"
    if IN_CI:  # under CI a missing daemon is a failure, never a skip
        pytest.fail(f"{what} is missing: run scripts/setup")
    pytest.skip(f"{what} is missing: run scripts/setup")


def _daemon(tmp_path: Path, flavour: str, **kwargs: bool) -> Iterator[QbtDaemon]:
    _require_flavour(flavour)
    daemon = start_qbt(tmp_path / "qbt", flavour=flavour, **kwargs)
    try:
        yield daemon
    finally:
        cleanup(daemon)


@pytest.fixture
def qbittorrent(socket_enabled: None, tmp_path: Path) -> Iterator[QbtDaemon]:
    """A fresh private qbittorrent-nox 4.x (Debian's package) on 127.0.0.1 for this test."""
    yield from _daemon(tmp_path, "4")


@pytest.fixture(params=["4", "5"], ids=["qbt4", "qbt5"])
def qbittorrent_any(request: pytest.FixtureRequest, socket_enabled: None, tmp_path: Path) -> Iterator[QbtDaemon]:
    """The same test against qBittorrent 4.5 (host) and 5.x (trixie chroot)."""
    yield from _daemon(tmp_path, request.param)


@pytest.fixture
async def qbt_api(qbittorrent: QbtDaemon) -> AsyncIterator[APIClient]:
    """An aioqbt client logged in to the ``qbittorrent`` daemon (for arranging and checking state)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = await create_client(
            qbittorrent.url + "/api/v2/", qbittorrent.username, qbittorrent.password, http=http
        )
        assert client.api_version is not None, "login/version probe failed (cookie dropped?)"
        async with client:
            yield client
