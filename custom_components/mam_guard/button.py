"""Button ``refresh_rules``: fetch MAM's rules pages now (SPEC §2)."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import MamGuardConfigEntry
from .entity import MamGuardEntity

PARALLEL_UPDATES = 1

REFRESH_RULES = ButtonEntityDescription(key="refresh_rules", translation_key="refresh_rules")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MamGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The refresh button."""
    async_add_entities([RefreshRulesButton(entry, REFRESH_RULES)])


class RefreshRulesButton(MamGuardEntity, ButtonEntity):
    """Same as the ``refresh_rules`` action."""

    async def async_press(self) -> None:
        """Refresh the selected rules pages now."""
        await self.entry.runtime_data.rules.async_refresh_now()
