"""The ratio emergency in Home Assistant, against a real qBittorrent and the MAM simulator.

Polls are driven explicitly (``async_refresh`` / the heartbeat ``async_tick``) in real time: the
interval scheduling itself is covered by the account tests, and qBittorrent needs real time to
apply state changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from unittest.mock import patch

from aioqbt.client import APIClient
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.mam_guard.const import (
    CONF_ENFORCEMENT,
    CONF_RULES_PAGES,
    DOMAIN,
    EVENT_EMERGENCY_ENDED,
    EVENT_EMERGENCY_STARTED,
)
from custom_components.mam_guard.lib.engine import TAG_FORCED, TAG_FROZEN
from mam_simulator import MamSimulator
from tests.support.entries import client_record, make_entry, only_client
from tests.support.qbt_daemon import QbtDaemon
from tests.support.qbt_helpers import add_torrents, data_dir, eventually, spawn_again
from tests.support.torrents import OTHER_ANNOUNCE, make_torrent

PAUSED = {"pausedDL", "stoppedDL", "pausedUP", "stoppedUP"}


@dataclass
class Farm:
    """The torrents of the scenario, by role."""

    paid: list[str]  # downloading MAM torrents without exempt tags: frozen in an emergency
    freeleech: str  # downloading MAM torrent tagged freeleech: never frozen
    other: str  # downloading non-MAM torrent: never touched
    seeds: list[str]  # complete MAM torrents


async def arrange(api: APIClient, daemon: QbtDaemon) -> Farm:
    """Two paid MAM downloads, one freeleech one, one non-MAM download, two MAM seeds."""
    folder = data_dir(daemon)
    paid = [make_torrent(folder, f"paid{i}.m4b", 4000 + i, with_data=False) for i in range(2)]
    fl = make_torrent(folder, "fl.m4b", 4100, with_data=False)
    other = make_torrent(folder, "other.iso", 4200, tracker=OTHER_ANNOUNCE, with_data=False)
    seeds = [make_torrent(folder, f"seed{i}.epub", 3000 + i) for i in range(2)]
    await add_torrents(api, daemon, [*paid, other])
    await add_torrents(api, daemon, [fl], tags=["FreeLeech"])
    await add_torrents(api, daemon, seeds)
    hashes = [t.info_hash for t in (*paid, fl, other, *seeds)]

    async def loaded() -> bool:
        infos = await api.torrents.info(hashes=hashes)
        return len(infos) == len(hashes) and all(t.state != "checkingResumeData" for t in infos)

    await eventually(loaded)
    return Farm(
        [t.info_hash for t in paid], fl.info_hash, other.info_hash, [t.info_hash for t in seeds]
    )


async def torrents(api: APIClient) -> dict[str, Any]:
    """hash -> (state, tags, force_start)."""
    return {
        t.hash: (t.state, frozenset(tag.strip() for tag in t.tags if tag.strip()), t.force_start)
        for t in await api.torrents.info()
    }


async def settle(
    api: APIClient, condition: Callable[[dict[str, Any]], bool], within: float = 20.0
) -> dict[str, Any]:
    """qBittorrent shows new states only after its refresh interval: wait for ``condition``."""

    async def probe() -> dict[str, Any] | None:
        current = await torrents(api)
        try:
            ok = condition(current)
        except KeyError:  # a torrent not listed yet
            ok = False
        if not ok:
            last_seen[0] = current
        return current if ok else None

    last_seen: list[dict[str, Any] | None] = [None]
    try:
        return await eventually(probe, within=within)
    except AssertionError as err:
        raise AssertionError(f"qBittorrent never settled; last seen {last_seen[0]}") from err


def untouched(now: Any, then: Any) -> bool:
    """Same paused-ness, tags and force flag (queue states may move when limits are raised)."""
    return bool((now[0] in PAUSED) == (then[0] in PAUSED) and now[1:] == then[1:])


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def poll_account(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """One account poll and the emergency decision that follows it."""
    await entry.runtime_data.account.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)
    await entry.runtime_data.emergency.async_tick()


def emergency_state(hass: HomeAssistant, entity_registry: er.EntityRegistry) -> Any:
    entity_id = entity_registry.async_get_entity_id(
        "binary_sensor", DOMAIN, "100001_emergency_freeze"
    )
    assert entity_id is not None
    return hass.states.get(entity_id)


def sensor(hass: HomeAssistant, entity_registry: er.EntityRegistry, key: str) -> str:
    entity_id = entity_registry.async_get_entity_id("sensor", DOMAIN, f"100001_{key}")
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


@pytest.fixture
async def farm(qbittorrent: QbtDaemon, qbt_api: APIClient) -> Farm:
    """The scenario's torrents, with queueing and low limits so seeds sit in queuedUP."""
    await qbt_api.app.set_preferences(
        {
            "queueing_enabled": True,
            "max_active_uploads": 1,
            "max_active_torrents": 3,
            "max_active_downloads": 3,
            "up_limit": 50_000,
        }
    )
    return await arrange(qbt_api, qbittorrent)


