"""Config entry migrations: version 1 kept its one qBittorrent in the entry's data (SPEC §12)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant

from .config_flow import qbt_identity
from .const import (
    CONF_QBT_PASSWORD,
    CONF_QBT_URL,
    CONF_QBT_USERNAME,
    CONF_QBT_VERIFY_SSL,
    CONFIG_ENTRY_MINOR_VERSION,
    CONFIG_ENTRY_VERSION,
    DEFAULT_QBT_NAME,
    LOGGER,
    QBT_DATA_KEYS,
    SUBENTRY_QBITTORRENT,
)
from .lib.qbt import redact_url


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry[Any]) -> bool:
    """Bring ``entry`` to the current version; False (HA then refuses it) if it is newer."""
    if entry.version > CONFIG_ENTRY_VERSION:
        # HA refuses a newer major version before calling this; kept for a direct call.
        LOGGER.error(
            "MAM Guard entry %s has config version %s.%s, newer than this MAM Guard (%s.%s): "
            "update MAM Guard",
            entry.entry_id,
            entry.version,
            entry.minor_version,
            CONFIG_ENTRY_VERSION,
            CONFIG_ENTRY_MINOR_VERSION,
        )
        return False
    if entry.version == 1:
        _move_qbittorrent_to_subentry(hass, entry)
    # Version 2 with another minor version: minor versions stay readable, nothing to do.
    return True


def _move_qbittorrent_to_subentry(hass: HomeAssistant, entry: ConfigEntry[Any]) -> None:
    """Version 1 → 2: the qBittorrent keys of the entry's data become a ``qbittorrent`` subentry.

    Idempotent: an entry that already has a qBittorrent subentry (an interrupted earlier run)
    only loses the old copy from its data. Only the URL (without userinfo) is ever logged.
    """
    data = dict(entry.data)
    qbt = {key: data.pop(key) for key in QBT_DATA_KEYS if key in data}
    url = str(qbt.get(CONF_QBT_URL) or "")
    if entry.get_subentries_of_type(SUBENTRY_QBITTORRENT):
        LOGGER.info(
            "MAM Guard entry %s already has its qBittorrent subentry; removed the old copy "
            "from its data",
            entry.entry_id,
        )
    elif url:
        subentry = ConfigSubentry(
            data=MappingProxyType(
                {
                    CONF_QBT_URL: url,
                    CONF_QBT_USERNAME: qbt.get(CONF_QBT_USERNAME) or "",
                    CONF_QBT_PASSWORD: qbt.get(CONF_QBT_PASSWORD) or "",
                    CONF_QBT_VERIFY_SSL: qbt.get(CONF_QBT_VERIFY_SSL, True),
                }
            ),
            subentry_type=SUBENTRY_QBITTORRENT,
            title=DEFAULT_QBT_NAME,
            unique_id=qbt_identity(url),
        )
        hass.config_entries.async_add_subentry(entry, subentry)
        LOGGER.info(
            "MAM Guard entry %s: moved its qBittorrent (%s) into subentry %s",
            entry.entry_id,
            redact_url(url),
            subentry.subentry_id,
        )
    else:
        LOGGER.warning(
            "MAM Guard entry %s had no qBittorrent in its data: add one to the entry",
            entry.entry_id,
        )
    hass.config_entries.async_update_entry(
        entry,
        data=data,
        version=CONFIG_ENTRY_VERSION,
        minor_version=CONFIG_ENTRY_MINOR_VERSION,
    )
    LOGGER.info(
        "MAM Guard entry %s migrated to config version %s.%s",
        entry.entry_id,
        CONFIG_ENTRY_VERSION,
        CONFIG_ENTRY_MINOR_VERSION,
    )
