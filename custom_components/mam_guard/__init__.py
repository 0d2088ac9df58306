"""MAM Guard: watches a MyAnonamouse account and guards its ratio with qBittorrent."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import aiohttp
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
    ConfigSubentry,
)
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.aiohttp_client import async_create_clientsession
from homeassistant.helpers.dispatcher import async_dispatcher_connect
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
    SUBENTRY_QBITTORRENT,
    USER_AGENT,
)
from .coordinator import MamAccountCoordinator, QbtCoordinator
from .data import MamGuardConfigEntry, MamGuardData, QbtClient, entry_options
from .economy import EconomyManager
from .emergency import EmergencyManager, emergency_options, split_stored_record
from .entity import device_info
from .freeleech import FreeleechManager
from .lib.clients import run_each
from .lib.emergency import PHASE_IDLE, EmergencyExecutor, EmergencyRecord
from .lib.mam import MamClient
from .lib.qbt import QbtAdapter, QbtConnectionError, redact_url
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
    hass: HomeAssistant, connection: Mapping[str, Any], *, auto_cleanup: bool = True
) -> aiohttp.ClientSession:
    # One session per client: qBittorrent's SID cookie ignores ports (lib.clients), and it needs
    # an unsafe jar to keep that cookie for IP hosts.
    return async_create_clientsession(
        hass,
        verify_ssl=connection.get(CONF_QBT_VERIFY_SSL, True),
        auto_cleanup=auto_cleanup,
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    )


def _qbt_adapter(session: aiohttp.ClientSession, connection: Mapping[str, Any]) -> QbtAdapter:
    return QbtAdapter(
        session,
        connection[CONF_QBT_URL],
        connection.get(CONF_QBT_USERNAME) or None,
        connection.get(CONF_QBT_PASSWORD) or None,
        verify_ssl=connection.get(CONF_QBT_VERIFY_SSL, True),
    )


def _qbt_subentries(entry: MamGuardConfigEntry) -> dict[str, ConfigSubentry]:
    return {
        sid: sub
        for sid, sub in entry.subentries.items()
        if sub.subentry_type == SUBENTRY_QBITTORRENT
    }


def _clients_fingerprint(entry: MamGuardConfigEntry) -> dict[str, tuple[str, dict[str, Any]]]:
    return {sid: (sub.title, dict(sub.data)) for sid, sub in _qbt_subentries(entry).items()}


async def _migrate_store(entry: MamGuardConfigEntry, store: MamGuardStore) -> None:
    """Once (no ``clients`` key yet): the single record becomes the first client's record.

    Before SPEC §12 ``store.data["emergency"]`` held the declaration and the one qBittorrent's
    executor state together; the declaration stays there, the executor state (phase, pending,
    frozen, forced, snapshot, ...) moves to the first subentry (the one the entry migration made
    of the version 1 qBittorrent), so an emergency active during the upgrade is released exactly.
    """
    if "clients" in store.data:
        return
    subentries = list(_qbt_subentries(entry))
    if not subentries:  # no client yet: the record waits for the first one
        return
    declaration, client = split_stored_record(store.data.get("emergency"))
    store.data["emergency"] = declaration
    store.data["clients"] = {subentries[0]: {"emergency": client}}
    await store.async_save()


async def _adopt_orphan(
    hass: HomeAssistant, entry: MamGuardConfigEntry, store: MamGuardStore
) -> None:
    """Take over what a removed entry of this account could not undo (see async_remove_entry).

    Its clients come with their connection data and are undone like removed subentries (the
    heartbeat undoes them unless the ratio calls for an emergency: then an attached client's
    record is adopted by the next freeze through its tags). An orphan of a version 1 entry
    (a single record) goes to the first client when that one holds nothing.
    """
    if entry.unique_id is None:
        return
    if (orphan := await store.async_adopt_orphan(entry.unique_id)) is None:
        return
    clients = store.data.setdefault("clients", {})
    if "clients" in orphan:
        for sid, stored in orphan["clients"].items():
            if (
                sid not in clients
                or EmergencyRecord.from_dict(clients[sid].get("emergency")).phase == PHASE_IDLE
            ):
                clients[sid] = stored
    elif (first := next(iter(_qbt_subentries(entry)), None)) is not None and (
        EmergencyRecord.from_dict(clients.get(first, {}).get("emergency")).phase == PHASE_IDLE
    ):
        clients[first] = {"emergency": split_stored_record(orphan.get("emergency"))[1]}
    await store.async_save()
    ir.async_delete_issue(hass, DOMAIN, f"{ISSUE_ORPHANED_FREEZE}_{entry.unique_id}")
    LOGGER.info(
        "%s takes over the emergency actions a removed entry left in qBittorrent", entry.title
    )


def _add_clients(
    hass: HomeAssistant,
    entry: MamGuardConfigEntry,
    store: MamGuardStore,
    emergency: EmergencyManager,
) -> dict[str, QbtAdapter]:
    """One session, adapter and executor per subentry; removed clients still to be undone."""
    adapters: dict[str, QbtAdapter] = {}
    for sid, sub in _qbt_subentries(entry).items():
        adapters[sid] = _qbt_adapter(_qbt_session(hass, sub.data), sub.data)
        emergency.add_client(sid, sub.title, adapters[sid], dict(sub.data))
    stored = store.data.get("clients", {})
    for sid in [sid for sid in stored if sid not in adapters]:
        connection = stored[sid].get("connection")
        record = EmergencyRecord.from_dict(stored[sid].get("emergency"))
        if record.phase == PHASE_IDLE or not connection:
            del stored[sid]  # nothing left to undo (or nowhere to undo it)
            continue
        name = stored[sid].get("name") or redact_url(connection.get(CONF_QBT_URL, ""))
        adapter = _qbt_adapter(_qbt_session(hass, connection), connection)
        emergency.add_client(sid, name, adapter, connection, detached=True)
    return adapters


async def async_setup_entry(hass: HomeAssistant, entry: MamGuardConfigEntry) -> bool:
    """Start the account, qBittorrent, emergency and rules machinery of one MAM account."""
    store = MamGuardStore(hass, entry.entry_id)
    await store.async_load()
    await _migrate_store(entry, store)
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
    account = MamAccountCoordinator(hass, entry, client, store)
    freeleech = FreeleechManager(hass, entry, client=client, store=store, account=account)
    emergency = EmergencyManager(hass, entry, store, account, freeleech=freeleech)
    adapters = _add_clients(hass, entry, store, emergency)
    await emergency.async_load()
    qbt_clients = {
        sid: QbtClient(
            sid,
            sub.title,
            adapters[sid],
            QbtCoordinator(
                hass,
                entry,
                adapters[sid],
                emergency,
                freeleech=freeleech,
                client_key=sid,
                client_name=sub.title,
            ),
        )
        for sid, sub in _qbt_subentries(entry).items()
    }
    freeleech.client_keys = frozenset(qbt_clients)
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
        client, store, account, qbt_clients, emergency, rules, economy, freeleech
    )

    async def _stop(_event: Event) -> None:
        # Home Assistant does not unload entries when it stops: let a MAM request in flight land
        # (MAM has rotated the cookie already) and persist, then write nothing more.
        await _async_drain(entry.runtime_data)

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _stop))
    fingerprint = _clients_fingerprint(entry)

    @callback
    def _entry_changed(change: ConfigEntryChange, changed: ConfigEntry) -> None:
        # A client added, removed or reconfigured: set up again with the new set (the options
        # flow reloads by itself; an update listener is not allowed beside it).
        if (
            changed.entry_id == entry.entry_id
            and change is ConfigEntryChange.UPDATED
            and changed.state is ConfigEntryState.LOADED
            and _clients_fingerprint(entry) != fingerprint
        ):
            hass.config_entries.async_schedule_reload(entry.entry_id)

    entry.async_on_unload(
        async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, _entry_changed)
    )
    await account.async_config_entry_first_refresh()
    freeleech.async_start()  # after the first poll: the account poll goes first
    # qBittorrent being down must not block setup (SPEC §4): its entities stay unavailable.
    await run_each({sid: qbt.coordinator.async_refresh for sid, qbt in qbt_clients.items()})
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
    # The account's device first: each client's device names it as the device it is reached via.
    entry.runtime_data.account_device_id = (
        dr.async_get(hass)
        .async_get_or_create(config_entry_id=entry.entry_id, **device_info(entry))
        .id
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
    for client in data.emergency.clients.values():
        await client.adapter.close()
    return True


async def _async_release_on_removal(
    hass: HomeAssistant,
    entry: MamGuardConfigEntry,
    store: MamGuardStore,
    sid: str,
    connection: Mapping[str, Any],
) -> None:
    """Undo one client's emergency actions; its record stays in ``store`` when that fails."""
    stored = store.data["clients"][sid]

    async def persist(rec: EmergencyRecord) -> None:  # crash-safe: the entry's file still exists
        stored["emergency"] = rec.to_dict()
        await store.async_save()

    record = EmergencyRecord.from_dict(stored.get("emergency"))
    session = _qbt_session(hass, connection, auto_cleanup=False)
    adapter = _qbt_adapter(session, connection)
    executor = EmergencyExecutor(adapter, persist, record, emergency_options(entry_options(entry)))
    try:
        await executor.release(dt_util.utcnow())
    finally:
        await adapter.close()
        session.detach()  # HA's sessions share one connector: detach, never close it
    if executor.record.phase != PHASE_IDLE:
        raise QbtConnectionError("qBittorrent could not be reached")


