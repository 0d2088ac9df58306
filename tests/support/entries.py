"""Config entries for the MAM simulator and a real qBittorrent."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigSubentryData
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.mam_guard.config_flow import qbt_identity
from custom_components.mam_guard.const import (
    CONF_MAM_BASE_URL,
    CONF_MAM_ID,
    CONF_QBT_PASSWORD,
    CONF_QBT_URL,
    CONF_QBT_USERNAME,
    CONF_QBT_VERIFY_SSL,
    CONFIG_ENTRY_MINOR_VERSION,
    CONFIG_ENTRY_VERSION,
    DEFAULT_OPTIONS,
    DEFAULT_QBT_NAME,
    DOMAIN,
    QBT_DATA_KEYS,
    SUBENTRY_QBITTORRENT,
)
from custom_components.mam_guard.data import QbtClient
from custom_components.mam_guard.lib.emergency import EmergencyRecord
from mam_simulator import MamSimulator
from tests.support.mam_sim import TEST_COOKIE
from tests.support.qbt_daemon import QbtDaemon


def mam_data(sim: MamSimulator, cookie: str = TEST_COOKIE) -> dict[str, Any]:
    """A version 2 entry's data: the MAM side only."""
    return {CONF_MAM_ID: cookie, CONF_MAM_BASE_URL: sim.base_url}


def qbt_data(qbt: QbtDaemon) -> dict[str, Any]:
    """A qBittorrent subentry's data for a real daemon."""
    return {
        CONF_QBT_URL: qbt.url,
        CONF_QBT_USERNAME: qbt.username,
        CONF_QBT_PASSWORD: qbt.password,
        CONF_QBT_VERIFY_SSL: True,
    }


def entry_data(sim: MamSimulator, qbt: QbtDaemon, cookie: str = TEST_COOKIE) -> dict[str, Any]:
    """The flat data of a version 1 entry (MAM and qBittorrent together): see make_legacy_entry."""
    return {**mam_data(sim, cookie), **qbt_data(qbt)}


def qbt_subentry(data: dict[str, Any], title: str = DEFAULT_QBT_NAME) -> ConfigSubentryData:
    """A ``qbittorrent`` subentry as the flow creates it (unique_id = the URL's identity)."""
    return ConfigSubentryData(
        subentry_type=SUBENTRY_QBITTORRENT,
        title=title,
        data=data,
        unique_id=qbt_identity(data[CONF_QBT_URL]),
    )


def make_entry(
    sim: MamSimulator, qbt: QbtDaemon, *, data: dict[str, Any] | None = None, **options: Any
) -> MockConfigEntry:
    """A version 2 entry for the simulator's account (uid 100001) with one qBittorrent subentry.

    ``data`` overrides the defaults; its qBittorrent keys go to the subentry (callers written
    for version 1 keep working). ``options`` override the default options.
    """
    overrides = data or {}
    qbt_overrides = {key: value for key, value in overrides.items() if key in QBT_DATA_KEYS}
    return MockConfigEntry(
        domain=DOMAIN,
        title="MAM FixtureUser",
        unique_id="100001",
        version=CONFIG_ENTRY_VERSION,
        minor_version=CONFIG_ENTRY_MINOR_VERSION,
        data={
            **mam_data(sim),
            **{key: value for key, value in overrides.items() if key not in QBT_DATA_KEYS},
        },
        options={**DEFAULT_OPTIONS, **options},
        subentries_data=[qbt_subentry({**qbt_data(qbt), **qbt_overrides})],
    )


def make_legacy_entry(
    sim: MamSimulator, qbt: QbtDaemon, *, data: dict[str, Any] | None = None, **options: Any
) -> MockConfigEntry:
    """A version 1 entry (before SPEC §12): the qBittorrent keys in its data, no subentry."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="MAM FixtureUser",
        unique_id="100001",
        version=1,
        minor_version=1,
        data={**entry_data(sim, qbt), **(data or {})},
        options={**DEFAULT_OPTIONS, **options},
    )


def only_client(entry: MockConfigEntry) -> QbtClient:
    """The runtime of an entry's only qBittorrent client (its adapter and heartbeat)."""
    clients: dict[str, QbtClient] = entry.runtime_data.qbt_clients
    (client,) = clients.values()
    return client


def client_record(entry: MockConfigEntry, key: str | None = None) -> EmergencyRecord:
    """A client's emergency record (by subentry id; the only client's by default)."""
    record: EmergencyRecord = entry.runtime_data.emergency.clients[
        key or only_client(entry).key
    ].record
    return record
