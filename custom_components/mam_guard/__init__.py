"""MAM Guard: watches a MyAnonamouse account and guards its ratio with qBittorrent."""

from __future__ import annotations

from functools import partial

import aiohttp
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_create_clientsession
from homeassistant.helpers.typing import ConfigType
from homeassistant.util import dt as dt_util

from .const import (
    CONF_MAM_BASE_URL,
    CONF_MAM_ID,
    CONF_QBT_PASSWORD,
    CONF_QBT_URL,
    CONF_QBT_USERNAME,
    CONF_QBT_VERIFY_SSL,
    DOMAIN,
    ISSUE_BREAKER,
    ISSUE_EMERGENCY,
    ISSUE_ORPHANED_FREEZE,
    LOGGER,
    USER_AGENT,
)
from .coordinator import MamAccountCoordinator, QbtCoordinator
from .data import MamGuardConfigEntry, MamGuardData, entry_options
from .economy import EconomyManager
from .emergency import EmergencyManager, emergency_options
from .freeleech import FreeleechManager
from .lib.emergency import PHASE_IDLE, EmergencyExecutor, EmergencyRecord
from .lib.mam import MamClient
from .lib.qbt import QbtAdapter, redact_url
from .migration import async_migrate_entry as async_migrate_entry
from .rules import RulesCoordinator, async_remove_rules_data
from .services import async_setup_services
from .store import MamGuardStore

PLATFORMS = [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR, Platform.SWITCH]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services once for all entries (IQS action-setup)."""
    async_setup_services(hass)
    return True


def _qbt_session(
    hass: HomeAssistant, entry: MamGuardConfigEntry, *, auto_cleanup: bool = True
) -> aiohttp.ClientSession:
    # qBittorrent needs an unsafe jar to keep its SID cookie for IP hosts.
    return async_create_clientsession(
        hass,
        verify_ssl=entry.data.get(CONF_QBT_VERIFY_SSL, True),
        auto_cleanup=auto_cleanup,
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    )


def _qbt_adapter(session: aiohttp.ClientSession, entry: MamGuardConfigEntry) -> QbtAdapter:
    return QbtAdapter(
        session,
        entry.data[CONF_QBT_URL],
        entry.data.get(CONF_QBT_USERNAME) or None,
        entry.data.get(CONF_QBT_PASSWORD) or None,
        verify_ssl=entry.data.get(CONF_QBT_VERIFY_SSL, True),
    )


async def _adopt_orphan(
    hass: HomeAssistant, entry: MamGuardConfigEntry, store: MamGuardStore
) -> None:
    """Take over what a removed entry of this account could not undo (see async_remove_entry)."""
    if (
        entry.unique_id is None
        or store.data.get("emergency", {}).get("phase", PHASE_IDLE) != PHASE_IDLE
    ):
        return
    if (orphan := await store.async_adopt_orphan(entry.unique_id)) is None:
        return
    # Not declared: the heartbeat undoes it, unless the ratio itself calls for an emergency.
    store.data["emergency"] = {**orphan, "active": False, "manual": False}
    await store.async_save()
    ir.async_delete_issue(hass, DOMAIN, f"{ISSUE_ORPHANED_FREEZE}_{entry.unique_id}")
    LOGGER.info(
        "%s takes over the emergency actions a removed entry left in qBittorrent", entry.title
    )


async def async_setup_entry(hass: HomeAssistant, entry: MamGuardConfigEntry) -> bool:
    """Start the account, qBittorrent, emergency and rules machinery of one MAM account."""
    store = MamGuardStore(hass, entry.entry_id)
    await store.async_load()
    await _adopt_orphan(hass, entry, store)
    # Own sessions: MAM's cookie is ours alone (DummyCookieJar: we handle mam_id ourselves, nothing
    # lands in a shared jar).
    mam_session = async_create_clientsession(hass, cookie_jar=aiohttp.DummyCookieJar())
    client = MamClient(
        mam_session,
        store.current_mam_id(entry.data[CONF_MAM_ID]),
        base_url=entry.data[CONF_MAM_BASE_URL],
        user_agent=USER_AGENT,
        on_cookie_rotated=partial(store.async_save_mam_id, entry.data[CONF_MAM_ID]),
        rate_limited_until=store.rate_limited_until(),
        on_rate_limited=store.async_save_rate_limit,
    )
    adapter = _qbt_adapter(_qbt_session(hass, entry), entry)
    account = MamAccountCoordinator(hass, entry, client, store)
    freeleech = FreeleechManager(hass, entry, client=client, store=store, account=account)
    emergency = EmergencyManager(hass, entry, store, adapter, account, freeleech=freeleech)
    await emergency.async_load()
    qbt = QbtCoordinator(hass, entry, adapter, emergency, freeleech=freeleech)
    rules = RulesCoordinator(hass, entry, client, store)
    economy = EconomyManager(
        hass,
        entry,
        client=client,
        store=store,
        account=account,
        emergency=emergency,
        rules=rules,
    )
    entry.runtime_data = MamGuardData(
        client, adapter, store, account, qbt, emergency, rules, economy, freeleech
    )

    async def _stop(_event: Event) -> None:
        # Home Assistant does not unload entries when it stops: let a MAM request in flight land
        # (MAM has rotated the cookie already) and persist, then write nothing more.
        await _async_drain(entry.runtime_data)

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _stop))
    await account.async_config_entry_first_refresh()
    freeleech.async_start()  # after the first poll: the account poll goes first
    # qBittorrent being down must not block setup (SPEC §4): its entities stay unavailable.
    await qbt.async_refresh()
    await rules.async_setup()
    # Give the shared rules database back even when a later setup step fails.
    entry.async_on_unload(rules.async_close)
    await economy.async_setup()
    if account.data is not None:
        # The first poll ran before the manager listened: settle a purchase whose answer a
        # restart lost (never resent) and run the automatic policies on it.
        entry.async_create_background_task(
            hass,
            economy.async_after_poll(account.data.account, account.data.fetched_at),
            f"{DOMAIN} purchases at startup",
        )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_drain(data: MamGuardData) -> None:
    """Wait for every running operation of the entry, then close its storage for good.

    Order matters: an emergency operation and a rules refresh finish first, then the MAM request
    in flight (bounded by its timeout) with its rotated cookie persisted, and only then does the
    store refuse writes, so that neither a rotated cookie is lost nor a stale one written later.
    """
    await data.emergency.async_shutdown()
    await data.freeleech.async_shutdown()
    data.economy.async_shutdown()
    await data.economy.executor.async_wait_idle()  # a purchase in progress is booked first
    await data.rules.async_close()
    await data.client.async_close()
    data.store.close()


async def async_unload_entry(hass: HomeAssistant, entry: MamGuardConfigEntry) -> bool:
    """Unload platforms, wait for running operations, close storage and log out of qBittorrent."""
    if not await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        return False
    data = entry.runtime_data
    await _async_drain(data)
    await data.adapter.close()
    return True


async def _async_release_on_removal(
    hass: HomeAssistant, entry: MamGuardConfigEntry, store: MamGuardStore, record: EmergencyRecord
) -> bool:
    """Undo the emergency's actions in qBittorrent; False when qBittorrent could not be reached."""

    async def persist(rec: EmergencyRecord) -> None:  # crash-safe: the entry's file still exists
        store.data["emergency"] = rec.to_dict()
        await store.async_save()

    session = _qbt_session(hass, entry, auto_cleanup=False)
    adapter = _qbt_adapter(session, entry)
    executor = EmergencyExecutor(adapter, persist, record, emergency_options(entry_options(entry)))
    try:
        await executor.release(dt_util.utcnow())
    except Exception:  # any failure keeps the record: it is never thrown away
        LOGGER.debug("Releasing the emergency of a removed entry failed", exc_info=True)
    finally:
        await adapter.close()
        session.detach()  # HA's sessions share one connector: detach, never close it
    return executor.record.phase == PHASE_IDLE


