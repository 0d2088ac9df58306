"""Per-entry persistent state in HA storage (``.storage/mam_guard.<entry_id>``).

It holds what must survive a restart and must be written *before* the next step acts:
- the newest rotated ``mam_id`` (MAM invalidates the previous one on every response, SPEC §7),
- the emergency record (each emergency step is persisted before it touches qBittorrent, SPEC §4),
- the bonus-point history used to estimate points per day,
- when the rules were last refreshed successfully.
"""

from __future__ import annotations

import hashlib
from typing import Any, TypedDict

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import STORAGE_KEY_PREFIX, STORAGE_VERSION


class StoredData(TypedDict, total=False):
    """Layout of the storage file (version 1)."""

    mam_id: str
    mam_id_origin: str
    emergency: dict[str, Any]
    bonus_history: dict[str, Any]
    rules_checked: str | None


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
        self.data: StoredData = {}

    async def async_load(self) -> StoredData:
        """Read the file (empty on first start)."""
        self.data = await self._store.async_load() or {}
        return self.data

    async def async_save(self) -> None:
        """Write now (not delayed): callers rely on the data being on disk when this returns."""
        await self._store.async_save(self.data)

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

    async def async_remove(self) -> None:
        """Delete the file (entry removed)."""
        await self._store.async_remove()
