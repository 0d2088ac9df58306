"""Per-entry persistent state in HA storage (``.storage/mam_guard.<entry_id>``).

It holds what must survive a restart and must be written *before* the next step acts:
- the newest rotated ``mam_id`` (MAM invalidates the previous one on every response, SPEC §7),
- the emergency: the account's declaration, and per qBittorrent client its executor record (each
  step is persisted before it touches qBittorrent, SPEC §4) with, while that record is not idle,
  the client's connection data (a removed client is still undone, SPEC §12),
- the bonus-point history used to estimate points per day,
- when the rules were last refreshed successfully,
- the end of a 429 back-off (MAM asked us to slow down; a restart must not send a request early),
- MAM's freeleech answers per download and the lookups' hourly budget (SPEC §11).

Once the entry unloads the store is closed: an unloaded instance never writes again, so a late
write can never put a stale (already rotated) cookie over the reloaded instance's newer one.

An emergency record that could not be undone when its entry was removed (qBittorrent unreachable)
is kept as an *orphan* under the account's uid, so that the account added again finds and finishes
it (:meth:`MamGuardStore.async_adopt_orphan`).
"""

from __future__ import annotations

from datetime import datetime
import hashlib
from typing import Any, TypedDict

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import LOGGER, STORAGE_KEY_PREFIX, STORAGE_ORPHAN_PREFIX, STORAGE_VERSION


class StoredData(TypedDict, total=False):
    """Layout of the storage file (version 1)."""

    mam_id: str
    mam_id_origin: str
    emergency: dict[str, Any]  # the account's declaration (SPEC §12; before: the whole record)
    # Per qBittorrent subentry: {"emergency": its executor record, and while that is not idle
    # "connection" (the subentry's data) and "name"}, so a removed client can still be undone.
    clients: dict[str, dict[str, Any]]
    bonus_history: dict[str, Any]
    rules_checked: str | None
    rate_limited_until: str | None
    purchases: dict[str, Any]  # the purchase executor's record (open intent, recent attempts)
    ratio_history: dict[str, Any]  # hourly uploaded/downloaded samples for the forecast
    freeleech: dict[str, Any]  # MAM's answers per download and the lookup budget (SPEC §11)


def cookie_origin(configured_mam_id: str) -> str:
    """A short digest of the cookie in the config entry.

    A rotated cookie in storage is only trusted while the entry still holds the cookie it descends
    from; after reauth/reconfigure (a new cookie in the entry) the stored one is stale.
    """
    return hashlib.sha256(configured_mam_id.encode()).hexdigest()[:16]


class MamGuardStore:
    """Load once, then write through on every change (small JSON document)."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Bind to the entry's storage file."""
        self._store: Store[StoredData] = Store(
            hass,
            STORAGE_VERSION,
            f"{STORAGE_KEY_PREFIX}{entry_id}",
            private=True,
            atomic_writes=True,
        )
        self._hass = hass
        self.data: StoredData = {}
        self.closed = False

    async def async_load(self) -> StoredData:
        """Read the file (empty on first start)."""
        self.data = await self._store.async_load() or {}
        return self.data

    async def async_save(self) -> None:
        """Write now (not delayed): callers rely on the data being on disk when this returns."""
        if self.closed:  # unloaded: the reloaded instance owns the file now
            LOGGER.debug("Not writing the storage of an unloaded entry")
            return
        await self._store.async_save(self.data)

    def close(self) -> None:
        """No write after this (entry unloaded or Home Assistant stopping)."""
        self.closed = True

    def current_mam_id(self, configured: str) -> str:
        """The newest cookie descending from the configured one."""
        if self.data.get("mam_id_origin") == cookie_origin(configured) and self.data.get("mam_id"):
            return self.data["mam_id"]
        return configured

    async def async_save_mam_id(self, configured: str, rotated: str) -> None:
        """Persist a rotated cookie before the next request is made."""
        self.data["mam_id"] = rotated
        self.data["mam_id_origin"] = cookie_origin(configured)
        await self.async_save()

    async def async_save_rate_limit(self, until: datetime) -> None:
        """Persist the end of a 429 back-off (honoured after a restart too)."""
        self.data["rate_limited_until"] = until.isoformat()
        await self.async_save()

    def rate_limited_until(self) -> datetime | None:
        """The persisted end of a 429 back-off, if any."""
        value = self.data.get("rate_limited_until")
        return datetime.fromisoformat(value) if value else None

    async def async_remove(self) -> None:
        """Delete the file (entry removed)."""
        await self._store.async_remove()

    def _orphan(self, account_uid: str) -> Store[dict[str, Any]]:
        return Store(
            self._hass, STORAGE_VERSION, f"{STORAGE_ORPHAN_PREFIX}{account_uid}", private=True
        )

    async def async_keep_orphan(self, account_uid: str, orphan: dict[str, Any]) -> None:
        """Keep what could not be undone (``{"clients": ...}``) for the account's next entry."""
        await self._orphan(account_uid).async_save(orphan)

    async def async_adopt_orphan(self, account_uid: str) -> dict[str, Any] | None:
        """What a removed entry of this account left (removed from storage once adopted).

        ``{"clients": {subentry: {...}}}``, or ``{"emergency": record}`` from before SPEC §12.
        """
        orphan = self._orphan(account_uid)
        data = await orphan.async_load()
        if not data:
            return None
        await orphan.async_remove()
        return data