@pytest.fixture
def entry(mam_sim: MamSimulator, qbittorrent: QbtDaemon) -> MockConfigEntry:
    """An entry without the rules refresh (only jsonLoad reaches the simulator)."""
    return make_entry(mam_sim, qbittorrent, **{CONF_RULES_PAGES: []})


PREF_KEYS = ("max_active_uploads", "max_active_torrents", "up_limit", "scheduler_enabled")


async def test_freeze_on_low_ratio_and_exact_restore(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    qbittorrent: QbtDaemon,
    farm: Farm,
    entity_registry: er.EntityRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    started = async_capture_events(hass, EVENT_EMERGENCY_STARTED)
    ended = async_capture_events(hass, EVENT_EMERGENCY_ENDED)
    await setup(hass, entry)
    before = await torrents(qbt_api)
    prefs_before = {k: (await qbt_api.app.preferences())[k] for k in PREF_KEYS}
    assert emergency_state(hass, entity_registry).state == "off"

    mam_sim.state.ratio = 0.99
    await poll_account(hass, entry)

    state = emergency_state(hass, entity_registry)
    assert state.state == "on"
    assert state.attributes["trigger_ratio"] == 0.99
    assert state.attributes["manual"] is False
    assert state.attributes["pending_actions"] == []
    assert sensor(hass, entity_registry, "ratio_status") == "emergency"
    after = await settle(
        qbt_api, lambda t: all(t[h][0] in PAUSED and TAG_FROZEN in t[h][1] for h in farm.paid)
    )
    assert after[farm.freeleech][0] not in PAUSED
    assert untouched(after[farm.other], before[farm.other])
    prefs = await qbt_api.app.preferences()
    assert prefs["max_active_uploads"] >= 50
    assert prefs["max_active_torrents"] >= 50
    assert prefs["up_limit"] == 0
    assert [e.data["frozen"] for e in started] == [2]
    assert started[0].data["entry_id"] == entry.entry_id
    assert started[0].data["ratio"] == 0.99
    assert sensor(hass, entity_registry, "frozen_torrents") == "2"
    issue = issue_registry.async_get_issue(DOMAIN, f"ratio_emergency_{entry.entry_id}")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["frozen"] == "2"
    for paid, critical, allowed in ((True, False, False), (True, True, True), (False, False, True)):
        answer = await hass.services.async_call(
            DOMAIN,
            "check_download",
            {"is_paid": paid, "is_vip_critical": critical},
            blocking=True,
            return_response=True,
        )
        assert answer is not None
        assert answer["allowed"] is allowed

    # A paid MAM download added during the emergency is frozen by the next heartbeat.
    late = make_torrent(data_dir(qbittorrent), "late.m4b", 999, with_data=False)
    await add_torrents(qbt_api, qbittorrent, [late])
    coordinator = only_client(entry).coordinator
    await coordinator.async_refresh()  # the minute heartbeat, usually while it is still loading
    await hass.async_block_till_done(wait_background_tasks=True)
    # How fast qBittorrent reads the new torrent is a race: the rule, whichever way it went, is
    # "look again in 10 s while a MAM torrent is loading during an emergency".
    loading = only_client(entry).adapter.view().loading_mam > 0
    assert coordinator.update_interval == timedelta(seconds=10 if loading else 60)
    await settle(qbt_api, lambda t: t[late.info_hash][0] not in {"checkingResumeData", "unknown"})
    await only_client(entry).coordinator.async_refresh()  # the quick re-check
    await hass.async_block_till_done(wait_background_tasks=True)
    await settle(
        qbt_api,
        lambda t: t[late.info_hash][0] in PAUSED and TAG_FROZEN in t[late.info_hash][1],
    )

    # A MAM seed that stalls during the emergency is force-started by the next heartbeat.
    late_seed = make_torrent(data_dir(qbittorrent), "late-seed.epub", 777)
    await add_torrents(qbt_api, qbittorrent, [late_seed])
    await settle(qbt_api, lambda t: t[late_seed.info_hash][0] == "stalledUP")
    await only_client(entry).coordinator.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)
    await settle(qbt_api, lambda t: t[late_seed.info_hash][1:] == (frozenset({TAG_FORCED}), True))

    mam_sim.state.ratio = 1.01
    await poll_account(hass, entry)
    assert emergency_state(hass, entity_registry).state == "off"
    assert issue_registry.async_get_issue(DOMAIN, f"ratio_emergency_{entry.entry_id}") is None
    assert [e.data["frozen"] for e in ended] == [3]
    restored = await settle(
        qbt_api,
        lambda t: (
            all((t[h][0] in PAUSED) == (st in PAUSED) for h, (st, _, _) in before.items())
            and t[late.info_hash][0] not in PAUSED
        ),
    )
    for h, (st, tags, forced) in before.items():
        assert TAG_FROZEN not in restored[h][1]
        assert TAG_FORCED not in restored[h][1]
        assert restored[h][1] == tags, h
        assert restored[h][2] == forced, h
        assert (restored[h][0] in PAUSED) == (st in PAUSED), h
    assert restored[late.info_hash][0] not in PAUSED
    assert restored[late_seed.info_hash][1:] == (frozenset(), False)
    assert {k: (await qbt_api.app.preferences())[k] for k in PREF_KEYS} == prefs_before


