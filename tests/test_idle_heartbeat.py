"""A heartbeat during an emergency that changed nothing: no storage write, one read (issue 11).

Real HA core, real qBittorrent, the MAM simulator. An SD card wears out with writes: the old
heartbeat rewrote the whole emergency record (880 KB of JSON at 20,000 torrents) every minute,
and read ``sync/maindata`` twice (once in the emergency tick, once for the sensors).
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from aioqbt.client import APIClient
from homeassistant.core import HomeAssistant
from homeassistant.helpers import storage
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.mam_guard.const import CONF_RULES_PAGES
from custom_components.mam_guard.lib.emergency import PHASE_ACTIVE
from custom_components.mam_guard.lib.engine import TAG_FORCED, TAG_FROZEN
from mam_simulator import MamSimulator
from tests.support.entries import client_record, make_entry, only_client
from tests.support.qbt_daemon import QbtDaemon
from tests.test_ratio_emergency import PAUSED, Farm, arrange, poll_account, settle, setup


@pytest.fixture
def entry(mam_sim: MamSimulator, qbittorrent: QbtDaemon) -> MockConfigEntry:
    return make_entry(mam_sim, qbittorrent, **{CONF_RULES_PAGES: []})


@pytest.fixture
async def farm(qbittorrent: QbtDaemon, qbt_api: APIClient) -> Farm:
    await qbt_api.app.set_preferences({"max_active_uploads": 1, "max_active_torrents": 3})
    return await arrange(qbt_api, qbittorrent)


async def heartbeat(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await only_client(entry).coordinator.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_idle_heartbeats_during_an_emergency_write_nothing(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    farm: Farm,
) -> None:
    await setup(hass, entry)
    mam_sim.state.ratio = 0.9
    await poll_account(hass, entry)
    emergency = entry.runtime_data.emergency
    assert client_record(entry).phase == PHASE_ACTIVE
    await settle(
        qbt_api,
        lambda t: (
            all(t[h][0] in PAUSED and TAG_FROZEN in t[h][1] for h in farm.paid)
            and all(t[h][1:] == (frozenset({TAG_FORCED}), True) for h in farm.seeds)
        ),
    )
    await heartbeat(hass, entry)  # absorbs qBittorrent's state lag after our own actions

    writes: list[str] = []
    real_save = storage.Store.async_save
    real_delay = storage.Store.async_delay_save

    async def counted_save(self: storage.Store[Any], data: Any) -> None:
        writes.append(self.key)
        await real_save(self, data)

    def counted_delay(self: storage.Store[Any], data_func: Any, delay: float = 0) -> None:
        writes.append(self.key)
        real_delay(self, data_func, delay)

    adapter = only_client(entry).adapter
    with (
        patch.object(storage.Store, "async_save", counted_save),
        patch.object(storage.Store, "async_delay_save", counted_delay),
    ):
        for _ in range(3):
            sent = adapter.request_count
            await heartbeat(hass, entry)
            # sync/maindata once (the emergency plans on it) + app/preferences for the sensor.
            assert adapter.request_count - sent == 2
    assert writes == []  # not the record, not a registry: nothing
    assert client_record(entry).phase == PHASE_ACTIVE
    assert emergency.protection == "protected"
    assert only_client(entry).coordinator.data.mam_torrents == 5  # 2 paid, freeleech, 2 seeds
    assert only_client(entry).coordinator.last_update_success

    # The record still changes when something happens (written once it differs).
    mam_sim.state.ratio = 1.2
    with patch.object(storage.Store, "async_save", counted_save):
        await poll_account(hass, entry)
    assert writes
    await settle(qbt_api, lambda t: all(t[h][0] not in PAUSED for h in farm.paid))
