"""Reloads, stops and removal at bad moments (trust issue items 2, 3, 4 and the 429 back-off).

Real qBittorrent, the MAM simulator over real HTTP (it invalidates a cookie when it rotates it, as
MAM does) and the real HA core. ``hass_storage`` is phcc's in-memory ``.storage``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aioqbt.client import APIClient
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.mam_guard.const import CONF_MAM_ID, CONF_RULES_PAGES, DOMAIN
from custom_components.mam_guard.lib.engine import TAG_FROZEN
from mam_simulator import MamSimulator
from tests.support.entries import make_entry, only_client
from tests.support.qbt_daemon import QbtDaemon
from tests.support.qbt_helpers import eventually, spawn_again
from tests.test_ratio_emergency import PAUSED, PREF_KEYS, Farm, arrange, settle, setup, torrents


@pytest.fixture
def entry(mam_sim: MamSimulator, qbittorrent: QbtDaemon) -> MockConfigEntry:
    """An entry without the rules refresh (only jsonLoad reaches the simulator)."""
    return make_entry(mam_sim, qbittorrent, **{CONF_RULES_PAGES: []})


@pytest.fixture
async def farm(qbittorrent: QbtDaemon, qbt_api: APIClient) -> Farm:
    """The emergency scenario's torrents with low limits (the emergency raises them)."""
    await qbt_api.app.set_preferences(
        {"queueing_enabled": True, "max_active_uploads": 1, "max_active_torrents": 3}
    )
    return await arrange(qbt_api, qbittorrent)


def stored(hass_storage: dict[str, Any], entry: MockConfigEntry) -> dict[str, Any]:
    data: dict[str, Any] = hass_storage[f"{DOMAIN}.{entry.entry_id}"]["data"]
    return data


def reauth_flows(hass: HomeAssistant) -> list[Any]:
    return [
        f for f in hass.config_entries.flow.async_progress() if f["context"]["source"] == "reauth"
    ]


async def test_reload_while_a_poll_is_in_flight_keeps_the_rotated_cookie(
    hass: HomeAssistant, entry: MockConfigEntry, mam_sim: MamSimulator
) -> None:
    """Item 4: MAM rotates the cookie of a slow poll; a reload meanwhile must not lose it."""
    await setup(hass, entry)
    mam_sim.state.delay = 1.0
    poll = hass.async_create_task(entry.runtime_data.account.async_refresh())

    async def in_flight() -> bool:
        return mam_sim.in_flight == 1

    await eventually(in_flight)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await poll
    assert entry.state is ConfigEntryState.LOADED
    assert not reauth_flows(hass)
    mam_sim.state.delay = 0
    await entry.runtime_data.account.async_refresh()
    assert entry.runtime_data.account.last_update_success


async def test_stop_while_a_poll_is_in_flight_persists_the_rotated_cookie(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    hass_storage: dict[str, Any],
) -> None:
    """Item 4: at HA stop the poll task is cancelled; the rotated cookie must still be stored."""
    await setup(hass, entry)
    mam_sim.state.delay = 1.0
    poll = hass.async_create_task(entry.runtime_data.account.async_refresh())

    async def in_flight() -> bool:
        return mam_sim.in_flight == 1

    await eventually(in_flight)
    poll.cancel()  # what HA does to background tasks when it stops
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert mam_sim.in_flight == 0
    assert stored(hass_storage, entry)["mam_id"] in mam_sim.valid_cookies
    # Nothing is written after the stop: the store is closed.
    before = dict(stored(hass_storage, entry))
    entry.runtime_data.store.data["mam_id"] = "stale"
    await entry.runtime_data.store.async_save()
    assert stored(hass_storage, entry) == before


async def test_reload_during_a_service_call_never_writes_stale_state(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    farm: Farm,
    hass_storage: dict[str, Any],
) -> None:
    """Item 3: a trigger_freeze still waiting for qBittorrent to settle when the entry reloads."""
    await setup(hass, entry)
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    await hass.services.async_call(DOMAIN, "release_freeze", {}, blocking=True)
    # Right after our own release a new freeze waits ~3 s for qBittorrent's view to settle.
    call = hass.async_create_task(
        hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    )
    await asyncio.sleep(0.3)
    assert not call.done()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await call
    assert entry.state is ConfigEntryState.LOADED
    # The reloaded instance polled MAM (a new cookie); the old one must not have written over it.
    cookie = stored(hass_storage, entry)["mam_id"]
    assert cookie in mam_sim.valid_cookies
    assert entry.runtime_data.client.mam_id == cookie
    # The freeze that was running finished before the reload and the new instance carries it on.
    assert entry.runtime_data.emergency.active
    assert stored(hass_storage, entry)["emergency"]["manual"] is True
    await settle(qbt_api, lambda t: all(TAG_FROZEN in t[h][1] for h in farm.paid))
    # A restart now still has a valid session.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert not reauth_flows(hass)


