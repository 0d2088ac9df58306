"""Entity bases: one service device per MAM account, one device per qBittorrent client.

Account entities: unique_id ``<uid>_<key>`` (SPEC §2). A client's entities (SPEC §12) belong to
its subentry and its device (``via_device`` the account's): unique_id ``<uid>_<subentry>_<key>``.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from .const import CONF_MAM_BASE_URL, DOMAIN
from .data import MamGuardConfigEntry


def device_info(entry: MamGuardConfigEntry) -> DeviceInfo:
    """The account's device (entry type service, named like the entry: ``MAM <username>``)."""
    return DeviceInfo(
        identifiers={(DOMAIN, str(entry.unique_id))},
        name=entry.title,
        entry_type=DeviceEntryType.SERVICE,
        manufacturer="MyAnonamouse",
        model="Account",
        configuration_url=entry.data[CONF_MAM_BASE_URL],
    )


def client_device_info(entry: MamGuardConfigEntry, client_key: str, name: str) -> DeviceInfo:
    """A qBittorrent client's device, under the account's."""
    return DeviceInfo(
        identifiers={(DOMAIN, f"{entry.unique_id}_{client_key}")},
        name=name,
        manufacturer="qBittorrent",
        model="qBittorrent",
        via_device_id=entry.runtime_data.account_device_id,
    )


class MamGuardEntity(Entity):
    """Common naming, device and unique id."""

    _attr_has_entity_name = True

    def __init__(
        self,
        entry: MamGuardConfigEntry,
        description: EntityDescription,
        client: tuple[str, str] | None = None,
    ) -> None:
        """Name from the translation key; unique id from the account uid (, client) and key.

        ``client``: (subentry id, name) of the qBittorrent client the entity belongs to.
        """
        self.entity_description = description
        self.entry = entry
        self.client_key = client[0] if client else None
        if client is None:
            self._attr_unique_id = f"{entry.unique_id}_{description.key}"
            self._attr_device_info = device_info(entry)
        else:
            self._attr_unique_id = f"{entry.unique_id}_{client[0]}_{description.key}"
            self._attr_device_info = client_device_info(entry, *client)


class MamGuardCoordinatorEntity[CoordinatorT: DataUpdateCoordinator[Any]](
    CoordinatorEntity[CoordinatorT], MamGuardEntity
):
    """An entity fed by one of the coordinators (unavailable while it cannot fetch)."""

    def __init__(
        self,
        coordinator: CoordinatorT,
        entry: MamGuardConfigEntry,
        description: EntityDescription,
        client: tuple[str, str] | None = None,
    ) -> None:
        """Subscribe to the coordinator."""
        CoordinatorEntity.__init__(self, coordinator)
        MamGuardEntity.__init__(self, entry, description, client)


class EmergencyEntity(MamGuardEntity):
    """An entity fed by the emergency manager: always available, it reflects our own record."""

    _attr_should_poll = False

    async def async_added_to_hass(self) -> None:
        """Follow the manager's changes (IQS entity-event-setup)."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.entry.runtime_data.emergency.async_add_listener(self._handle_emergency_update)
        )

    @callback
    def _handle_emergency_update(self) -> None:
        self.async_write_ha_state()