def switch_id(entity_registry: er.EntityRegistry) -> str:
    entity_id = entity_registry.async_get_entity_id("switch", DOMAIN, "100001_enforcement")
    assert entity_id is not None
    return entity_id


async def test_manual_freeze_and_release_with_hold_off(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    farm: Farm,
    entity_registry: er.EntityRegistry,
) -> None:
    await setup(hass, entry)
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    state = emergency_state(hass, entity_registry)
    assert state.state == "on"
    assert state.attributes["manual"] is True
    await settle(qbt_api, lambda t: all(TAG_FROZEN in t[h][1] for h in farm.paid))
    await poll_account(hass, entry)  # ratio 1.5: a manual freeze is not released by the ratio
    assert emergency_state(hass, entity_registry).state == "on"

    await hass.services.async_call(
        DOMAIN, "release_freeze", {"hold_off": {"seconds": 2}}, blocking=True
    )
    state = emergency_state(hass, entity_registry)
    assert state.state == "off"
    assert state.attributes["hold_off_until"] is not None
    await settle(qbt_api, lambda t: all(t[h][0] not in PAUSED for h in farm.paid))
    mam_sim.state.ratio = 0.5
    await poll_account(hass, entry)
    assert emergency_state(hass, entity_registry).state == "off"  # hold-off: no re-freeze yet
    await eventually(lambda: _hold_off_passed(entry), within=5)
    await entry.runtime_data.emergency.async_tick()
    assert emergency_state(hass, entity_registry).state == "on"


async def _hold_off_passed(entry: MockConfigEntry) -> bool:
    from homeassistant.util import dt as dt_util

    until = entry.runtime_data.emergency.record.hold_off_until
    return until is not None and dt_util.utcnow() >= until


async def test_release_without_emergency_sets_hold_off(
    hass: HomeAssistant, entry: MockConfigEntry, mam_sim: MamSimulator, farm: Farm
) -> None:
    await setup(hass, entry)
    await hass.services.async_call(DOMAIN, "release_freeze", {}, blocking=True)
    record = entry.runtime_data.emergency.record
    assert record.hold_off_until is not None
    assert record.active is False
    mam_sim.state.ratio = 0.5
    await poll_account(hass, entry)
    assert entry.runtime_data.emergency.active is False  # one hour of hold-off by default


async def test_enforcement_off_monitors_only_and_undoes(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    farm: Farm,
    entity_registry: er.EntityRegistry,
) -> None:
    await setup(hass, entry)
    mam_sim.state.ratio = 0.8
    await poll_account(hass, entry)
    await settle(qbt_api, lambda t: all(t[h][0] in PAUSED for h in farm.paid))

    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": switch_id(entity_registry)}, blocking=True
    )
    assert entry.options[CONF_ENFORCEMENT] is False
    assert emergency_state(hass, entity_registry).state == "on"  # still declared
    undone = await settle(
        qbt_api,
        lambda t: all(t[h][0] not in PAUSED and TAG_FROZEN not in t[h][1] for h in farm.paid),
    )
    assert all(TAG_FORCED not in tags for _, tags, _ in undone.values())
    assert (await qbt_api.app.preferences())["max_active_uploads"] == 1
    answer = await hass.services.async_call(
        DOMAIN, "get_status", {}, blocking=True, return_response=True
    )
    assert answer is not None
    assert answer["compliance"]["emergency_active"] is True  # type: ignore[index]
    assert answer["compliance"]["download_frozen"] is False  # type: ignore[index]

    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": switch_id(entity_registry)}, blocking=True
    )
    await settle(qbt_api, lambda t: all(TAG_FROZEN in t[h][1] for h in farm.paid))


