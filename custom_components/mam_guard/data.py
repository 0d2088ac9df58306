"""Typed runtime data of a config entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry

from .const import DEFAULT_OPTIONS

if TYPE_CHECKING:
    from .coordinator import MamAccountCoordinator, QbtCoordinator
    from .economy import EconomyManager
    from .emergency import EmergencyManager
    from .freeleech import FreeleechManager
    from .lib.mam import MamClient
    from .lib.qbt import QbtAdapter
    from .rules import RulesCoordinator
    from .store import MamGuardStore


@dataclass(slots=True)
class MamGuardData:
    """Everything one entry runs: clients, coordinators, the emergency manager, its storage."""

    client: MamClient
    adapter: QbtAdapter
    store: MamGuardStore
    account: MamAccountCoordinator
    qbt: QbtCoordinator
    emergency: EmergencyManager
    rules: RulesCoordinator
    economy: EconomyManager
    freeleech: FreeleechManager


type MamGuardConfigEntry = ConfigEntry[MamGuardData]


def entry_options(entry: ConfigEntry) -> dict[str, Any]:
    """The entry's options over the SPEC defaults (older entries may lack newer options)."""
    return {**DEFAULT_OPTIONS, **entry.options}