async def test_removing_the_entry_mid_emergency_gives_everything_back(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    farm: Farm,
    hass_storage: dict[str, Any],
    issue_registry: ir.IssueRegistry,
) -> None:
    """Item 2: removal releases first (torrents, tags, preferences), then forgets the record."""
    before = await torrents(qbt_api)
    prefs_before = {k: (await qbt_api.app.preferences())[k] for k in PREF_KEYS}
    await setup(hass, entry)
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    await settle(qbt_api, lambda t: all(t[h][0] in PAUSED for h in farm.paid))
    assert (await qbt_api.app.preferences())["max_active_uploads"] >= 50

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    after = await settle(
        qbt_api, lambda t: all(t[h][0] not in PAUSED and not t[h][1] for h in farm.paid)
    )
    for thash in farm.paid:
        assert after[thash][1:] == before[thash][1:]
    assert {k: (await qbt_api.app.preferences())[k] for k in PREF_KEYS} == prefs_before
    assert f"{DOMAIN}.{entry.entry_id}" not in hass_storage
    assert not [i for i in issue_registry.issues.values() if i.domain == DOMAIN]


async def test_removal_with_qbittorrent_down_keeps_the_record_for_the_next_entry(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    qbt_api: APIClient,
    farm: Farm,
    hass_storage: dict[str, Any],
    issue_registry: ir.IssueRegistry,
) -> None:
    """Item 2: qBittorrent unreachable at removal: the snapshot survives; re-adding releases."""
    prefs_before = {k: (await qbt_api.app.preferences())[k] for k in PREF_KEYS}
    await setup(hass, entry)
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    await settle(qbt_api, lambda t: all(t[h][0] in PAUSED for h in farm.paid))
    qbittorrent.stop()

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    issue = issue_registry.async_get_issue(DOMAIN, "orphaned_freeze_100001")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["frozen"] == "2"
    assert qbittorrent.password not in str(issue.translation_placeholders)
    # Per client, with where it was (SPEC §12: the next entry's clients are new subentries).
    (orphan,) = hass_storage[f"{DOMAIN}.orphan_100001"]["data"]["clients"].values()
    assert orphan["emergency"]["prefs_snapshot"]["max_active_uploads"] == 1
    assert orphan["connection"]["qbt_url"] == qbittorrent.url

    spawn_again(qbittorrent)
    # The user adds the account again with a new MAM session.
    again = make_entry(
        mam_sim, qbittorrent, data={CONF_MAM_ID: mam_sim.add_cookie()}, **{CONF_RULES_PAGES: []}
    )
    again.add_to_hass(hass)
    assert await hass.config_entries.async_setup(again.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    # The account poll's tick undoes the adopted client (a removed one: its stored connection).
    await only_client(again).coordinator.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)

    await qbt_api.auth.login(qbittorrent.username, qbittorrent.password)
    await settle(
        qbt_api,
        lambda t: all(t[h][0] not in PAUSED and TAG_FROZEN not in t[h][1] for h in farm.paid),
    )
    assert {k: (await qbt_api.app.preferences())[k] for k in PREF_KEYS} == prefs_before
    assert issue_registry.async_get_issue(DOMAIN, "orphaned_freeze_100001") is None
    assert f"{DOMAIN}.orphan_100001" not in hass_storage
    assert not again.runtime_data.emergency.active
    assert list(again.runtime_data.emergency.clients) == list(again.subentries)
    assert set(hass_storage[f"{DOMAIN}.{again.entry_id}"]["data"]["clients"]) <= set(
        again.subentries
    )


async def test_rate_limit_survives_a_reload(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    hass_storage: dict[str, Any],
) -> None:
    """A 429 means no request to MAM for 30 minutes, across a reload or restart too."""
    await setup(hass, entry)
    mam_sim.fail_next(429)
    await entry.runtime_data.account.async_refresh()
    assert not entry.runtime_data.account.last_update_success
    assert stored(hass_storage, entry)["rate_limited_until"]
    sent = mam_sim.requests["jsonLoad.php"]
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert mam_sim.requests["jsonLoad.php"] == sent  # the reloaded entry waits too
    assert entry.runtime_data.client.rate_limited_until is not None
