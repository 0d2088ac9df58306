"""Config entries for the MAM simulator and a real qBittorrent."""

from __future__ import annotations

from typing import Any

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.mam_guard.const import (
    CONF_MAM_BASE_URL,
    CONF_MAM_ID,
    CONF_QBT_PASSWORD,
    CONF_QBT_URL,
    CONF_QBT_USERNAME,
    CONF_QBT_VERIFY_SSL,
    DEFAULT_OPTIONS,
    DOMAIN,
)
from mam_simulator import MamSimulator
from tests.support.mam_sim import TEST_COOKIE
from tests.support.qbt_daemon import QbtDaemon


def entry_data(sim: MamSimulator, qbt: QbtDaemon, cookie: str = TEST_COOKIE) -> dict[str, Any]:
    """Config entry data pointing at the simulator and a real qBittorrent."""
    return {
        CONF_MAM_ID: cookie,
        CONF_MAM_BASE_URL: sim.base_url,
        CONF_QBT_URL: qbt.url,
        CONF_QBT_USERNAME: qbt.username,
        CONF_QBT_PASSWORD: qbt.password,
        CONF_QBT_VERIFY_SSL: True,
    }


def make_entry(
    sim: MamSimulator, qbt: QbtDaemon, *, data: dict[str, Any] | None = None, **options: Any
) -> MockConfigEntry:
    """An entry for the simulator's account (uid 100001); ``data``/``options`` override defaults."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="MAM FixtureUser",
        unique_id="100001",
        data={**entry_data(sim, qbt), **(data or {})},
        options={**DEFAULT_OPTIONS, **options},
    )
