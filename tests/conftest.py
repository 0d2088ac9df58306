"""Shared fixtures: HA test harness, real qBittorrent daemons, the MAM simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import os
from pathlib import Path
from unittest.mock import AsyncMock, patch

from aioqbt.client import APIClient
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

# Import our package before phcc mounts its own testing_config/custom_components (toolchain.md).
import custom_components.mam_guard  # noqa: F401
from mam_simulator import MamSimulator
from tests.support.entries import make_entry
from tests.support.mam_pages import default_pages
from tests.support.mam_sim import running_simulator
from tests.support.qbt_daemon import QbtDaemon, available_flavours, cleanup, start_qbt
from tests.support.qbt_helpers import logged_in_client

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
def qbittorrent_any(
    request: pytest.FixtureRequest, socket_enabled: None, tmp_path: Path
) -> Iterator[QbtDaemon]:
    """The same test against qBittorrent 4.5 (host) and 5.x (trixie chroot)."""
    yield from _daemon(tmp_path, request.param)


@pytest.fixture
async def qbt_api(qbittorrent: QbtDaemon) -> AsyncIterator[APIClient]:
    """An aioqbt client logged in to the ``qbittorrent`` daemon (to arrange and check state)."""
    async with logged_in_client(qbittorrent) as client:
        yield client


# --- MAM simulator and a ready config entry -----------------------------------------------------


@pytest.fixture
async def mam_sim(socket_enabled: None) -> AsyncIterator[MamSimulator]:
    """The MAM simulator on 127.0.0.1 with the default account and realistic rules pages."""
    async with running_simulator() as sim:
        sim.pages.update(default_pages())
        yield sim


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """A private config dir per test: ``mam_guard.db`` never lands in phcc's package folder."""
    return hass_tmp_config_dir


@pytest.fixture(autouse=True)
def no_page_gap() -> Iterator[None]:
    """The 2 s gap between rules pages is tested once explicitly; elsewhere it only costs time."""
    with patch("custom_components.mam_guard.rules.RULES_PAGE_GAP_SECONDS", 0):
        yield


@pytest.fixture
def mock_setup_entry() -> Iterator[AsyncMock]:
    """Config flow tests stop at the entry: no coordinators are started."""
    with patch("custom_components.mam_guard.async_setup_entry", return_value=True) as mocked:
        yield mocked


@pytest.fixture
def config_entry(mam_sim: MamSimulator, qbittorrent: QbtDaemon) -> MockConfigEntry:
    """An entry for the simulator's account and the test's qBittorrent (not yet added)."""
    return make_entry(mam_sim, qbittorrent)
