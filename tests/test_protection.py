"""What the user sees is true (issue 10): the protection state, event timing, repairs, the torrent
lists, the buttons and the action errors, against a real qBittorrent and the MAM simulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import patch

from aioqbt.client import APIClient
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.mam_guard.const import (
    CONF_ENFORCEMENT,
    CONF_RULES_PAGES,
    DOMAIN,
    EVENT_EMERGENCY_APPLIED,
    EVENT_EMERGENCY_ENDED,
    EVENT_EMERGENCY_STARTED,
)
from mam_simulator import MamSimulator
from tests.support.entries import client_record, make_entry, only_client
from tests.support.qbt_daemon import QbtDaemon
from tests.support.qbt_helpers import eventually, spawn_again
from tests.test_ratio_emergency import PAUSED, Farm, arrange, poll_account, settle, setup


@pytest.fixture
def entry(mam_sim: MamSimulator, qbittorrent: QbtDaemon) -> MockConfigEntry:
    """An entry without the rules refresh (only jsonLoad reaches the simulator)."""
    return make_entry(mam_sim, qbittorrent, **{CONF_RULES_PAGES: []})


@pytest.fixture
async def farm(qbittorrent: QbtDaemon, qbt_api: APIClient) -> Farm:
    """Two paid MAM downloads (paid0.m4b, paid1.m4b), a freeleech one, two seeds."""
    await qbt_api.app.set_preferences({"queueing_enabled": True, "max_active_uploads": 1})
    return await arrange(qbt_api, qbittorrent)


def state(hass: HomeAssistant, entity_registry: er.EntityRegistry, platform: str, key: str) -> Any:
    entity_id = entity_registry.async_get_entity_id(platform, DOMAIN, f"100001_{key}")
    assert entity_id is not None, key
    current = hass.states.get(entity_id)
    assert current is not None, key
    return current


def issue_key(issue_registry: ir.IssueRegistry, kind: str, entry: MockConfigEntry) -> str | None:
    issue = issue_registry.async_get_issue(DOMAIN, f"{kind}_{entry.entry_id}")
    return None if issue is None else issue.translation_key


async def heartbeat(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """The minute heartbeat: qBittorrent poll, emergency tick."""
    await only_client(entry).coordinator.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_unreachable_qbittorrent_is_never_shown_as_protected(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    qbt_api: APIClient,
    farm: Farm,
    entity_registry: er.EntityRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    started = async_capture_events(hass, EVENT_EMERGENCY_STARTED)
    applied = async_capture_events(hass, EVENT_EMERGENCY_APPLIED)
    ended = async_capture_events(hass, EVENT_EMERGENCY_ENDED)
    await setup(hass, entry)
    assert state(hass, entity_registry, "sensor", "protection").state == "idle"

    qbittorrent.stop()
    mam_sim.state.ratio = 0.7
    await poll_account(hass, entry)
    protection = state(hass, entity_registry, "sensor", "protection")
    assert protection.state == "unreachable"
    assert "NOT frozen" in protection.attributes["reason"]
    assert "freeze" in protection.attributes["pending_actions"]
    assert state(hass, entity_registry, "binary_sensor", "emergency_freeze").state == "on"
    # The started event says the actions are not in place; nothing claims a freeze.
    assert [(e.data["pending"], e.data["protection"], e.data["frozen"]) for e in started] == [
        (True, "unreachable", 0)
    ]
    assert issue_key(issue_registry, "qbittorrent_unreachable", entry) == "qbittorrent_unreachable"
    assert issue_key(issue_registry, "ratio_emergency", entry) == "ratio_emergency_pending"
    status = await hass.services.async_call(
        DOMAIN, "get_status", {}, blocking=True, return_response=True
    )
    assert status is not None
    assert status["compliance"]["download_frozen"] is False  # type: ignore[index]
    assert status["emergency"]["protection"] == "unreachable"  # type: ignore[index]
    with pytest.raises(HomeAssistantError, match="NOT frozen") as caught:
        await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    assert caught.value.translation_key == "freeze_not_applied"
    assert entry.runtime_data.emergency.active  # still declared, retried every minute

    spawn_again(qbittorrent)

    async def protected() -> bool:
        await heartbeat(hass, entry)
        return state(hass, entity_registry, "sensor", "protection").state == "protected"

    await eventually(protected, within=20, interval=0.5)
    assert [(e.data["frozen"], e.data["entry_id"]) for e in applied] == [(2, entry.entry_id)]
    assert len(started) == 1
    assert issue_key(issue_registry, "qbittorrent_unreachable", entry) is None
    assert issue_key(issue_registry, "ratio_emergency", entry) == "ratio_emergency"
    frozen = state(hass, entity_registry, "sensor", "frozen_torrents")
    assert frozen.state == "2"
    assert frozen.attributes["torrents"] == ["paid0.m4b", "paid1.m4b"]
    assert frozen.attributes["more"] == 0
    await qbt_api.auth.login(qbittorrent.username, qbittorrent.password)
    await settle(qbt_api, lambda t: all(t[h][0] in PAUSED for h in farm.paid))

    # trigger_freeze made it a manual emergency: it ends with release_freeze, after the undo.
    await hass.services.async_call(DOMAIN, "release_freeze", {}, blocking=True)
    assert [(e.data["frozen"], e.data["pending"], e.data["manual"]) for e in ended] == [
        (2, False, True)
    ]
    assert state(hass, entity_registry, "sensor", "protection").state == "idle"
    assert issue_key(issue_registry, "ratio_emergency", entry) is None
    assert len(applied) == 1


async def test_enforcement_off_is_not_enforcing(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    farm: Farm,
    entity_registry: er.EntityRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = make_entry(mam_sim, qbittorrent, **{CONF_RULES_PAGES: [], CONF_ENFORCEMENT: False})
    started = async_capture_events(hass, EVENT_EMERGENCY_STARTED)
    applied = async_capture_events(hass, EVENT_EMERGENCY_APPLIED)
    await setup(hass, entry)
    mam_sim.state.ratio = 0.8
    await poll_account(hass, entry)
    protection = state(hass, entity_registry, "sensor", "protection")
    assert protection.state == "not_enforcing"
    assert "enforcement is off" in protection.attributes["reason"]
    assert [(e.data["pending"], e.data["protection"]) for e in started] == [(True, "not_enforcing")]
    assert issue_key(issue_registry, "ratio_emergency", entry) == "ratio_emergency_not_enforcing"
    # Nothing is frozen on purpose: the action does not fail.
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    await heartbeat(hass, entry)
    assert not applied


async def test_buttons_hold_off_and_past_values(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    qbt_api: APIClient,
    farm: Farm,
    entity_registry: er.EntityRegistry,
) -> None:
    await setup(hass, entry)
    release = state(hass, entity_registry, "button", "release_freeze")
    trigger = state(hass, entity_registry, "button", "trigger_freeze")
    assert release.state == "unavailable"  # nothing to release
    assert trigger.state != "unavailable"

    await hass.services.async_call(
        "button", "press", {"entity_id": trigger.entity_id}, blocking=True
    )
    await settle(qbt_api, lambda t: all(t[h][0] in PAUSED for h in farm.paid))
    assert state(hass, entity_registry, "sensor", "protection").state == "protected"
    assert state(hass, entity_registry, "button", "trigger_freeze").state == "unavailable"
    emergency = state(hass, entity_registry, "binary_sensor", "emergency_freeze")
    assert emergency.attributes["manual"] is True
    assert emergency.attributes["since"] is not None

    await hass.services.async_call(
        "button", "press", {"entity_id": release.entity_id}, blocking=True
    )
    emergency = state(hass, entity_registry, "binary_sensor", "emergency_freeze")
    assert emergency.state == "off"
    # A past emergency's values are not shown as if current; the hold-off is.
    assert emergency.attributes["since"] is None
    assert emergency.attributes["trigger_ratio"] is None
    assert emergency.attributes["manual"] is False
    hold_off = dt_util.parse_datetime(emergency.attributes["hold_off_until"])
    assert hold_off is not None
    assert timedelta(minutes=59) < hold_off - dt_util.utcnow() <= timedelta(hours=1)
    assert state(hass, entity_registry, "button", "release_freeze").state == "unavailable"
    await settle(qbt_api, lambda t: all(t[h][0] not in PAUSED for h in farm.paid))


async def test_repair_flow_releases_or_keeps(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    qbt_api: APIClient,
    farm: Farm,
    issue_registry: ir.IssueRegistry,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    await setup(hass, entry)
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    issue_id = f"ratio_emergency_{entry.entry_id}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    manager = repairs_flow_manager(hass)
    assert manager is not None

    flow = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    assert flow["type"] == "menu"
    assert flow["description_placeholders"]["frozen"] == "2"  # the issue's real numbers
    result = await manager.async_configure(flow["flow_id"], {"next_step_id": "keep"})
    assert result["type"] == "abort"
    assert entry.runtime_data.emergency.active
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    flow = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    result = await manager.async_configure(flow["flow_id"], {"next_step_id": "release"})
    assert result["type"] == "create_entry"
    assert not entry.runtime_data.emergency.active
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    await settle(qbt_api, lambda t: all(t[h][0] not in PAUSED for h in farm.paid))


async def test_release_that_cannot_reach_qbittorrent_is_an_error(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    qbittorrent: QbtDaemon,
    qbt_api: APIClient,
    farm: Farm,
) -> None:
    await setup(hass, entry)
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    await settle(qbt_api, lambda t: all(t[h][0] in PAUSED for h in farm.paid))
    qbittorrent.stop()
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(DOMAIN, "release_freeze", {}, blocking=True)
    assert caught.value.translation_key == "release_not_applied"
    assert not entry.runtime_data.emergency.active  # released; the undo is retried
    spawn_again(qbittorrent)
    await qbt_api.auth.login(qbittorrent.username, qbittorrent.password)

    async def undone() -> bool:  # the minute heartbeat retries the undo until it lands
        await heartbeat(hass, entry)
        return client_record(entry).phase == "idle"

    await eventually(undone, within=20, interval=0.5)
    await settle(qbt_api, lambda t: all(t[h][0] not in PAUSED for h in farm.paid))


@pytest.mark.parametrize(
    ("action", "method"),
    [("trigger_freeze", "async_trigger_manual"), ("release_freeze", "async_release_manual")],
)
async def test_an_unexpected_failure_reaches_the_caller_translated(
    hass: HomeAssistant, entry: MockConfigEntry, farm: Farm, action: str, method: str
) -> None:
    await setup(hass, entry)
    with (
        patch.object(type(entry.runtime_data.emergency), method, side_effect=RuntimeError("boom")),
        pytest.raises(HomeAssistantError) as caught,
    ):
        await hass.services.async_call(DOMAIN, action, {}, blocking=True)
    assert caught.value.translation_key == "emergency_action_failed"
    assert caught.value.translation_placeholders == {"error": "RuntimeError"}