async def async_remove_entry(hass: HomeAssistant, entry: MamGuardConfigEntry) -> None:
    """Give every qBittorrent back what an emergency changed, then forget the entry's data.

    Removal cannot be refused, so when a qBittorrent is unreachable its emergency record (what we
    froze, the preference snapshot) is kept for this account with its connection data and a
    repair issue says so: adding the account again finishes the release.
    """
    store = MamGuardStore(hass, entry.entry_id)
    await store.async_load()
    await _migrate_store(entry, store)
    subentries = _qbt_subentries(entry)
    clients: dict[str, Any] = store.data.get("clients", {})
    connections: dict[str, Mapping[str, Any]] = {}
    for sid, stored in clients.items():
        if EmergencyRecord.from_dict(stored.get("emergency")).phase == PHASE_IDLE:
            continue
        connection = subentries[sid].data if sid in subentries else stored.get("connection")
        if connection:
            connections[sid] = connection
            stored["connection"] = dict(connection)
    outcomes = await run_each(
        {
            sid: partial(_async_release_on_removal, hass, entry, store, sid, connection)
            for sid, connection in connections.items()
        }
    )
    left = {sid: clients[sid] for sid, err in outcomes.items() if err is not None}
    for err in outcomes.values():
        if err is not None:  # any failure keeps the record: it is never thrown away
            LOGGER.debug("Releasing the emergency of a removed entry failed", exc_info=err)
    if left:
        account_uid = entry.unique_id or entry.entry_id
        await store.async_keep_orphan(account_uid, {"clients": left})
        first = next(iter(left.values()))
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
                "url": redact_url(first["connection"].get(CONF_QBT_URL, "")),
                "frozen": str(
                    sum(
                        len(EmergencyRecord.from_dict(s.get("emergency")).frozen)
                        for s in left.values()
                    )
                ),
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
