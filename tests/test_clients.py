"""Several qBittorrent clients of one account in Home Assistant (SPEC §12, issue 12).

Two real daemons at once, qBittorrent 4.5.2 ("Home") and 5.x ("Seedbox"), each a ``qbittorrent``
subentry of the same account: one emergency freezes both and gives both back exactly; a client
that is down is named by ``protection`` and frozen when it returns while the other is frozen at
once; a client added during an emergency is frozen at its first heartbeat; a version 1 entry with
a stored mid-emergency record is migrated and released exactly, its entity ids unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import contextlib
from datetime import UTC, datetime
import functools
from pathlib import Path
from typing import Any
from unittest.mock import patch

import aiohttp
from aioqbt.client import APIClient
from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.mam_guard.const import (
    CONF_ENFORCEMENT,
    CONF_RULES_PAGES,
    CONFIG_ENTRY_MINOR_VERSION,
    CONFIG_ENTRY_VERSION,
    DEFAULT_OPTIONS,
    DOMAIN,
    SUBENTRY_QBITTORRENT,
)
from custom_components.mam_guard.emergency import REASONS
from custom_components.mam_guard.lib.emergency import PHASE_IDLE, EmergencyExecutor, EmergencyRecord
from custom_components.mam_guard.lib.engine import TAG_FROZEN, EmergencyOptions
from custom_components.mam_guard.lib.qbt import QbtAdapter
from mam_simulator import MamSimulator
from tests.conftest import _daemon
from tests.support.entries import (
    client_record,
    make_legacy_entry,
    mam_data,
    qbt_data,
    qbt_subentry,
)
from tests.support.mam_sim import TEST_COOKIE
from tests.support.qbt_daemon import QbtDaemon
from tests.support.qbt_helpers import eventually, logged_in_client, spawn_again
from tests.test_ratio_emergency import (
    PAUSED,
    PREF_KEYS,
    Farm,
    arrange,
    poll_account,
    settle,
    setup,
    torrents,
)

NAMES = {"4": "Home", "5": "Seedbox"}


@pytest.fixture
def daemons(socket_enabled: None, tmp_path: Path) -> Iterator[dict[str, QbtDaemon]]:
    """qBittorrent 4.5.2 (host) and 5.x (trixie chroot), both running for the whole test."""
    with contextlib.ExitStack() as stack:
        yield {
            flavour: stack.enter_context(
                contextlib.contextmanager(_daemon)(tmp_path / f"qbt{flavour}", flavour)
            )
            for flavour in ("4", "5")
        }


@pytest.fixture
async def apis(daemons: dict[str, QbtDaemon]) -> AsyncIterator[dict[str, APIClient]]:
    """A logged-in aioqbt client per daemon (to arrange and check state)."""
    async with contextlib.AsyncExitStack() as stack:
        yield {
            flavour: await stack.enter_async_context(logged_in_client(daemon))
            for flavour, daemon in daemons.items()
        }


async def _farm(api: APIClient, daemon: QbtDaemon) -> Farm:
    await api.app.set_preferences(
        {
            "queueing_enabled": True,
            "max_active_uploads": 1,
            "max_active_torrents": 3,
            "max_active_downloads": 3,
            "up_limit": 50_000,
        }
    )
    return await arrange(api, daemon)


@pytest.fixture
async def farms(daemons: dict[str, QbtDaemon], apis: dict[str, APIClient]) -> dict[str, Farm]:
    """The scenario's torrents on both daemons."""
    return {flavour: await _farm(apis[flavour], daemons[flavour]) for flavour in daemons}


