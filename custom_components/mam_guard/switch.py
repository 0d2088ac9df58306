"""Switch ``enforcement``: mirrors the option of the same name (SPEC §2)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_ENFORCEMENT
from .data import MamGuardConfigEntry, entry_options
from .entity import MamGuardEntity

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


class EnforcementSwitch(MamGuardEntity, SwitchEntity):
    """Off = monitor and alert only: no qBittorrent actions in an emergency.

    Writing the option does not reload the entry (only the options flow reloads); the emergency
    manager reads the option on every heartbeat and undoes or applies its actions accordingly.
    """

    _attr_should_poll = False

    async def async_added_to_hass(self) -> None:
        """Follow option changes made elsewhere (options flow, the breaker)."""
        await super().async_added_to_hass()
        self.async_on_remove(self.entry.add_update_listener(self._options_updated))

    async def _options_updated(self, *_: Any) -> None:
        self.async_write_ha_state()

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
        self._write_now()

    @callback
    def _write_now(self) -> None:
        self.async_write_ha_state()
