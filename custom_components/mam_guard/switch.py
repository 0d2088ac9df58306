"""Switch ``enforcement``: mirrors the option of the same name (SPEC §2)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_ENFORCEMENT
from .data import MamGuardConfigEntry, entry_options
from .entity import EmergencyEntity

PARALLEL_UPDATES = 1

ENFORCEMENT = SwitchEntityDescription(
    key="enforcement", translation_key="enforcement", entity_category=EntityCategory.CONFIG
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MamGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The enforcement switch."""
    async_add_entities([EnforcementSwitch(entry, ENFORCEMENT)])


class EnforcementSwitch(EmergencyEntity, SwitchEntity):
    """Off = monitor and alert only: no qBittorrent actions in an emergency.

    Writing the option does not reload the entry (only the options flow reloads, which recreates
    this entity); the emergency manager applies or undoes its actions at once and notifies its
    entities, this one included, also when the breaker switches enforcement off. (No entry update
    listener: HA refuses those together with an options flow that reloads.)
    """

    @property
    def is_on(self) -> bool:
        """The option's value."""
        return bool(entry_options(self.entry)[CONF_ENFORCEMENT])

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Enforce again (also re-arms after the breaker tripped)."""
        await self._set(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Monitor only."""
        await self._set(False)

    async def _set(self, value: bool) -> None:
        self.hass.config_entries.async_update_entry(
            self.entry, options={**self.entry.options, CONF_ENFORCEMENT: value}
        )
        await self.entry.runtime_data.emergency.async_enforcement_changed(value)