def two_client_entry(
    sim: MamSimulator,
    daemons: dict[str, QbtDaemon],
    flavours: tuple[str, ...] = ("4", "5"),
    cookie: str = TEST_COOKIE,
) -> MockConfigEntry:
    """A version 2 entry of the simulator's account with a subentry per daemon."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="MAM FixtureUser",
        unique_id="100001",
        version=CONFIG_ENTRY_VERSION,
        minor_version=CONFIG_ENTRY_MINOR_VERSION,
        data=mam_data(sim, cookie),
        options={**DEFAULT_OPTIONS, CONF_RULES_PAGES: []},
        subentries_data=[qbt_subentry(qbt_data(daemons[f]), NAMES[f]) for f in flavours],
    )


def sid_of(entry: MockConfigEntry, name: str) -> str:
    return next(sid for sid, sub in entry.subentries.items() if sub.title == name)


async def heartbeat(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> None:
    """One minute heartbeat of the named client."""
    await entry.runtime_data.qbt_clients[sid_of(entry, name)].coordinator.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)


async def prefs_of(api: APIClient) -> dict[str, Any]:
    prefs = await api.app.preferences()
    return {key: prefs[key] for key in PREF_KEYS}


def frozen(farm: Farm) -> Any:
    return lambda t: all(t[h][0] in PAUSED and TAG_FROZEN in t[h][1] for h in farm.paid)


def released(farm: Farm) -> Any:
    return lambda t: all(t[h][0] not in PAUSED and TAG_FROZEN not in t[h][1] for h in farm.paid)


def state(hass: HomeAssistant, registry: er.EntityRegistry, platform: str, uid: str) -> Any:
    entity_id = registry.async_get_entity_id(platform, DOMAIN, uid)
    assert entity_id is not None, uid
    return hass.states.get(entity_id)


async def test_freeze_on_both_and_exact_release_on_both(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    daemons: dict[str, QbtDaemon],
    apis: dict[str, APIClient],
    farms: dict[str, Farm],
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    entry = two_client_entry(mam_sim, daemons)
    await setup(hass, entry)
    prefs_before = {f: await prefs_of(api) for f, api in apis.items()}
    before = {f: await torrents(api) for f, api in apis.items()}

    # A device per client under the account's, its entities in its subentry.
    account = device_registry.async_get_device_by_identifier((DOMAIN, "100001"), entry.entry_id)
    assert account is not None
    for name in NAMES.values():
        sid = sid_of(entry, name)
        device = device_registry.async_get_device_by_identifier(
            (DOMAIN, f"100001_{sid}"), entry.entry_id
        )
        assert device is not None
        assert (device.name, device.model, device.via_device_id) == (
            name,
            "qBittorrent",
            account.id,
        )
        connected = state(
            hass, entity_registry, "binary_sensor", f"100001_{sid}_qbittorrent_connected"
        )
        assert connected.state == "on"
        registered = entity_registry.async_get(connected.entity_id)
        assert registered is not None
        assert registered.config_subentry_id == sid
    # Totals over both clients (each daemon's farm: one stalled-free setup, same numbers).
    seeding = state(hass, entity_registry, "sensor", "100001_seeding_allocation")
    assert seeding.state == "2"  # max_active_uploads 1 + 1

    mam_sim.state.ratio = 0.99
    await poll_account(hass, entry)
    for flavour, api in apis.items():
        await settle(api, frozen(farms[flavour]))
        assert (await api.app.preferences())["max_active_uploads"] >= 50
    emergency = entry.runtime_data.emergency
    assert emergency.protection == "protected"
    assert state(hass, entity_registry, "sensor", "100001_frozen_torrents").state == "4"
    for name in NAMES.values():
        sid = sid_of(entry, name)
        assert state(hass, entity_registry, "sensor", f"100001_{sid}_frozen_torrents").state == "2"
    status = await hass.services.async_call(
        DOMAIN, "get_status", {}, blocking=True, return_response=True
    )
    document: Any = status["emergency"]
    assert document["frozen"]["count"] == 4
    assert {c["name"]: c["frozen"]["count"] for c in document["clients"].values()} == {
        "Home": 2,
        "Seedbox": 2,
    }
    assert all(c["qbittorrent"]["connected"] for c in document["clients"].values())

    mam_sim.state.ratio = 1.5
    await poll_account(hass, entry)
    for flavour, api in apis.items():
        after = await settle(api, released(farms[flavour]))
        assert await prefs_of(api) == prefs_before[flavour]
        for h in farms[flavour].paid:
            assert after[h][1] == before[flavour][h][1]
    assert all(c.record.phase == PHASE_IDLE for c in emergency.clients.values())
    assert emergency.protection == "idle"


async def test_one_client_down_the_other_frozen_at_once(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    daemons: dict[str, QbtDaemon],
    apis: dict[str, APIClient],
    farms: dict[str, Farm],
    entity_registry: er.EntityRegistry,
) -> None:
    entry = two_client_entry(mam_sim, daemons)
    await setup(hass, entry)
    daemons["5"].stop()
    await heartbeat(hass, entry, "Seedbox")  # the heartbeat finds it down
    seedbox = sid_of(entry, "Seedbox")
    assert (
        state(
            hass, entity_registry, "binary_sensor", f"100001_{seedbox}_qbittorrent_connected"
        ).state
        == "off"
    )
    assert (
        state(hass, entity_registry, "sensor", "100001_seeding_allocation").state == "unavailable"
    )

    mam_sim.state.ratio = 0.99
    await poll_account(hass, entry)
    await settle(apis["4"], frozen(farms["4"]))
    emergency = entry.runtime_data.emergency
    assert emergency.protection == "unreachable"
    assert emergency.reason == (
        "Ratio emergency, but qBittorrent 'Seedbox' cannot be reached: downloads are NOT frozen."
    )
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"qbittorrent_unreachable_{entry.entry_id}")
    assert issue is not None
    assert issue.translation_placeholders == {"account": "MAM FixtureUser", "clients": "Seedbox"}
    protection = state(hass, entity_registry, "sensor", "100001_protection")
    assert protection.state == "unreachable"
    assert "'Seedbox'" in protection.attributes["reason"]
    assert "'Home'" not in protection.attributes["reason"]

    spawn_again(daemons["5"])
    async with logged_in_client(daemons["5"]) as api5:

        async def frozen_when_back() -> bool:
            await heartbeat(hass, entry, "Seedbox")
            return (
                client_record(entry, seedbox).phase == "active"
                and not client_record(entry, seedbox).pending
            )

        await eventually(frozen_when_back, within=30, interval=0.5)
        await settle(api5, frozen(farms["5"]))
    assert emergency.protection == "protected"


async def test_client_added_during_an_emergency_is_frozen_at_its_heartbeat(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    daemons: dict[str, QbtDaemon],
    apis: dict[str, APIClient],
    farms: dict[str, Farm],
) -> None:
    entry = two_client_entry(mam_sim, daemons, ("4",))
    await setup(hass, entry)
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    await settle(apis["4"], frozen(farms["4"]))
    first = entry.runtime_data

    data = qbt_subentry(qbt_data(daemons["5"]), "Seedbox")
    hass.config_entries.async_add_subentry(entry, ConfigSubentry(**data))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not first  # reloaded with the new client
    assert set(entry.runtime_data.qbt_clients) == set(entry.subentries)
    assert entry.runtime_data.emergency.active  # the declaration survived the reload
    await heartbeat(hass, entry, "Seedbox")
    await settle(apis["5"], frozen(farms["5"]))
    assert entry.runtime_data.emergency.count("frozen") == 4

    # A client renamed (reconfigured): set up again, still frozen, nothing released.
    renamed = entry.runtime_data
    seedbox = entry.subentries[sid_of(entry, "Seedbox")]
    assert hass.config_entries.async_update_subentry(entry, seedbox, title="Seedbox 2")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.runtime_data is not renamed
    assert entry.runtime_data.qbt_clients[seedbox.subentry_id].name == "Seedbox 2"
    assert entry.runtime_data.emergency.count("frozen") == 4
    await settle(apis["5"], frozen(farms["5"]))

    # Options unchanged, subentries unchanged: no reload for another update.
    current = entry.runtime_data
    hass.config_entries.async_update_entry(entry, title="MAM FixtureUser")
    await hass.async_block_till_done()
    assert entry.runtime_data is current


async def test_removed_client_is_released_with_its_stored_connection(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    daemons: dict[str, QbtDaemon],
    apis: dict[str, APIClient],
    farms: dict[str, Farm],
    hass_storage: dict[str, Any],
) -> None:
    entry = two_client_entry(mam_sim, daemons)
    await setup(hass, entry)
    prefs_before = await prefs_of(apis["5"])
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    for flavour, api in apis.items():
        await settle(api, frozen(farms[flavour]))
    seedbox = sid_of(entry, "Seedbox")
    stored = hass_storage[f"{DOMAIN}.{entry.entry_id}"]["data"]["clients"][seedbox]
    assert stored["connection"]["qbt_url"] == daemons["5"].url

    assert hass.config_entries.async_remove_subentry(entry, seedbox)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert set(entry.runtime_data.qbt_clients) == {sid_of(entry, "Home")}
    registry = er.async_get(hass)
    assert (
        not [  # its device's entities went with it
            e
            for e in er.async_entries_for_config_entry(registry, entry.entry_id)
            if e.config_subentry_id == seedbox
        ]
    )
    await heartbeat(hass, entry, "Home")  # a removed client is undone on any tick
    await settle(apis["5"], released(farms["5"]))
    assert await prefs_of(apis["5"]) == prefs_before
    await settle(apis["4"], frozen(farms["4"]))  # the other stays frozen
    assert seedbox not in hass_storage[f"{DOMAIN}.{entry.entry_id}"]["data"]["clients"]


async def freeze_as_version_1(daemon: QbtDaemon) -> dict[str, Any]:
    """Freeze qBittorrent as the version before SPEC §12 did; its one stored record."""
    saved: list[dict[str, Any]] = []

    async def persist(record: EmergencyRecord) -> None:
        saved.append(record.to_dict())

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        adapter = QbtAdapter(session, daemon.url, daemon.username, daemon.password)
        executor = EmergencyExecutor(adapter, persist, EmergencyRecord(), EmergencyOptions())
        await executor.enter(0.9, manual=False, now=datetime.now(UTC))
        await adapter.close()
    assert saved[-1]["phase"] == "active"
    assert saved[-1]["active"] is True
    return saved[-1]


async def test_version_1_entry_mid_emergency_is_migrated_and_released_exactly(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    qbt_api: APIClient,
    hass_storage: dict[str, Any],
    entity_registry: er.EntityRegistry,
) -> None:
    farm = await _farm(qbt_api, qbittorrent)
    prefs_before = await prefs_of(qbt_api)
    before = await torrents(qbt_api)
    # The version before SPEC §12 froze qBittorrent and stored one record with everything.
    record = await freeze_as_version_1(qbittorrent)
    await settle(qbt_api, frozen(farm))

    legacy = make_legacy_entry(mam_sim, qbittorrent, **{CONF_RULES_PAGES: []})
    mam_sim.state.ratio = 0.9  # still in the emergency after the upgrade
    hass_storage[f"{DOMAIN}.{legacy.entry_id}"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"{DOMAIN}.{legacy.entry_id}",
        "data": {"emergency": record},
    }
    # Entities of the version 1 entry, as registered before the upgrade.
    keys = ("frozen_torrents", "seeding_allocation", "protection")
    legacy.add_to_hass(hass)
    old_ids = {
        key: entity_registry.async_get_or_create(
            "sensor", DOMAIN, f"100001_{key}", config_entry=legacy
        ).entity_id
        for key in keys
    }
    assert await hass.config_entries.async_setup(legacy.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert legacy.version == CONFIG_ENTRY_VERSION
    (sid,) = legacy.subentries
    assert legacy.subentries[sid].subentry_type == SUBENTRY_QBITTORRENT
    stored = hass_storage[f"{DOMAIN}.{legacy.entry_id}"]["data"]
    assert stored["emergency"]["active"] is True
    assert "phase" not in stored["emergency"]
    assert stored["clients"][sid]["emergency"]["phase"] == "active"
    assert legacy.runtime_data.emergency.protection == "protected"
    for key, entity_id in old_ids.items():
        assert entity_registry.async_get_entity_id("sensor", DOMAIN, f"100001_{key}") == entity_id
    assert hass.states.get(old_ids["frozen_torrents"]).state == "2"  # type: ignore[union-attr]

    await hass.services.async_call(DOMAIN, "release_freeze", {}, blocking=True)
    after = await settle(qbt_api, released(farm))
    assert await prefs_of(qbt_api) == prefs_before
    for h in farm.paid:
        assert after[h][1] == before[h][1]
    assert client_record(legacy).phase == PHASE_IDLE


async def test_orphan_of_a_version_1_entry_goes_to_the_first_client(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    qbt_api: APIClient,
    hass_storage: dict[str, Any],
) -> None:
    """A removed version 1 entry left ``{"emergency": record}``: the next entry undoes it."""
    farm = await _farm(qbt_api, qbittorrent)
    prefs_before = await prefs_of(qbt_api)
    record = await freeze_as_version_1(qbittorrent)
    await settle(qbt_api, frozen(farm))
    hass_storage[f"{DOMAIN}.orphan_100001"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"{DOMAIN}.orphan_100001",
        "data": {"emergency": record},
    }
    entry = two_client_entry(mam_sim, {"4": qbittorrent}, ("4",))
    await setup(hass, entry)
    assert not entry.runtime_data.emergency.active  # adopted, not declared
    assert f"{DOMAIN}.orphan_100001" not in hass_storage

    async def undone() -> bool:
        await heartbeat(hass, entry, "Home")
        return client_record(entry).phase == PHASE_IDLE

    await eventually(undone, within=20, interval=0.5)
    await settle(qbt_api, released(farm))
    assert await prefs_of(qbt_api) == prefs_before


async def test_account_without_a_client_is_never_protected(
    hass: HomeAssistant, mam_sim: MamSimulator, entity_registry: er.EntityRegistry
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="MAM FixtureUser",
        unique_id="100001",
        version=CONFIG_ENTRY_VERSION,
        minor_version=CONFIG_ENTRY_MINOR_VERSION,
        data=mam_data(mam_sim),
        options={**DEFAULT_OPTIONS, CONF_RULES_PAGES: []},
    )
    await setup(hass, entry)
    assert state(hass, entity_registry, "sensor", "100001_seeding_allocation").state == (
        "unavailable"
    )
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    assert caught.value.translation_key == "freeze_not_applied"
    emergency = entry.runtime_data.emergency
    assert emergency.active
    assert emergency.protection == "pending"
    assert emergency.reason == REASONS["no_client"]
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_ENFORCEMENT: False}
    )
    assert emergency.protection == "not_enforcing"


@contextlib.asynccontextmanager
async def hung_qbittorrent() -> AsyncIterator[str]:
    """A TCP server that accepts every connection and never answers; its URL."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):  # until the client gives up and closes
                pass
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        server.abort_clients()
        await server.wait_closed()


