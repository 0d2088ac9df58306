"""Torrent lists stay out of the recorder (SPEC §2: large data never in recorded attributes)."""

from __future__ import annotations

from aioqbt.client import APIClient
from homeassistant.components.recorder import Recorder, get_instance, history
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.mam_guard.const import CONF_RULES_PAGES, DOMAIN
from mam_simulator import MamSimulator
from tests.support.entries import make_entry
from tests.support.qbt_daemon import QbtDaemon
from tests.test_protection import state
from tests.test_ratio_emergency import Farm, arrange, setup


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder must start before ``hass`` is set up (phcc), then our integration loads."""


@pytest.fixture
def entry(mam_sim: MamSimulator, qbittorrent: QbtDaemon) -> MockConfigEntry:
    """An entry without the rules refresh."""
    return make_entry(mam_sim, qbittorrent, **{CONF_RULES_PAGES: []})


@pytest.fixture
async def farm(qbittorrent: QbtDaemon, qbt_api: APIClient) -> Farm:
    """Two paid MAM downloads (paid0.m4b, paid1.m4b) among others."""
    return await arrange(qbt_api, qbittorrent)


async def test_torrent_lists_stay_out_of_the_recorder(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    qbt_api: APIClient,
    farm: Farm,
    entity_registry: er.EntityRegistry,
) -> None:
    start = dt_util.utcnow()
    await setup(hass, entry)
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    frozen = state(hass, entity_registry, "sensor", "frozen_torrents")
    assert frozen.attributes["torrents"] == ["paid0.m4b", "paid1.m4b"]
    await async_wait_recording_done(hass)
    recorded = await get_instance(hass).async_add_executor_job(
        history.get_significant_states, hass, start, None, [frozen.entity_id]
    )
    states = recorded[frozen.entity_id]
    assert [s.state for s in states][-1] == "2"
    for item in states:
        assert "torrents" not in item.attributes
        assert "more" not in item.attributes