async def test_restart_mid_emergency_reconciles_without_new_snapshot(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    farm: Farm,
    entity_registry: er.EntityRegistry,
) -> None:
    prefs_before = {k: (await qbt_api.app.preferences())[k] for k in PREF_KEYS}
    await setup(hass, entry)
    mam_sim.state.ratio = 0.9
    await poll_account(hass, entry)
    snapshot = dict(client_record(entry).prefs_snapshot or {})
    assert snapshot["max_active_uploads"] == 1

    # Restart Home Assistant mid-emergency.
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert emergency_state(hass, entity_registry).state == "on"
    await entry.runtime_data.emergency.async_tick()
    assert client_record(entry).prefs_snapshot == snapshot  # not our own 50s

    mam_sim.state.ratio = 1.3
    await poll_account(hass, entry)
    assert emergency_state(hass, entity_registry).state == "off"
    await settle(qbt_api, lambda t: all(t[h][0] not in PAUSED for h in farm.paid))
    assert {k: (await qbt_api.app.preferences())[k] for k in PREF_KEYS} == prefs_before


async def test_qbittorrent_down_at_entry_then_back(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    qbt_api: APIClient,
    farm: Farm,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await setup(hass, entry)
    qbittorrent.stop()
    mam_sim.state.ratio = 0.7
    await poll_account(hass, entry)
    state = emergency_state(hass, entity_registry)
    assert state.state == "on"
    assert "freeze" in state.attributes["pending_actions"]
    for _ in range(3):  # three heartbeats during the outage
        await only_client(entry).coordinator.async_refresh()
        await hass.async_block_till_done(wait_background_tasks=True)
    assert sensor(hass, entity_registry, "seeding_allocation") == "unavailable"
    unreachable = [
        r for r in caplog.records if "unreachable" in r.getMessage() and r.levelname == "WARNING"
    ]
    assert len(unreachable) == 1  # logged once per outage, not every minute

    spawn_again(qbittorrent)

    async def heartbeat_done() -> bool:
        """One heartbeat (a minute in real life); true once nothing is pending any more."""
        await only_client(entry).coordinator.async_refresh()
        await hass.async_block_till_done(wait_background_tasks=True)
        return emergency_state(hass, entity_registry).attributes["pending_actions"] == []

    await eventually(heartbeat_done, within=20, interval=0.5)
    assert "reachable again" in caplog.text
    await qbt_api.auth.login(qbittorrent.username, qbittorrent.password)  # the test's own client
    await settle(qbt_api, lambda t: all(TAG_FROZEN in t[h][1] for h in farm.paid))
    assert int(sensor(hass, entity_registry, "seeding_allocation")) >= 50


async def test_three_failures_trip_the_breaker(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    farm: Farm,
    entity_registry: er.EntityRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    await setup(hass, entry)
    mam_sim.state.ratio = 0.7
    with patch(
        "custom_components.mam_guard.lib.emergency.EmergencyExecutor._step_freeze",
        side_effect=RuntimeError("qBittorrent said something odd"),
    ):
        await poll_account(hass, entry)
        assert entry.options[CONF_ENFORCEMENT] is True
        for _ in range(2):
            await entry.runtime_data.emergency.async_tick()
    assert entry.options[CONF_ENFORCEMENT] is False
    breaker = issue_registry.async_get_issue(DOMAIN, f"enforcement_breaker_{entry.entry_id}")
    assert breaker is not None
    assert breaker.severity is ir.IssueSeverity.ERROR
    assert emergency_state(hass, entity_registry).state == "on"  # monitoring continues
    assert hass.states.get(switch_id(entity_registry)).state == "off"  # type: ignore[union-attr]

    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": switch_id(entity_registry)}, blocking=True
    )
    assert issue_registry.async_get_issue(DOMAIN, f"enforcement_breaker_{entry.entry_id}") is None
    assert client_record(entry).failures == 0


async def test_service_with_unknown_entry_is_a_validation_error(
    hass: HomeAssistant, entry: MockConfigEntry, farm: Farm
) -> None:
    await setup(hass, entry)
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "trigger_freeze", {"config_entry_id": "nope"}, blocking=True
        )


async def test_trigger_right_after_a_release_plans_on_settled_state(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    mam_sim: MamSimulator,
    qbt_api: APIClient,
    farm: Farm,
) -> None:
    """qBittorrent shows new states only after its refresh interval: a freeze right after our own
    release must not plan on the stale view (resumed downloads still looking paused)."""
    await setup(hass, entry)
    mam_sim.state.ratio = 0.97
    await poll_account(hass, entry)
    await settle(qbt_api, lambda t: all(t[h][0] in PAUSED for h in farm.paid))
    started = async_capture_events(hass, EVENT_EMERGENCY_STARTED)
    mam_sim.state.ratio = 1.12
    await poll_account(hass, entry)  # automatic release
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)  # at once
    assert [(e.data["frozen"], e.data["forced"]) for e in started] == [(2, 2)]
    await settle(
        qbt_api,
        lambda t: (
            all(t[h][0] in PAUSED and TAG_FROZEN in t[h][1] for h in farm.paid)
            and all(t[h][1:] == (frozenset({TAG_FORCED}), True) for h in farm.seeds)
        ),
    )