async def test_a_hung_client_blocks_neither_the_other_nor_the_declaration(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    qbittorrent: QbtDaemon,
    qbt_api: APIClient,
) -> None:
    farm = await _farm(qbt_api, qbittorrent)
    async with hung_qbittorrent() as url:
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="MAM FixtureUser",
            unique_id="100001",
            version=CONFIG_ENTRY_VERSION,
            minor_version=CONFIG_ENTRY_MINOR_VERSION,
            data=mam_data(mam_sim),
            options={**DEFAULT_OPTIONS, CONF_RULES_PAGES: []},
            subentries_data=[
                qbt_subentry(qbt_data(qbittorrent), "Home"),
                qbt_subentry({**qbt_data(qbittorrent), "qbt_url": url}, "Hung"),
            ],
        )
        # A short per-request timeout: the test waits for the hung client only at setup.
        with patch(
            "custom_components.mam_guard.QbtAdapter", functools.partial(QbtAdapter, timeout=8.0)
        ):
            await setup(hass, entry)
        emergency = entry.runtime_data.emergency
        hung = emergency.clients[sid_of(entry, "Hung")]

        mam_sim.state.ratio = 0.99
        await entry.runtime_data.account.async_refresh()  # the tick runs in the background
        await settle(qbt_api, frozen(farm))
        assert emergency.active  # declared while the hung client's freeze is in flight
        assert hung.lock.locked()
        # Home's heartbeat runs while the hung client still holds its own lock.
        home = entry.runtime_data.qbt_clients[sid_of(entry, "Home")].coordinator
        await asyncio.wait_for(home.async_refresh(), timeout=5)
        assert home.last_update_success
        assert hung.lock.locked()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not hung.lock.locked()
    assert emergency.protection == "unreachable"
    assert "'Hung'" in emergency.reason
    assert "'Home'" not in emergency.reason


