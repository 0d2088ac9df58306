"""Entity bases: one service device per MAM account; unique_id ``<uid>_<key>`` (SPEC §2)."""

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


class MamGuardEntity(Entity):
    """Common naming, device and unique id."""

    _attr_has_entity_name = True

    def __init__(self, entry: MamGuardConfigEntry, description: EntityDescription) -> None:
        """Name from the translation key; unique id from the account uid and the key."""
        self.entity_description = description
        self._attr_unique_id = f"{entry.unique_id}_{description.key}"
        self._attr_device_info = device_info(entry)
        self.entry = entry


class MamGuardCoordinatorEntity[CoordinatorT: DataUpdateCoordinator[Any]](
    CoordinatorEntity[CoordinatorT], MamGuardEntity
):
    """An entity fed by one of the coordinators (unavailable while it cannot fetch)."""

    def __init__(
        self, coordinator: CoordinatorT, entry: MamGuardConfigEntry, description: EntityDescription
    ) -> None:
        """Subscribe to the coordinator."""
        CoordinatorEntity.__init__(self, coordinator)
        MamGuardEntity.__init__(self, entry, description)


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
