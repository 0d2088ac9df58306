"""Config entry migration (SPEC §12): version 1 kept its qBittorrent in the entry's data."""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.mam_guard import async_migrate_entry as exported
from custom_components.mam_guard.config_flow import MamGuardConfigFlow, qbt_identity
from custom_components.mam_guard.const import (
    CONF_MAM_BASE_URL,
    CONF_MAM_ID,
    CONF_QBT_PASSWORD,
    CONF_QBT_URL,
    CONF_QBT_USERNAME,
    CONF_QBT_VERIFY_SSL,
    DEFAULT_OPTIONS,
    DOMAIN,
    SUBENTRY_QBITTORRENT,
)
from custom_components.mam_guard.migration import async_migrate_entry
from mam_simulator import MamSimulator
from tests.support.entries import make_entry, make_legacy_entry, qbt_subentry
from tests.support.qbt_daemon import QbtDaemon

pytestmark = pytest.mark.usefixtures("mock_setup_entry")

COOKIE = "cookie-secret-7f3a"
PASSWORD = "qbt-secret-91c2"
MAM = {CONF_MAM_ID: COOKIE, CONF_MAM_BASE_URL: "https://www.myanonamouse.net"}
QBT = {
    CONF_QBT_URL: "http://192.168.1.20:8080/",
    CONF_QBT_USERNAME: "admin",
    CONF_QBT_PASSWORD: PASSWORD,
    CONF_QBT_VERIFY_SSL: False,
}


def _legacy(hass: HomeAssistant, data: dict[str, Any], **kwargs: Any) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="MAM FixtureUser",
        unique_id="100001",
        version=kwargs.pop("version", 1),
        data=data,
        options=DEFAULT_OPTIONS,
        **kwargs,
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _assert_no_secret(logs: pytest.LogCaptureFixture) -> None:
    assert COOKIE not in logs.text
    assert PASSWORD not in logs.text


def test_the_flow_writes_the_version_the_migration_reaches() -> None:
    assert (MamGuardConfigFlow.VERSION, MamGuardConfigFlow.MINOR_VERSION) == (2, 1)
    assert exported is async_migrate_entry  # HA finds it on the integration's module


async def test_setup_migrates_a_version_1_entry(
    hass: HomeAssistant, logs: pytest.LogCaptureFixture
) -> None:
    entry = _legacy(hass, {**MAM, **QBT})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    migrated = hass.config_entries.async_get_entry(entry.entry_id)
    assert migrated is not None
    assert (migrated.version, migrated.minor_version) == (2, 1)
    assert dict(migrated.data) == MAM
    assert dict(migrated.options) == DEFAULT_OPTIONS
    assert migrated.unique_id == "100001"
    [subentry] = migrated.subentries.values()
    assert subentry.subentry_type == SUBENTRY_QBITTORRENT
    assert subentry.title == "qBittorrent"
    assert subentry.unique_id == qbt_identity(QBT[CONF_QBT_URL]) == "http://192.168.1.20:8080"
    assert dict(subentry.data) == QBT
    assert (
        f"moved its qBittorrent (http://192.168.1.20:8080/) into subentry {subentry.subentry_id}"
        in (logs.text)
    )
    assert "migrated to config version 2.1" in logs.text
    _assert_no_secret(logs)


async def test_migration_is_idempotent(hass: HomeAssistant, logs: pytest.LogCaptureFixture) -> None:
    entry = _legacy(hass, {**MAM, **QBT})
    assert await async_migrate_entry(hass, entry) is True
    after_first = (entry.version, dict(entry.data), dict(entry.subentries))
    assert await async_migrate_entry(hass, entry) is True
    assert (entry.version, dict(entry.data), dict(entry.subentries)) == after_first
    assert len(entry.subentries) == 1
    _assert_no_secret(logs)