async def test_removed_client_that_is_down_is_named_and_released_when_back(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    daemons: dict[str, QbtDaemon],
    apis: dict[str, APIClient],
    farms: dict[str, Farm],
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = two_client_entry(mam_sim, daemons)
    await setup(hass, entry)
    prefs_before = await prefs_of(apis["5"])
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    await settle(apis["5"], frozen(farms["5"]))
    seedbox = sid_of(entry, "Seedbox")
    daemons["5"].stop()
    assert hass.config_entries.async_remove_subentry(entry, seedbox)
    await hass.async_block_till_done(wait_background_tasks=True)
    await heartbeat(hass, entry, "Home")
    issue = issue_registry.async_get_issue(DOMAIN, f"client_removed_frozen_{seedbox}")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["client"] == "Seedbox"
    assert issue.translation_placeholders["frozen"] == "2"
    assert daemons["5"].password not in str(issue.translation_placeholders)
    status: Any = await hass.services.async_call(
        DOMAIN, "get_status", {}, blocking=True, return_response=True
    )
    assert status["emergency"]["clients"][seedbox]["removed"] is True
    assert entry.runtime_data.emergency.protection == "protected"  # Home is; Seedbox is gone

    spawn_again(daemons["5"])
    async with logged_in_client(daemons["5"]) as api5:

        async def undone() -> bool:
            await heartbeat(hass, entry, "Home")
            return seedbox not in entry.runtime_data.emergency.clients

        await eventually(undone, within=30, interval=0.5)
        await settle(api5, released(farms["5"]))
        assert await prefs_of(api5) == prefs_before
    assert issue_registry.async_get_issue(DOMAIN, f"client_removed_frozen_{seedbox}") is None


async def test_entry_removed_with_one_client_down_releases_the_other(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    daemons: dict[str, QbtDaemon],
    apis: dict[str, APIClient],
    farms: dict[str, Farm],
    hass_storage: dict[str, Any],
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = two_client_entry(mam_sim, daemons)
    await setup(hass, entry)
    prefs_before = {f: await prefs_of(api) for f, api in apis.items()}
    await hass.services.async_call(DOMAIN, "trigger_freeze", {}, blocking=True)
    for flavour, api in apis.items():
        await settle(api, frozen(farms[flavour]))
    seedbox = sid_of(entry, "Seedbox")
    daemons["5"].stop()

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await settle(apis["4"], released(farms["4"]))  # the reachable client is given back now
    assert await prefs_of(apis["4"]) == prefs_before["4"]
    orphan = hass_storage[f"{DOMAIN}.orphan_100001"]["data"]["clients"]
    assert set(orphan) == {seedbox}  # only what could not be undone
    assert orphan[seedbox]["connection"]["qbt_url"] == daemons["5"].url
    issue = issue_registry.async_get_issue(DOMAIN, "orphaned_freeze_100001")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["frozen"] == "2"

    spawn_again(daemons["5"])
    # Added again (a new MAM session), with Home only.
    again = two_client_entry(mam_sim, daemons, ("4",), mam_sim.add_cookie())
    await setup(hass, again)
    assert issue_registry.async_get_issue(DOMAIN, "orphaned_freeze_100001") is None
    async with logged_in_client(daemons["5"]) as api5:

        async def undone() -> bool:
            await heartbeat(hass, again, "Home")
            return seedbox not in again.runtime_data.emergency.clients

        await eventually(undone, within=30, interval=0.5)
        await settle(api5, released(farms["5"]))
        assert await prefs_of(api5) == prefs_before["5"]


async def test_one_failing_client_trips_the_breaker_for_the_account(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    daemons: dict[str, QbtDaemon],
    apis: dict[str, APIClient],
    farms: dict[str, Farm],
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = two_client_entry(mam_sim, daemons)
    await setup(hass, entry)
    prefs_before = await prefs_of(apis["4"])
    emergency = entry.runtime_data.emergency
    seedbox = emergency.clients[sid_of(entry, "Seedbox")]
    mam_sim.state.ratio = 0.7
    with patch.object(
        seedbox.executor, "_step_freeze", side_effect=RuntimeError("qBittorrent said no")
    ):
        await poll_account(hass, entry)
        await settle(apis["4"], frozen(farms["4"]))  # Home is frozen meanwhile
        assert emergency.protection == "unreachable"
        assert emergency.reason == (
            "Ratio emergency, but qBittorrent 'Seedbox' refuses the actions: downloads are NOT"
            " frozen."
        )
        await emergency.async_tick()
        await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.options[CONF_ENFORCEMENT] is False
    assert issue_registry.async_get_issue(DOMAIN, f"enforcement_breaker_{entry.entry_id}")
    # Enforcement is off for the account: Home is given back too.
    await hass.async_block_till_done(wait_background_tasks=True)
    await settle(apis["4"], released(farms["4"]))
    assert await prefs_of(apis["4"]) == prefs_before
    assert emergency.protection == "not_enforcing"
    assert "enforcement is off" in emergency.reason  # as with one client: the undo succeeded


async def test_updating_an_account_total_reads_every_client_now(
    hass: HomeAssistant,
    mam_sim: MamSimulator,
    daemons: dict[str, QbtDaemon],
    apis: dict[str, APIClient],
    entity_registry: er.EntityRegistry,
) -> None:
    """``homeassistant.update_entity`` on a total refreshes each client, as on a client sensor."""
    assert await async_setup_component(hass, "homeassistant", {})
    entry = two_client_entry(mam_sim, daemons)
    await setup(hass, entry)
    uid = "100001_seeding_allocation"
    before = int(state(hass, entity_registry, "sensor", uid).state)
    for api in apis.values():
        current = (await api.app.preferences())["max_active_uploads"]
        await api.app.set_preferences({"max_active_uploads": current + 5})
    entity_id = entity_registry.async_get_entity_id("sensor", DOMAIN, uid)
    await hass.services.async_call(
        "homeassistant", "update_entity", {"entity_id": [entity_id]}, blocking=True
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert int(state(hass, entity_registry, "sensor", uid).state) == before + 10
