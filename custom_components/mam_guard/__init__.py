"""MAM Guard: watches a MyAnonamouse account and guards its ratio with qBittorrent."""

from __future__ import annotations

from functools import partial

import aiohttp
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_create_clientsession
from homeassistant.helpers.typing import ConfigType

from .const import (
    CONF_MAM_BASE_URL,
    CONF_MAM_ID,
    CONF_QBT_PASSWORD,
    CONF_QBT_URL,
    CONF_QBT_USERNAME,
    CONF_QBT_VERIFY_SSL,
    DOMAIN,
    USER_AGENT,
)
from .coordinator import MamAccountCoordinator, QbtCoordinator
from .data import MamGuardConfigEntry, MamGuardData
from .emergency import EmergencyManager
from .lib.mam import MamClient
from .lib.qbt import QbtAdapter
from .rules import RulesCoordinator, async_remove_rules_data
from .services import async_setup_services
from .store import MamGuardStore

PLATFORMS = [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR, Platform.SWITCH]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services once for all entries (IQS action-setup)."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: MamGuardConfigEntry) -> bool:
    """Start the account, qBittorrent, emergency and rules machinery of one MAM account."""
    store = MamGuardStore(hass, entry.entry_id)
    await store.async_load()
    # Own sessions: MAM's cookie is ours alone (DummyCookieJar: we handle mam_id ourselves, nothing
    # lands in a shared jar); qBittorrent needs an unsafe jar to keep its SID cookie for IP hosts.
    mam_session = async_create_clientsession(hass, cookie_jar=aiohttp.DummyCookieJar())
    qbt_session = async_create_clientsession(
        hass,
        verify_ssl=entry.data.get(CONF_QBT_VERIFY_SSL, True),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    )
    client = MamClient(
        mam_session,
        store.current_mam_id(entry.data[CONF_MAM_ID]),
        base_url=entry.data[CONF_MAM_BASE_URL],
        user_agent=USER_AGENT,
        on_cookie_rotated=partial(store.async_save_mam_id, entry.data[CONF_MAM_ID]),
    )
    adapter = QbtAdapter(
        qbt_session,
        entry.data[CONF_QBT_URL],
        entry.data.get(CONF_QBT_USERNAME) or None,
        entry.data.get(CONF_QBT_PASSWORD) or None,
        verify_ssl=entry.data.get(CONF_QBT_VERIFY_SSL, True),
    )
    account = MamAccountCoordinator(hass, entry, client, store)
    emergency = EmergencyManager(hass, entry, store, adapter, account)
    await emergency.async_load()
    qbt = QbtCoordinator(hass, entry, adapter, emergency)
    rules = RulesCoordinator(hass, entry, client, store)
    entry.runtime_data = MamGuardData(client, adapter, store, account, qbt, emergency, rules)

    await account.async_config_entry_first_refresh()
    # qBittorrent being down must not block setup (SPEC §4): its entities stay unavailable.
    await qbt.async_refresh()
    await rules.async_setup()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: MamGuardConfigEntry) -> bool:
    """Unload platforms, stop timers, close the rules database and log out of qBittorrent."""
    if not await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        return False
    data = entry.runtime_data
    data.emergency.async_shutdown()
    await data.rules.async_close()
    await data.adapter.close()
    return True


async def async_remove_entry(hass: HomeAssistant, entry: MamGuardConfigEntry) -> None:
    """Forget the entry's stored cookie, emergency record and rule history."""
    await MamGuardStore(hass, entry.entry_id).async_remove()
    await async_remove_rules_data(hass, entry.entry_id)