async def test_an_interrupted_migration_adds_no_second_client(
    hass: HomeAssistant, logs: pytest.LogCaptureFixture
) -> None:
    """Version 1 but its subentry already made: only the old copy leaves the data."""
    entry = _legacy(hass, {**MAM, **QBT}, subentries_data=[qbt_subentry(dict(QBT), "Seedbox")])
    [before] = entry.subentries.values()
    assert await async_migrate_entry(hass, entry) is True
    assert (entry.version, entry.minor_version) == (2, 1)
    assert dict(entry.data) == MAM
    assert list(entry.subentries.values()) == [before]
    assert "already has its qBittorrent subentry" in logs.text
    _assert_no_secret(logs)


async def test_a_version_1_entry_without_qbittorrent(
    hass: HomeAssistant, logs: pytest.LogCaptureFixture
) -> None:
    entry = _legacy(hass, dict(MAM))
    assert await async_migrate_entry(hass, entry) is True
    assert (entry.version, dict(entry.data), dict(entry.subentries)) == (2, MAM, {})
    assert "had no qBittorrent in its data" in logs.text


async def test_missing_qbittorrent_keys_get_their_defaults(hass: HomeAssistant) -> None:
    """A version 1 entry stored only what the form sent; the subentry has all four keys."""
    entry = _legacy(hass, {**MAM, CONF_QBT_URL: "http://qbt.lan:8080", CONF_QBT_USERNAME: None})
    assert await async_migrate_entry(hass, entry) is True
    [subentry] = entry.subentries.values()
    assert dict(subentry.data) == {
        CONF_QBT_URL: "http://qbt.lan:8080",
        CONF_QBT_USERNAME: "",
        CONF_QBT_PASSWORD: "",
        CONF_QBT_VERIFY_SSL: True,
    }
    assert dict(entry.data) == MAM


async def test_credentials_in_an_old_url_are_not_logged(
    hass: HomeAssistant, logs: pytest.LogCaptureFixture
) -> None:
    """Item 14b: entries saved before the flow refused them may hold userinfo in the URL."""
    url = "http://admin:url-secret-41@192.168.1.20:8080"
    entry = _legacy(hass, {**MAM, **QBT, CONF_QBT_URL: url})
    assert await async_migrate_entry(hass, entry) is True
    assert "url-secret-41" not in logs.text
    assert "http://***@192.168.1.20:8080" in logs.text
    [subentry] = entry.subentries.values()
    assert subentry.data[CONF_QBT_URL] == url  # kept: the runtime refuses and reports it


async def test_a_newer_version_is_refused(
    hass: HomeAssistant, logs: pytest.LogCaptureFixture
) -> None:
    """A downgrade: this MAM Guard cannot read the entry, HA keeps it untouched."""
    entry = _legacy(hass, dict(MAM), version=3)
    assert await async_migrate_entry(hass, entry) is False
    assert "newer than this MAM Guard" in logs.text
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert (entry.version, dict(entry.data)) == (3, MAM)
    _assert_no_secret(logs)


async def test_a_newer_minor_version_is_kept(hass: HomeAssistant) -> None:
    entry = _legacy(hass, dict(MAM), version=2, minor_version=5)
    assert await async_migrate_entry(hass, entry) is True
    assert (entry.version, entry.minor_version, dict(entry.data)) == (2, 5, MAM)
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED


async def test_the_test_helpers_agree_with_the_migration(
    hass: HomeAssistant, mam_sim: MamSimulator, qbittorrent: QbtDaemon
) -> None:
    """make_legacy_entry migrates into what make_entry builds (the entry's shape per version)."""
    legacy = make_legacy_entry(mam_sim, qbittorrent)
    legacy.add_to_hass(hass)
    assert await async_migrate_entry(hass, legacy) is True
    current = make_entry(mam_sim, qbittorrent)
    assert (legacy.version, legacy.minor_version) == (current.version, current.minor_version)
    assert legacy.data == current.data
    [old] = legacy.subentries.values()
    [new] = current.subentries.values()
    assert (old.subentry_type, old.title, old.unique_id, old.data) == (
        new.subentry_type,
        new.title,
        new.unique_id,
        new.data,
    )
