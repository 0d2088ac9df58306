"""Buttons: refresh the rules pages, release or trigger the freeze (SPEC §2, §3)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DEFAULT_HOLD_OFF
from .data import MamGuardConfigEntry
from .emergency import EmergencyManager
from .entity import EmergencyEntity, MamGuardEntity
from .services import async_buy_vip, async_release, async_trigger

PARALLEL_UPDATES = 1

REFRESH_RULES = ButtonEntityDescription(key="refresh_rules", translation_key="refresh_rules")


@dataclass(frozen=True, kw_only=True)
class EmergencyButtonDescription(ButtonEntityDescription):
    """A button that runs an emergency action, available only when it makes sense."""

    press_fn: Callable[[MamGuardConfigEntry], Awaitable[None]]
    available_fn: Callable[[EmergencyManager], bool]


EMERGENCY_BUTTONS: tuple[EmergencyButtonDescription, ...] = (
    EmergencyButtonDescription(
        key="release_freeze",
        translation_key="release_freeze",
        press_fn=lambda entry: async_release(entry, DEFAULT_HOLD_OFF),
        available_fn=lambda emergency: emergency.active,
    ),
    EmergencyButtonDescription(
        key="trigger_freeze",
        translation_key="trigger_freeze",
        press_fn=async_trigger,
        # A manual emergency is already what this button would declare.
        available_fn=lambda emergency: not (emergency.active and emergency.record.manual),
    ),
)


BUY_VIP = ButtonEntityDescription(key="buy_vip", translation_key="buy_vip")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MamGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The refresh button, the two emergency buttons and Buy VIP."""
    buttons: list[ButtonEntity] = [RefreshRulesButton(entry, REFRESH_RULES)]
    buttons.extend(EmergencyButton(entry, description) for description in EMERGENCY_BUTTONS)
    buttons.append(BuyVipButton(entry, BUY_VIP))
    async_add_entities(buttons)


class BuyVipButton(MamGuardEntity, ButtonEntity):
    """Same as the ``buy_vip`` action: a refusal or rejection reaches the UI as an error."""

    async def async_press(self) -> None:
        """Fill VIP up to MAM's cap with bonus points."""
        await async_buy_vip(self.entry)


class RefreshRulesButton(MamGuardEntity, ButtonEntity):
    """Same as the ``refresh_rules`` action."""

    async def async_press(self) -> None:
        """Refresh the selected rules pages now."""
        await self.entry.runtime_data.rules.async_refresh_now()


class EmergencyButton(EmergencyEntity, ButtonEntity):
    """Same as the ``release_freeze`` (default hold-off) / ``trigger_freeze`` actions."""

    entity_description: EmergencyButtonDescription

    @property
    def available(self) -> bool:
        """Release only during an emergency; trigger unless a manual one is declared."""
        return self.entity_description.available_fn(self.entry.runtime_data.emergency)

    async def async_press(self) -> None:
        """Run the action; a failure reaches the UI as a translated error."""
        await self.entity_description.press_fn(self.entry)