async def async_remove_entry(hass: HomeAssistant, entry: MamGuardConfigEntry) -> None:
    """Give qBittorrent back what an emergency changed, then forget the entry's data.

    Removal cannot be refused, so when qBittorrent is unreachable the emergency record (what we
    froze, the preference snapshot) is kept for this account and a repair issue says so: adding
    the account again finishes the release.
    """
    store = MamGuardStore(hass, entry.entry_id)
    await store.async_load()
    record = EmergencyRecord.from_dict(store.data.get("emergency"))
    if record.phase != PHASE_IDLE and not await _async_release_on_removal(
        hass, entry, store, record
    ):
        account_uid = entry.unique_id or entry.entry_id
        await store.async_keep_orphan(account_uid, record.to_dict())
        ir.async_create_issue(
            hass,
            DOMAIN,
            f"{ISSUE_ORPHANED_FREEZE}_{account_uid}",
            is_fixable=False,
            is_persistent=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_ORPHANED_FREEZE,
            translation_placeholders={
                "account": entry.title,
                "url": redact_url(entry.data.get(CONF_QBT_URL, "")),
                "frozen": str(len(record.frozen)),
            },
        )
        LOGGER.warning(
            "%s was removed during an emergency while qBittorrent was unreachable; add the account"
            " again to release what it froze",
            entry.title,
        )
    for kind in (ISSUE_EMERGENCY, ISSUE_BREAKER):
        ir.async_delete_issue(hass, DOMAIN, f"{kind}_{entry.entry_id}")
    await store.async_remove()
    await async_remove_rules_data(hass, entry.entry_id)
